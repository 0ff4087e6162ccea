package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A lead is one inquiry (issue #9), on both paths: the HTTP intake and
// PostgREST's RPC as anon, which runs public.submit_lead the way PostgREST
// does (set local role, claims and request headers).

// rpcAsAnon calls submit_lead as PostgREST does for the anon key, from the
// client address addr. It returns the answer, or the error PostgREST would
// turn into its HTTP status.
func (b *testBundle) rpcAsAnon(t testing.TB, addr, payload string) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var answer map[string]any
	err := pgx.BeginFunc(ctx, b.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `select set_config('role', 'anon', true),
				set_config('request.jwt.claims', '{"role": "anon"}', true),
				set_config('request.headers', json_build_object('x-forwarded-for', $1::text)::text, true)`, addr); err != nil {
			return err
		}
		return tx.QueryRow(ctx, "select public.submit_lead($1::jsonb)", payload).Scan(&answer)
	})
	return answer, err
}

func sqlState(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code
	}
	return ""
}

func TestADifferentInquiryFromTheSamePersonIsANewLinkedLead(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	villa := b.post(t, "/api/property-inquiry", `{"name": "Lina", "email": "lina@example.com", "property_id": "villa-42"}`).lead(t, http.StatusCreated)
	apt := b.post(t, "/api/property-inquiry", `{"name": "Lina", "email": "lina@example.com", "property_id": "apt-77", "budget": "AED 2M"}`).lead(t, http.StatusCreated)
	rpc, err := b.rpcAsAnon(t, "203.0.113.1", `{"form": "property_inquiry", "email": "LINA@example.com", "property_id": "penthouse-9"}`)
	if err != nil {
		t.Fatalf("rpc as anon: %v", err)
	}
	if rpc["created"] != true {
		t.Errorf("rpc answer %v: want a new lead", rpc)
	}
	ids := []string{villa.ID, apt.ID, rpc["id"].(string)}
	if n := b.count(t, "select count(distinct person_id) from conversations where id = any($1::uuid[]) and person_id is not null", ids); n != 1 {
		t.Errorf("the three leads have %d persons, want 1", n)
	}
	var title, description string
	if err := b.db.QueryRow(context.Background(), `select title, description from conversation_timeline
		where conversation_id = $1 and title like 'Returning lead%'`, ids[2]).Scan(&title, &description); err != nil {
		t.Fatalf("the third lead's returning entry: %v", err)
	}
	if title != "Returning lead: 3rd inquiry in 24 h" || !strings.Contains(description, "/admin/conversations/"+apt.ID) ||
		!strings.Contains(description, "/admin/conversations/"+villa.ID) {
		t.Errorf("timeline %q / %q: want the 3rd inquiry in 24 h, linking both earlier leads", title, description)
	}
}

func TestTheSameKeyWithAnotherBodyIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	first := b.post(t, "/api/submit-contact", `{"name": "First", "email": "first@example.com", "message": "villa"}`,
		"Idempotency-Key", "shared-key-1").lead(t, http.StatusCreated)
	refused := b.post(t, "/api/submit-contact", `{"name": "Second", "email": "second@example.com", "message": "flat"}`,
		"Idempotency-Key", "shared-key-1")
	e := refused.error(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
	if !strings.Contains(e.Error.Message, "shared-key-1") {
		t.Errorf("message %q does not name the key", e.Error.Message)
	}
	// Nothing of the first lead is returned, and nothing of the second saved.
	if strings.Contains(string(refused.body), first.ID) || strings.Contains(string(refused.body), "sla_response_deadline") {
		t.Errorf("the refusal carries the first lead: %s", refused.body)
	}
	if n := b.count(t, "select count(*) from conversations"); n != 1 {
		t.Errorf("%d leads, want 1", n)
	}
	// The same through PostgREST: PT422, which PostgREST answers with 422.
	_, err := b.rpcAsAnon(t, "203.0.113.2", `{"form": "contact_form", "email": "third@example.com", "idempotency_key": "shared-key-1"}`)
	if sqlState(err) != "PT422" || !strings.Contains(err.Error(), "idempotency_key_reused") {
		t.Errorf("rpc with a reused key: %v, want PT422 idempotency_key_reused", err)
	}
	if n := b.count(t, "select count(*) from conversations"); n != 1 {
		t.Errorf("%d leads, want 1", n)
	}
}

// Thirty identical posts at once are one lead, on each path.
func TestThirtySimultaneousIdenticalPostsAreOneLead(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	const n = 30
	httpIDs := make([]string, n)
	rpcIDs := make([]string, n)
	var failures sync.Map
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			a := b.post(t, "/api/submit-contact", `{"name": "Dup", "email": "dup@example.com", "message": "the same inquiry"}`)
			if a.status != http.StatusCreated && a.status != http.StatusOK {
				failures.Store(fmt.Sprintf("http %d", i), fmt.Sprintf("%d %s", a.status, a.body))
				return
			}
			httpIDs[i] = a.lead(t, a.status).ID
		})
		wg.Go(func() {
			<-start
			// Each from its own address, so the anon rate limit stays out of it.
			res, err := b.rpcAsAnon(t, fmt.Sprintf("198.51.100.%d", i), `{"form": "chatbot", "email": "dup-rpc@example.com", "messages": [{"role": "user", "content": "hi"}]}`)
			if err != nil {
				failures.Store(fmt.Sprintf("rpc %d", i), err.Error())
				return
			}
			rpcIDs[i] = res["id"].(string)
		})
	}
	close(start)
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("%s: %s", k, v); return true })
	for name, ids := range map[string][]string{"http": httpIDs, "rpc": rpcIDs} {
		distinct := map[string]bool{}
		for _, id := range ids {
			distinct[id] = true
		}
		if len(distinct) != 1 {
			t.Errorf("%s: %d distinct ids, want 1", name, len(distinct))
		}
	}
	if got := b.count(t, "select count(*) from conversations"); got != 2 {
		t.Errorf("%d leads, want 2 (one per path)", got)
	}
	if got := b.count(t, "select count(*) from lead_events where event_type = 'lead.created'"); got != 2 {
		t.Errorf("%d lead.created events, want 2", got)
	}
}

// Thirty different inquiries at once from one email are thirty leads of one
// person, on each path.
func TestThirtySimultaneousInquiriesFromOneEmailAreThirtyLinkedLeads(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	const n = 30
	var failures sync.Map
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			a := b.post(t, "/api/property-inquiry", fmt.Sprintf(`{"email": "busy@example.com", "property_id": "unit-%d"}`, i))
			if a.status != http.StatusCreated {
				failures.Store(fmt.Sprintf("http %d", i), fmt.Sprintf("%d %s", a.status, a.body))
			}
		})
		wg.Go(func() {
			<-start
			res, err := b.rpcAsAnon(t, fmt.Sprintf("198.51.100.%d", i),
				fmt.Sprintf(`{"form": "property_inquiry", "email": "busy-rpc@example.com", "property_id": "unit-%d"}`, i))
			if err != nil || res["created"] != true {
				failures.Store(fmt.Sprintf("rpc %d", i), fmt.Sprintf("%v %v", res, err))
			}
		})
	}
	close(start)
	wg.Wait()
	failures.Range(func(k, v any) bool { t.Errorf("%s: %s", k, v); return true })
	for _, email := range []string{"busy@example.com", "busy-rpc@example.com"} {
		if got := b.count(t, "select count(*) from conversations where email = $1", email); got != n {
			t.Errorf("%s: %d leads, want %d", email, got, n)
		}
		if got := b.count(t, "select count(distinct person_id) from conversations where email = $1 and person_id is not null", email); got != 1 {
			t.Errorf("%s: %d persons, want 1", email, got)
		}
		// The person's leads were ordered by a lock on the contact, so each
		// counted the ones before it: 1st to 30th, once each.
		if got := b.count(t, "select count(distinct person_inquiry) from conversations where email = $1", email); got != n {
			t.Errorf("%s: %d distinct inquiry numbers, want %d", email, got, n)
		}
	}
}

// The number as typed, and a right number or none, on both paths.
func TestAPhoneIsKeptAsTypedAndStoredAsE164OnlyWhenValid(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	gb := b.post(t, "/api/submit-contact", `{"email": "gb@example.com", "phone": "050 123 4567", "metadata": {"country": "GB"}}`).lead(t, http.StatusCreated)
	ae := b.post(t, "/api/submit-contact", `{"email": "ae@example.com", "phone": "050 123 4567", "metadata": {"country": "AE"}}`).lead(t, http.StatusCreated)
	rpcGB, err := b.rpcAsAnon(t, "203.0.113.3", `{"form": "contact_form", "email": "gb-rpc@example.com", "phone": "050 123 4567", "metadata": {"country": "GB"}}`)
	if err != nil {
		t.Fatal(err)
	}
	rpcAE, err := b.rpcAsAnon(t, "203.0.113.3", `{"form": "contact_form", "email": "ae-rpc@example.com", "phone": "050 123 4567", "metadata": {"country": "AE"}}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, id, e164 string
		valid          bool
	}{
		{"http GB", gb.ID, "", false}, {"http AE", ae.ID, "+971501234567", true},
		{"rpc GB", rpcGB["id"].(string), "", false}, {"rpc AE", rpcAE["id"].(string), "+971501234567", true},
	} {
		var phone *string
		var raw string
		var valid bool
		var reasons []string
		if err := b.db.QueryRow(context.Background(), "select phone, phone_raw, phone_valid, score_reasons from conversations where id = $1", c.id).
			Scan(&phone, &raw, &valid, &reasons); err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		got := ""
		if phone != nil {
			got = *phone
		}
		if got != c.e164 || raw != "050 123 4567" || valid != c.valid {
			t.Errorf("%s: phone %q, raw %q, valid %t; want %q, \"050 123 4567\", %t", c.path, got, raw, valid, c.e164, c.valid)
		}
		if !c.valid && !slices.Contains(reasons, "phone could not be verified") {
			t.Errorf("%s: reasons %v lack \"phone could not be verified\"", c.path, reasons)
		}
	}
}
