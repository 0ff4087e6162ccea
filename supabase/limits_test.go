package supabase_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
)

// submit_lead's limits (its list of text fields, intake_limit) restate the
// tables' check constraints so that it can name every field that breaks
// one; here each is compared with its constraint, so the two cannot drift.
func TestIntakeLimitsAreTheTableConstraints(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := testkit.Context(t)

	// The upper bound of every length check on the lead tables, by column.
	rows, err := db.Query(ctx, `select conrelid::regclass::text || '.' || m[1], m[2]::integer
		from pg_constraint,
		     regexp_matches(pg_get_constraintdef(oid), '(?:char|octet)_length\(\(?(\w+)\)?(?:::text)?\) <= (\d+)', 'g') m
		where contype = 'c' and conrelid in ('public.conversations'::regclass, 'public.chat_messages'::regclass)`)
	if err != nil {
		t.Fatal(err)
	}
	type bound struct {
		Column string
		Max    int
	}
	bounds, err := pgx.CollectRows(rows, pgx.RowToStructByPos[bound])
	if err != nil {
		t.Fatal(err)
	}
	constraint := map[string]int{}
	for _, b := range bounds {
		constraint[b.Column] = b.Max
	}
	if len(constraint) == 0 {
		t.Fatal("found no length constraint: the pattern no longer reads pg_get_constraintdef")
	}

	// submit_lead's own list, (values ('name', 200), ...) as f (field, max_chars), read
	// from its definition as the server holds it.
	rows, err = db.Query(ctx, `select m[1], m[2]::integer
		from regexp_matches(substring(pg_get_functiondef('public.submit_lead(jsonb)'::regprocedure) from $1), $2, 'g') m`,
		`\(values (.*?)\) as f \(field, max_chars\)`, `\('(\w+)', (\d+)\)`)
	if err != nil {
		t.Fatal(err)
	}
	limits, err := pgx.CollectRows(rows, pgx.RowToStructByPos[bound])
	if err != nil {
		t.Fatal(err)
	}
	if len(limits) < 10 {
		t.Fatalf("read %d text limits from submit_lead: the pattern no longer finds its list", len(limits))
	}
	// Where a field is stored, when not in the column of its name; enums
	// have no length of their own to agree with.
	column := map[string]string{"phone": "phone_raw"}
	enums := map[string]bool{"form": true, "quality": true}
	for _, l := range limits {
		if enums[l.Column] {
			continue
		}
		col := "conversations." + l.Column
		if c, ok := column[l.Column]; ok {
			col = "conversations." + c
		}
		if got, ok := constraint[col]; !ok || got != l.Max {
			t.Errorf("submit_lead says %s holds %d characters; the constraint on %s says %d (found: %v)", l.Column, l.Max, col, got, ok)
		}
	}
	for what, cols := range map[string][]string{
		"message_chars": {"chat_messages.content"},
		"object_bytes":  {"conversations.metadata", "conversations.device_info"},
	} {
		var limit int
		if err := db.QueryRow(ctx, "select public.intake_limit($1)", what).Scan(&limit); err != nil {
			t.Fatal(err)
		}
		for _, col := range cols {
			if got, ok := constraint[col]; !ok || got != limit {
				t.Errorf("intake_limit(%s) = %d; the constraint on %s says %d (found: %v)", what, limit, col, got, ok)
			}
		}
	}
}
