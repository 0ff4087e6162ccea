package notifiers

import (
	"net/url"
	"strings"
	"time"

	"github.com/truenester/leadrelay"
)

// AlertEventTypes returns every event type an alert is sent for.
func AlertEventTypes() []leadrelay.EventType {
	return []leadrelay.EventType{leadrelay.EventLeadCreated, leadrelay.EventSLAWarning, leadrelay.EventSLABreached,
		leadrelay.EventFollowUpDue, leadrelay.EventFollowUpOverdue}
}

// Alert is what one notification says about a lead. The dispatcher builds it
// from a lead_events row; every channel renders the same facts. The JSON form
// is the data of the CRM webhook.
type Alert struct {
	// EventID is the lead_events id. It stays the same on every retry, so
	// peers that deduplicate (the CRM's webhook-id, mail clients reading
	// Message-ID) see one message.
	EventID       string              `json:"event_id,omitempty"`
	EventType     leadrelay.EventType `json:"kind"` // "kind" on the CRM's wire, as before
	LeadID        string              `json:"lead_id"`
	Name          string              `json:"name,omitempty"`
	Email         string              `json:"email,omitempty"`
	Phone         string              `json:"phone,omitempty"`
	Source        string              `json:"source,omitempty"` // chatbot, contact, property_inquiry, ...
	Form          string              `json:"form,omitempty"`
	PropertyID    string              `json:"property_id,omitempty"`
	PropertyTitle string              `json:"property_title,omitempty"`
	Quality       string              `json:"quality,omitempty"` // hot, warm or cold
	Reasons       []string            `json:"reasons,omitempty"` // why the lead scored as it did
	// Deadline is the SLA deadline (lead.created, sla.*) or the follow-up's
	// due time (followup.*). It is shown in its own location.
	Deadline time.Time `json:"deadline,omitzero"`
	// AdminURL links to the lead in the admin panel; see AdminLink.
	AdminURL string `json:"admin_url,omitempty"`
}

// AdminLink is the admin panel's page for a lead:
// FRONTEND_URL + "/admin/conversations/" + id. It is "" when frontendURL is.
func AdminLink(frontendURL, leadID string) string {
	if frontendURL == "" {
		return ""
	}
	return strings.TrimRight(frontendURL, "/") + "/admin/conversations/" + url.PathEscape(leadID)
}
