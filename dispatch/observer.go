package dispatch

import (
	"time"

	"github.com/truenester/leadrelay"
)

// Observer hears of every delivery attempt: its channel, what it led to
// (sent, pending for a retry, failed) and how long it took. Package metrics
// is one.
type Observer interface {
	DeliveryAttempted(channel leadrelay.Channel, status leadrelay.DeliveryStatus, took time.Duration)
}

// observe tells Config.Observer, if any, of an attempt begun at start.
func (d *Dispatcher) observe(channel leadrelay.Channel, status leadrelay.DeliveryStatus, start time.Time) {
	if d.cfg.Observer != nil {
		d.cfg.Observer.DeliveryAttempted(channel, status, time.Since(start))
	}
}
