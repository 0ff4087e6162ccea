package notifierstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Telegram answers as the Bot API's sendMessage: {"ok":true,"result":...},
// or {"ok":false,"error_code":...,"description":...} with
// parameters.retry_after on a 429. It checks the token in the path (401
// Unauthorized), the chat (400 chat not found) and the HTML the way Telegram
// does, refusing a stray tag or a bare & (400 can't parse entities), and
// a text over 4,096 characters as shown (400 message is too long).
type Telegram struct {
	*httpPeer
	BaseURL string // TELEGRAM_API_BASE_URL
	// Token is the bot token it accepts. Its secret half holds "s3cr3t", for
	// tests that check an error does not leak it.
	Token  string
	ChatID string // the one chat the bot is in
}

// NewTelegram starts a Telegram peer, stopped when the test ends. It also
// answers getMe (the bot "leadrelay_test_bot"; 401 to another token), which
// sends nothing and is not counted among the requests or messages.
func NewTelegram(t testing.TB) *Telegram {
	tg := &Telegram{Token: "123456:AAF-s3cr3t_token", ChatID: "-100123"}
	tg.httpPeer = newHTTPPeer(t, telegram{tg})
	tg.BaseURL = tg.server.URL
	return tg
}

type telegram struct{ *Telegram }

// serveUncounted answers getMe.
func (tg telegram) serveUncounted(w http.ResponseWriter, r *http.Request) bool {
	if !strings.HasSuffix(r.URL.Path, "/getMe") {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != "/bot"+tg.Token+"/getMe" {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`)
		return true
	}
	io.WriteString(w, `{"ok":true,"result":{"id":123456,"is_bot":true,"first_name":"leadrelay","username":"leadrelay_test_bot"}}`)
	return true
}

func (tg telegram) check(r *http.Request, body []byte) *Answer {
	if r.URL.Path != "/bot"+tg.Token+"/sendMessage" {
		if strings.HasSuffix(r.URL.Path, "/sendMessage") {
			return &Answer{Status: http.StatusUnauthorized, Body: "Unauthorized"}
		}
		return &Answer{Status: http.StatusNotFound, Body: "Not Found"}
	}
	var req struct {
		ChatID    json.RawMessage `json:"chat_id"` // a number, or a string
		Text      string          `json:"text"`
		ParseMode string          `json:"parse_mode"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Text == "" {
		return &Answer{Status: http.StatusBadRequest, Body: "Bad Request: message text is empty"}
	}
	if strings.Trim(string(req.ChatID), `"`) != tg.ChatID {
		return &Answer{Status: http.StatusBadRequest, Body: "Bad Request: chat not found"}
	}
	if refusal := CheckTelegramText(req.Text, req.ParseMode); refusal != "" {
		return &Answer{Status: http.StatusBadRequest, Body: refusal}
	}
	return nil
}

// CheckTelegramText judges a message's text as sendMessage does: "" when
// Telegram takes it, else the description of its 400. Fuzz tests of the
// renderer use it without a server.
func CheckTelegramText(text, parseMode string) string {
	shown := text
	switch parseMode {
	case "": // plain text: nothing in it is markup
	case "HTML":
		var err error
		if shown, err = checkTelegramHTML(text); err != nil {
			return "Bad Request: can't parse entities: " + err.Error()
		}
	default:
		return "Bad Request: unsupported parse_mode"
	}
	// 1-4,096 characters after entities parsing.
	if n := utf16Len(shown); n > telegramTextMax {
		return "Bad Request: message is too long"
	} else if strings.TrimSpace(shown) == "" {
		return "Bad Request: message text is empty"
	}
	return ""
}

// telegramTextMax is the Bot API's bound on a message's text as shown.
const telegramTextMax = 4096

func (telegram) refuse(w http.ResponseWriter, a Answer) {
	if a.Raw {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(a.Status)
		io.WriteString(w, a.Body)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	params := ""
	if a.RetryAfter > 0 {
		params = fmt.Sprintf(`,"parameters":{"retry_after":%d}`, a.RetryAfter)
	}
	fmt.Fprintf(w, `{"ok":false,"error_code":%d,"description":%q%s}`, a.Status, a.Body, params)
}

func (tg telegram) ok(w http.ResponseWriter, request int) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"ok":true,"result":{"message_id":%d,"date":%d,"chat":{"id":%s,"type":"supergroup"}}}`, request, time.Now().Unix(), tg.ChatID)
}

var (
	telegramTag    = regexp.MustCompile(`^<(b|/b|/a|a href="[^"<>]*")>`)
	telegramEntity = regexp.MustCompile(`^&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);`)
)

// checkTelegramHTML accepts the subset of HTML leadrelay's sender uses, as
// the Bot API parses it: tags it knows, entities it knows, nothing else after
// < or &. It returns the text as shown: tags gone, entities decoded.
func checkTelegramHTML(s string) (string, error) {
	var open []string
	var shown strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<':
			tag := telegramTag.FindString(s[i:])
			if tag == "" {
				return "", fmt.Errorf("unsupported start tag at byte offset %d", i)
			}
			name := strings.Fields(strings.Trim(tag, "<>"))[0]
			if strings.HasPrefix(name, "/") {
				if len(open) == 0 || open[len(open)-1] != name[1:] {
					return "", fmt.Errorf("unmatched end tag at byte offset %d", i)
				}
				open = open[:len(open)-1]
			} else {
				open = append(open, name)
			}
			i += len(tag) - 1
		case '&':
			entity := telegramEntity.FindString(s[i:])
			if entity == "" {
				return "", fmt.Errorf("unsupported entity at byte offset %d", i)
			}
			shown.WriteString(html.UnescapeString(entity))
			i += len(entity) - 1
		default:
			shown.WriteByte(s[i])
		}
	}
	if len(open) > 0 {
		return "", errors.New("unclosed tags")
	}
	return shown.String(), nil
}
