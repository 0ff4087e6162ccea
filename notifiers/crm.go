package notifiers

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/webhook"
)

// CRM posts each alert as JSON to the CRM's webhook, signed as Standard
// Webhooks sign (webhook-id, webhook-timestamp, webhook-signature), so the
// CRM can check it came from us and drop a retry it already has.
type CRM struct {
	url    string
	key    []byte
	client *http.Client
	clock  clockwork.Clock
}

func NewCRM(cfg CRMConfig) (*CRM, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("crm: %w", err)
	}
	key, _ := webhook.Key(cfg.Secret) // validate checked it
	return &CRM{url: cfg.WebhookURL, key: key, client: clientOrDefault(cfg.Client), clock: clockOrReal(cfg.Clock)}, nil
}

func (c *CRM) Channel() leadrelay.Channel { return leadrelay.ChannelCRM }

// crmPayload is the Standard Webhooks envelope: type, timestamp, data.
type crmPayload struct {
	Type      leadrelay.EventType `json:"type"`
	Timestamp time.Time           `json:"timestamp"`
	Data      Alert               `json:"data"`
}

func (c *CRM) Send(ctx context.Context, a Alert) error {
	now := c.clock.Now()
	body, err := json.Marshal(crmPayload{Type: a.EventType, Timestamp: now.UTC(), Data: a})
	if err != nil {
		return &DeliveryError{Channel: leadrelay.ChannelCRM, Permanent: true, Err: fmt.Errorf("encode: %w", err)}
	}
	id := a.EventID
	if id == "" {
		id = "msg_" + rand.Text()
	}
	header := http.Header{}
	webhook.Headers(header, c.key, id, now, body)

	reply, err := postOnce(ctx, c.client, c.url, "application/json", header, body)
	if err != nil {
		return connFailure(leadrelay.ChannelCRM, fmt.Errorf("post: %w", err))
	}
	if reply.Status >= 200 && reply.Status < 300 {
		return nil
	}
	return httpFailure(leadrelay.ChannelCRM, reply.Status, string(reply.Body), retryAfterHeader(reply.Header, now))
}
