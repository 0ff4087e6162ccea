package console_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/edge/console"
)

// The leads list spells an open lead as a literal, for conversations_sla_open_idx; it must
// list the statuses public.lead_is_open, the one definition, calls closed.
func TestTheLeadsListsOpenLeadIsLeadIsOpen(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	var closed []string
	if err := db.QueryRow(testkit.Context(t), `select array_agg(s::text order by s::text)
		from unnest(enum_range(null::public.conversation_status)) s
		where not public.lead_is_open(s)`).Scan(&closed); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`status not in \(([^)]*)\)`).FindStringSubmatch(console.UnansweredOpenLead)
	if m == nil {
		t.Fatalf("no status list in %q", console.UnansweredOpenLead)
	}
	var listed []string
	for _, q := range regexp.MustCompile(`'(\w+)'`).FindAllStringSubmatch(m[1], -1) {
		listed = append(listed, q[1])
	}
	slices.Sort(listed)
	if !slices.Equal(listed, closed) {
		t.Errorf("the leads list calls %v closed; lead_is_open calls %v closed", listed, closed)
	}
}
