package notifiers

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/truenester/leadrelay"
)

// message is what every channel says about an alert, before the channel's
// own markup. Values are plain text, unescaped: each channel escapes them.
type message struct {
	Headline string
	Fields   []field
	Link     string // the lead in the admin panel; "" when unknown
}

type field struct {
	Label string
	Value string
	Tel   string // the number to dial, where Value is a verified E.164 phone
}

const linkLabel = "Open in admin panel"

// Bounds on what a lead typed, so one long field cannot push a message over
// a channel's limit (Slack rejects a block field over 2,000 characters,
// Telegram a message over 4,096) and turn into a permanent failure.
const (
	maxNameRunes  = 200
	maxValueRunes = 500
)

// e164 is a phone the database verified: it stores E.164 only when valid,
// and an unverified number as typed with " (not verified)", never tappable.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

const deadlineLayout = "Mon 2 Jan 2006, 15:04 MST"

// render turns an alert into the facts every channel shows, in order.
func render(a Alert) message {
	name := oneLine(a.Name, maxNameRunes)
	if name == "" {
		name = "(no name)"
	}
	quality := strings.ToUpper(oneLine(a.Quality, 20))

	m := message{Headline: headline(a.EventType, name, quality), Link: a.AdminURL}
	add := func(label, value string) {
		if value = oneLine(value, maxValueRunes); value != "" {
			m.Fields = append(m.Fields, field{Label: label, Value: value})
		}
	}
	add("Email", a.Email)
	add("Phone", a.Phone)
	if len(m.Fields) > 0 && m.Fields[len(m.Fields)-1].Label == "Phone" && e164.MatchString(a.Phone) {
		m.Fields[len(m.Fields)-1].Tel = "tel:" + a.Phone
	}
	add("Source", joinNonEmpty(" / ", a.Source, a.Form))
	property := a.PropertyTitle
	if a.PropertyID != "" {
		property = joinNonEmpty(" ", property, "("+a.PropertyID+")")
	}
	add("Property", property)
	add("Quality", quality)
	add("Why", strings.Join(a.Reasons, "; "))
	if !a.Deadline.IsZero() {
		label := "Answer by"
		if a.EventType == leadrelay.EventFollowUpDue || a.EventType == leadrelay.EventFollowUpOverdue {
			label = "Follow-up due"
		}
		add(label, a.Deadline.Format(deadlineLayout))
	}
	return m
}

func headline(kind leadrelay.EventType, name, quality string) string {
	lead := name
	if quality != "" {
		lead = quality + " lead " + name
	}
	switch kind {
	case leadrelay.EventLeadCreated:
		if quality == "" {
			return "New lead: " + name
		}
		return "New " + quality + " lead: " + name
	case leadrelay.EventSLAWarning:
		return "SLA warning: " + lead + " not answered yet"
	case leadrelay.EventSLABreached:
		return "SLA breached: " + lead + " was not answered in time"
	case leadrelay.EventFollowUpDue:
		return "Follow-up due: " + name
	case leadrelay.EventFollowUpOverdue:
		return "Follow-up overdue: " + name
	default:
		return "Lead update (" + oneLine(string(kind), 50) + "): " + name
	}
}

// plainText is the message as plain text: the console, the email's text
// part and SMS use it.
func (m message) plainText() string {
	var b strings.Builder
	b.WriteString(m.Headline)
	b.WriteString("\n")
	for _, f := range m.Fields {
		b.WriteString("\n" + f.Label + ": " + f.Value)
	}
	if m.Link != "" {
		b.WriteString("\n\n" + linkLabel + ": " + m.Link)
	}
	return b.String()
}

// oneLine makes a value someone typed safe to show on one line: invalid
// UTF-8 becomes U+FFFD; invisible format characters are dropped (bidi
// embeddings, overrides and isolates, which reorder what follows them, and
// zero-width spaces and joiners, which hide text or split a word that
// should be recognised); control characters (newlines included, which
// could forge extra "fields" or headers) become spaces; runs of space
// collapse; and it is cut to max runes.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	return clip(s, max)
}

// clip cuts s to at most max runes, marking the cut with an ellipsis.
func clip(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// clipEscaped returns escape(s), cut so that the escaped text is at most max
// units long as length counts them: a limit holds on what a channel
// receives, not on what the lead typed ("&" is five characters in Slack's
// mrkdwn). A cut keeps whole characters and ends with an ellipsis; "" when
// not even that fits.
func clipEscaped(s string, max int, escape func(string) string, length func(string) int) string {
	if e := escape(s); length(e) <= max {
		return e
	}
	r := []rune(s)
	// The longest prefix whose escaped form, with the ellipsis, fits.
	lo, hi := -1, len(r)-1 // lo fits (-1: nothing does), hi+1 does not
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if length(escape(string(r[:mid])+"…")) <= max {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo < 0 {
		return ""
	}
	return escape(string(r[:lo]) + "…")
}

// utf16Len is a text's length in UTF-16 code units, the characters Slack
// and Telegram count (an emoji outside the BMP is two).
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

func plain(s string) string { return s }

// fellBack is the outcome of a plain-text fallback sent after refused: nil,
// or its failure saying what came first.
func fellBack(err error, refused *DeliveryError) error {
	var de *DeliveryError
	if errors.As(err, &de) {
		de.Err = fmt.Errorf("plain-text fallback after %q: %w", refused.Response, de.Err)
	}
	return err
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}
