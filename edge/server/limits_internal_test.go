package server

import (
	"context"
	"testing"

	"github.com/truenester/leadrelay/dev/dbtest"
)

// The HTTP intake's body limit mirrors the one definition of the intake's
// limits, submit_lead's intake_limit('payload_bytes'), so a lead refused on
// one path is refused on the other.
func TestTheBodyLimitIsSubmitLeadsPayloadLimit(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	var payloadBytes int
	if err := db.QueryRow(context.Background(), "select public.intake_limit('payload_bytes')").Scan(&payloadBytes); err != nil {
		t.Fatal(err)
	}
	if payloadBytes != maxIntakeBody {
		t.Errorf("maxIntakeBody is %d bytes, submit_lead's payload limit %d: make them one", maxIntakeBody, payloadBytes)
	}
}
