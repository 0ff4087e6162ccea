package supabase_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/dev/dbtest"
	"github.com/truenester/leadrelay/dev/testkit"
	"github.com/truenester/leadrelay/edge/console"
)

// public.lead_is_open is the one definition of an open lead. The partial
// indexes of the SLA scans and the queries that must match them (the SLA
// functions, the console's leads list) spell it as a literal, because the
// planner matches a partial index only on the literal; each such literal must
// list exactly the statuses lead_is_open calls closed.
func TestEveryOpenLeadLiteralIsLeadIsOpen(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := testkit.Context(t)

	var closed, statuses []string
	if err := db.QueryRow(ctx, `select array_agg(s::text order by s::text) filter (where not public.lead_is_open(s)),
		       array_agg(s::text)
		from unnest(enum_range(null::public.conversation_status)) s`).Scan(&closed, &statuses); err != nil {
		t.Fatal(err)
	}
	if len(closed) == 0 {
		t.Fatal("lead_is_open calls no status closed")
	}

	// Every index and function of the schema that tests a status against a list; the lists
	// of a lead's statuses are checked.
	rows, err := db.Query(ctx, `
		select 'index ' || i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
		  from pg_index i where i.indrelid = 'public.conversations'::regclass
		union all
		select 'function ' || p.oid::regprocedure::text, pg_get_functiondef(p.oid)
		  from pg_proc p where p.pronamespace = 'public'::regnamespace and p.prokind = 'f'
		   and p.oid <> 'public.lead_is_open(public.conversation_status)'::regprocedure`)
	if err != nil {
		t.Fatal(err)
	}
	type definition struct {
		Name string
		SQL  string
	}
	defs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[definition])
	if err != nil {
		t.Fatal(err)
	}
	defs = append(defs, definition{"the console's leads list", console.UnansweredOpenLead})
	literals := map[string]int{}
	for _, d := range defs {
		for _, list := range statusLists(d.SQL) {
			if slices.ContainsFunc(list, func(s string) bool { return !slices.Contains(statuses, s) }) {
				continue // another status: a follow-up's, a delivery's
			}
			literals[d.Name]++
			if !slices.Equal(list, closed) {
				t.Errorf("%s tests status against %v; lead_is_open calls %v closed", d.Name, list, closed)
			}
		}
	}
	// The ones known to spell it, so a change of spelling cannot make this test pass empty.
	for _, want := range []string{
		"index conversations_sla_warning_due_idx", "index conversations_sla_breach_due_idx", "index conversations_sla_open_idx",
		"function sla_tick(timestamp with time zone,integer)", "function sla_alerts(timestamp with time zone,integer)",
		"the console's leads list",
	} {
		if literals[want] == 0 {
			t.Errorf("found no status list in %s (found: %v)", want, literals)
		}
	}
}

// statusLists returns, sorted, the statuses of each "status not in (...)" (as
// written in a function) and "status <> ALL (ARRAY[...])" (as Postgres
// prints an index predicate) in sql.
var (
	statusList   = regexp.MustCompile(`(?i)status\s+(?:not\s+in\s*\(([^)]*)\)|<>\s*all\s*\(\s*array\[([^\]]*)\])`)
	quotedStatus = regexp.MustCompile(`'(\w+)'`)
)

func statusLists(sql string) [][]string {
	var lists [][]string
	for _, m := range statusList.FindAllStringSubmatch(sql, -1) {
		var list []string
		for _, q := range quotedStatus.FindAllStringSubmatch(m[1]+m[2], -1) {
			list = append(list, strings.ToLower(q[1]))
		}
		slices.Sort(list)
		lists = append(lists, list)
	}
	return lists
}
