package dbtest_test

import (
	"context"
	"testing"

	"github.com/truenester/leadrelay/dev/dbtest"
)

// Each test's database is its own: a lead saved in one is not in another.
func TestDatabasesAreFreshAndSeparate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := dbtest.New(t), dbtest.New(t)
	if _, err := a.Exec(ctx, "insert into conversations (form, email) values ('contact_form', 'a@example.com')"); err != nil {
		t.Fatal(err)
	}
	var inA, inB int
	if err := a.QueryRow(ctx, "select count(*) from conversations").Scan(&inA); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(ctx, "select count(*) from conversations").Scan(&inB); err != nil {
		t.Fatal(err)
	}
	if inA != 1 || inB != 0 {
		t.Fatalf("a has %d leads, b has %d; want 1 and 0", inA, inB)
	}
}

// BenchmarkNewDatabase is what one test pays for its database:
// go test -run '^$' -bench NewDatabase ./dev/dbtest/
func BenchmarkNewDatabase(b *testing.B) {
	dbtest.NewURL(b) // the template, once
	b.ResetTimer()
	for range b.N {
		dbtest.NewURL(b)
	}
}
