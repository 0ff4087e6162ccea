// Package notifiers sends one alert about a lead to one channel: Slack,
// email, Telegram, SMS and WhatsApp (Twilio), a CRM webhook, or the console.
//
// Each sender reports a failure as a *DeliveryError that says whether
// retrying can help (IsPermanent) and how long the peer asked to wait
// (RetryAfter), so the dispatcher can retry each channel on its own.
package notifiers

import (
	"context"

	"github.com/jonboulle/clockwork"
	"github.com/truenester/leadrelay"
)

// Sender delivers alerts to one channel. Senders are safe for concurrent use.
type Sender interface {
	Channel() leadrelay.Channel
	// Send delivers one alert. ctx bounds the whole attempt; without a
	// deadline, DefaultSendTimeout applies. A failure is a *DeliveryError.
	Send(ctx context.Context, a Alert) error
}

// clockOrReal is a sender's clock: the one given, or the real one.
func clockOrReal(c clockwork.Clock) clockwork.Clock {
	if c == nil {
		return clockwork.NewRealClock()
	}
	return c
}
