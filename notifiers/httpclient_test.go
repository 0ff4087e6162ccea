package notifiers

import (
	"sync"
	"testing"

	"github.com/truenester/leadrelay/notifiers/notifierstest"
)

// A channel's client keeps its connections: 400 alerts sent 16 at a time
// reuse a few connections (http.DefaultClient, keeping 2 idle connections
// per host, opens one for nearly every alert).
func TestAChannelReusesItsConnections(t *testing.T) {
	t.Parallel()
	peer := notifierstest.NewSlack(t)
	const alerts, concurrency = 400, 16
	s, err := NewSlack(SlackConfig{WebhookURL: peer.URL, Client: NewHTTPClient(concurrency)})
	if err != nil {
		t.Fatalf("NewSlack: %v", err)
	}
	work := make(chan struct{})
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for range work {
				if err := s.Send(t.Context(), testAlert()); err != nil {
					t.Errorf("Send: %v", err)
				}
			}
		})
	}
	for range alerts {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	if got := len(peer.Messages()); got != alerts {
		t.Fatalf("peer accepted %d alerts, want %d", got, alerts)
	}
	// The transport caps connections at the concurrency, but a connection
	// whose send's context is cancelled just as its reply is read may be
	// closed instead of kept (the transport's read loop sees both at once),
	// so a few more than 16 can open on a loaded machine. A client that did
	// not keep its connections (http.DefaultClient keeps 2) opens hundreds.
	if n := peer.Connections(); n > alerts/10 {
		t.Errorf("%d alerts opened %d connections, want at most %d", alerts, n, alerts/10)
	}
}
