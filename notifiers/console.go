package notifiers

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/truenester/leadrelay"
)

// Console prints alerts where a developer sees them, for when no channel is
// configured (as under `make run`).
type Console struct {
	mu sync.Mutex // one alert's lines stay together
	w  io.Writer
}

func NewConsole(w io.Writer) *Console { return &Console{w: w} }

func (c *Console) Channel() leadrelay.Channel { return ChannelConsole }

func (c *Console) Send(_ context.Context, a Alert) error {
	text := "  " + strings.ReplaceAll(render(a).plainText(), "\n", "\n  ")
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := fmt.Fprintf(c.w, "--- alert %s (lead %s)\n%s\n", a.EventType, a.LeadID, text); err != nil {
		return &DeliveryError{Channel: ChannelConsole, Err: fmt.Errorf("write: %w", err)}
	}
	return nil
}
