package leadrelay_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/dev/dbtest"
)

func values[T ~string](list []T) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = string(v)
	}
	return out
}

// Every SQL enum of the public schema has its mirror, with the same values in
// the same order, and every mirror has its enum: a value added on either
// side alone fails here.
func TestVocabularyMatchesSQL(t *testing.T) {
	t.Parallel()
	mirrors := map[string][]string{
		"lead_form":            values(leadrelay.Forms()),
		"lead_quality":         values(leadrelay.Qualities()),
		"conversation_status":  values(leadrelay.ConversationStatuses()),
		"sender_type":          values(leadrelay.SenderTypes()),
		"lead_event_type":      values(leadrelay.EventTypes()),
		"actor_type":           values(leadrelay.ActorTypes()),
		"timeline_event_type":  values(leadrelay.TimelineTypes()),
		"follow_up_status":     values(leadrelay.FollowUpStatuses()),
		"notification_channel": values(leadrelay.Channels()),
		"notification_status":  values(leadrelay.DeliveryStatuses()),
	}
	db := dbtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.Query(ctx, `select t.typname::text from pg_type t
		join pg_namespace n on n.oid = t.typnamespace
		where n.nspname = 'public' and t.typtype = 'e'`)
	if err != nil {
		t.Fatal(err)
	}
	enums, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(enums) == 0 {
		t.Fatal("the migrated database has no enum in public")
	}
	for _, name := range enums {
		if _, ok := mirrors[name]; !ok {
			t.Errorf("SQL enum %s has no Go mirror in vocabulary.go", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(mirrors)) {
		var want []string
		if err := db.QueryRow(ctx, "select enum_range(null::public."+name+")::text[]").Scan(&want); err != nil {
			t.Errorf("Go mirror %s: enum_range: %v", name, err)
			continue
		}
		if got := mirrors[name]; !slices.Equal(got, want) {
			t.Errorf("SQL enum %s = %q, its Go mirror = %q", name, want, got)
		}
	}
}
