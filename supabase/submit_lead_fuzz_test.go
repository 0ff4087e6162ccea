package supabase_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/truenester/leadrelay/dev/dbtest"
)

// FuzzSubmitLead calls the intake RPC the way PostgREST does for the public
// anon key (set local role anon; the request's headers), with any JSON
// payload, in a transaction rolled back after each call. Whatever the
// payload, the answer is a lead or one of the RPC's documented refusals
// (22023 naming the bad fields in a JSON DETAIL, PT413, PT422, PT429): never
// another SQLSTATE, which PostgREST would answer with a 4xx or 5xx that
// blames nobody in particular. The seeds, the cases among them, live
// in testdata/fuzz/FuzzSubmitLead; `go test -fuzz=FuzzSubmitLead ./supabase/`
// explores further.
func FuzzSubmitLead(f *testing.F) {
	f.Add(`{"form": "contact_form", "email": "jane@example.com", "phone": "050 123 4567", "metadata": {"country": "AE"}}`)
	f.Add(`{"form": "chatbot", "email": "a@b.co", "messages": [{"role": "user", "content": "hi", "at": "infinity"}]}`)
	db := dbtest.New(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, payload string) {
		if _, err := db.Exec(ctx, "select $1::text::jsonb", payload); err != nil {
			t.Skip("not text Postgres reads as jsonb: PostgREST refuses it before the RPC")
		}
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `select set_config('role', 'anon', true),
				set_config('request.jwt.claims', '{"role": "anon"}', true),
				set_config('request.headers', '{"x-forwarded-for": "198.51.100.23"}', true)`); err != nil {
				t.Fatal(err)
			}
			var raw []byte
			if err := tx.QueryRow(ctx, "select public.submit_lead($1::jsonb)", payload).Scan(&raw); err != nil {
				return err
			}
			var res struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &res); err != nil || res.ID == "" {
				t.Fatalf("submit_lead answered %s without a lead id", raw)
			}
			return errRollback
		})
		if errors.Is(err, errRollback) {
			return
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Fatalf("submit_lead(%q): %v", payload, err)
		}
		switch pgErr.Code {
		case "22023":
			var fields map[string]string
			if pgErr.Message != "invalid lead" || json.Unmarshal([]byte(pgErr.Detail), &fields) != nil || len(fields) == 0 {
				t.Fatalf("22023 %q with DETAIL %q, want 'invalid lead' naming the fields", pgErr.Message, pgErr.Detail)
			}
		case "PT413", "PT422", "PT429":
		default:
			t.Fatalf("submit_lead(%.500q): SQLSTATE %s %s (%s)", payload, pgErr.Code, pgErr.Message, pgErr.Where)
		}
	})
}

var errRollback = errors.New("rolled back on purpose")
