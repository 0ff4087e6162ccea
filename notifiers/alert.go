package notifiers

import (
	"net/url"
	"strings"
	"time"
)

// Kind is the lead event an alert is about. The values are the
// lead_events.event_type values that notify someone.
type Kind string

const (
	KindLeadCreated     Kind = "lead.created"
	KindSLAWarning      Kind = "sla.warning"
	KindSLABreached     Kind = "sla.breached"
	KindFollowUpDue     Kind = "followup.due"
	KindFollowUpOverdue Kind = "followup.overdue"
)

// Kinds returns every kind an alert is sent for.
func Kinds() []Kind {
	return []Kind{KindLeadCreated, KindSLAWarning, KindSLABreached, KindFollowUpDue, KindFollowUpOverdue}
}

// Alert is what one notification says about a lead. The dispatcher builds it
// from a lead_events row; every channel renders the same facts. The JSON form
// is the data of the CRM webhook.
type Alert struct {
	// EventID is the lead_events id. It stays the same on every retry, so
	// peers that deduplicate (the CRM's webhook-id, mail clients reading
	// Message-ID) see one message.
	EventID       string   `json:"event_id,omitempty"`
	Kind          Kind     `json:"kind"`
	LeadID        string   `json:"lead_id"`
	Name          string   `json:"name,omitempty"`
	Email         string   `json:"email,omitempty"`
	Phone         string   `json:"phone,omitempty"`
	Source        string   `json:"source,omitempty"` // chatbot, contact, property_inquiry, ...
	Form          string   `json:"form,omitempty"`
	PropertyID    string   `json:"property_id,omitempty"`
	PropertyTitle string   `json:"property_title,omitempty"`
	Quality       string   `json:"quality,omitempty"` // hot, warm or cold
	Reasons       []string `json:"reasons,omitempty"` // why the lead scored as it did
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
