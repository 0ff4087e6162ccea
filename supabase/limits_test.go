package supabase_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// Each text column's length is defined once, by public.lead_text_limit (and
// intake_limit for a chat message and the JSON objects); submit_lead checks a
// payload against it, naming the field, and the row rules check every write.
// Here both are held to every limit: the limit itself is stored, one character
// more is refused.
func TestEveryTextLimitHoldsForTheIntakeAndForDirectWrites(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := testkit.Context(t)

	var lead string
	if err := db.QueryRow(ctx, `select public.submit_lead('{"form": "contact_form", "email": "limits@example.com"}') ->> 'id'`).Scan(&lead); err != nil {
		t.Fatal(err)
	}
	// text of n characters; an email keeps the shape its rule asks for.
	text := func(col string, n int) string {
		if col == "email" {
			return strings.Repeat("x", n-len("@e.co")) + "@e.co"
		}
		return strings.Repeat("x", n)
	}
	// write sets one column of the lead in a transaction that is rolled back,
	// and returns the rule that refused it, "" when none did.
	write := func(t *testing.T, query string, args ...any) string {
		t.Helper()
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		_, err = tx.Exec(ctx, query, args...)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "23514" {
			return pgErr.ConstraintName
		}
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return ""
	}

	for _, col := range []string{"source", "name", "email", "phone", "phone_raw", "message", "session_id",
		"property_id", "property_title", "budget", "timeline", "financing", "idempotency_key"} {
		t.Run(col, func(t *testing.T) {
			var limit int
			if err := db.QueryRow(ctx, "select public.lead_text_limit($1)", col).Scan(&limit); err != nil || limit == 0 {
				t.Fatalf("lead_text_limit(%s) = %d, %v", col, limit, err)
			}
			update := fmt.Sprintf("update public.conversations set %s = $1 where id = $2", pgx.Identifier{col}.Sanitize())
			if rule := write(t, update, text(col, limit), lead); rule != "" {
				t.Errorf("%d characters in %s were refused by %s", limit, col, rule)
			}
			if rule, want := write(t, update, text(col, limit+1), lead), "conversations_"+col+"_check"; rule != want {
				t.Errorf("%d characters in %s: refused by %q, want %q", limit+1, col, rule, want)
			}

			field := col
			switch col {
			case "phone":
				return // the E.164 form is the intake's to write, never the visitor's
			case "phone_raw":
				field = "phone" // the number as the visitor typed it
			}
			payload, _ := json.Marshal(map[string]string{"form": "chatbot", "email": "limits@example.com", field: text(col, limit+1)})
			_, err := db.Exec(ctx, "select public.submit_lead($1::jsonb)", string(payload))
			pgErr, ok := errors.AsType[*pgconn.PgError](err)
			if !ok || pgErr.Code != "22023" {
				t.Fatalf("submit_lead with %d characters in %s: %v, want 22023", limit+1, field, err)
			}
			var problems map[string]string
			if err := json.Unmarshal([]byte(pgErr.Detail), &problems); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("must be at most %d characters", limit); problems[field] != want {
				t.Errorf("submit_lead with %d characters in %s says %q, want %q (all: %v)", limit+1, field, problems[field], want, problems)
			}
		})
	}

	t.Run("chat message", func(t *testing.T) {
		var limit int
		if err := db.QueryRow(ctx, "select public.intake_limit('message_chars')").Scan(&limit); err != nil {
			t.Fatal(err)
		}
		insert := "insert into public.chat_messages (conversation_id, sender_type, content) values ($1, 'bot', $2)"
		if rule := write(t, insert, lead, text("content", limit)); rule != "" {
			t.Errorf("a message of %d characters was refused by %s", limit, rule)
		}
		if rule := write(t, insert, lead, text("content", limit+1)); rule != "chat_messages_content_check" {
			t.Errorf("a message of %d characters: refused by %q, want chat_messages_content_check", limit+1, rule)
		}
	})

	t.Run("objects", func(t *testing.T) {
		var limit int
		if err := db.QueryRow(ctx, "select public.intake_limit('object_bytes')").Scan(&limit); err != nil {
			t.Fatal(err)
		}
		// {"k": "xxx"} is 9 bytes of JSON text around the value.
		object := func(n int) string { return fmt.Sprintf(`{"k": "%s"}`, strings.Repeat("x", n-9)) }
		for _, col := range []string{"metadata", "device_info"} {
			update := fmt.Sprintf("update public.conversations set %s = $1::jsonb where id = $2", pgx.Identifier{col}.Sanitize())
			if rule := write(t, update, object(limit), lead); rule != "" {
				t.Errorf("%s of %d bytes was refused by %s", col, limit, rule)
			}
			if rule, want := write(t, update, object(limit+1), lead), "conversations_"+col+"_check"; rule != want {
				t.Errorf("%s of %d bytes: refused by %q, want %q", col, limit+1, rule, want)
			}
		}
	})
}
