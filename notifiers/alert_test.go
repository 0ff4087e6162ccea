package notifiers

import (
	"strings"
	"testing"
	"time"

	"github.com/truenester/leadrelay"
)

// hostileName is what a lead might type: markup for every channel, a Slack
// broadcast, and a non-ASCII letter that forces RFC 2047 in a Subject.
const hostileName = `Zoë <!channel> & "Doe" <b>x</b>`

func testAlert() Alert {
	return Alert{
		EventID:       "7f3c2a4e-1b2d-4c5e-9f60-0a1b2c3d4e5f",
		EventType:     leadrelay.EventLeadCreated,
		LeadID:        "0b8e6f7a-58a4-4d0e-8d55-3f2a1c9b7e10",
		Name:          hostileName,
		Email:         "zoe+test@example.com",
		Phone:         "+971 50 123 4567",
		Source:        "property_inquiry",
		Form:          "property-detail",
		PropertyID:    "prop-42",
		PropertyTitle: "Marina View <2BR> & Pool",
		Quality:       "hot",
		Reasons:       []string{"budget > 2M AED", "wants a viewing this week"},
		Deadline:      time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC),
		AdminURL:      AdminLink("https://truenester.com/", "0b8e6f7a-58a4-4d0e-8d55-3f2a1c9b7e10"),
	}
}

// wantFields is what render makes of testAlert, unescaped.
var wantFields = []field{
	{Label: "Email", Value: "zoe+test@example.com"},
	{Label: "Phone", Value: "+971 50 123 4567"},
	{Label: "Source", Value: "property_inquiry / property-detail"},
	{Label: "Property", Value: "Marina View <2BR> & Pool (prop-42)"},
	{Label: "Quality", Value: "HOT"},
	{Label: "Why", Value: "budget > 2M AED; wants a viewing this week"},
	{Label: "Answer by", Value: "Fri 14 Mar 2025, 09:30 UTC"},
}

const wantLink = "https://truenester.com/admin/conversations/0b8e6f7a-58a4-4d0e-8d55-3f2a1c9b7e10"

func TestRenderSharedFields(t *testing.T) {
	t.Parallel()
	m := render(testAlert())
	if want := "New HOT lead: " + hostileName; m.Headline != want {
		t.Errorf("headline = %q, want %q", m.Headline, want)
	}
	if len(m.Fields) != len(wantFields) {
		t.Fatalf("fields = %q, want %q", m.Fields, wantFields)
	}
	for i := range wantFields {
		if m.Fields[i] != wantFields[i] {
			t.Errorf("field %d = %q, want %q", i, m.Fields[i], wantFields[i])
		}
	}
	if m.Link != wantLink {
		t.Errorf("link = %q, want %q", m.Link, wantLink)
	}
}

func TestRenderHeadlinePerKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind    leadrelay.EventType
		quality string
		want    string
	}{
		{leadrelay.EventLeadCreated, "hot", "New HOT lead: Jane Doe"},
		{leadrelay.EventLeadCreated, "", "New lead: Jane Doe"},
		{leadrelay.EventSLAWarning, "warm", "SLA warning: WARM lead Jane Doe not answered yet"},
		{leadrelay.EventSLABreached, "hot", "SLA breached: HOT lead Jane Doe was not answered in time"},
		{leadrelay.EventFollowUpDue, "cold", "Follow-up due: Jane Doe"},
		{leadrelay.EventFollowUpOverdue, "", "Follow-up overdue: Jane Doe"},
		{"lead.reassigned", "", "Lead update (lead.reassigned): Jane Doe"},
	}
	for _, tt := range tests {
		got := render(Alert{EventType: tt.kind, Name: "Jane Doe", Quality: tt.quality}).Headline
		if got != tt.want {
			t.Errorf("%s/%q: headline = %q, want %q", tt.kind, tt.quality, got, tt.want)
		}
	}
}

func TestRenderFollowUpDeadlineLabelAndEmptyFields(t *testing.T) {
	t.Parallel()
	m := render(Alert{EventType: leadrelay.EventFollowUpOverdue, Deadline: time.Date(2025, 3, 14, 9, 30, 0, 0, time.UTC)})
	if m.Headline != "Follow-up overdue: (no name)" {
		t.Errorf("headline = %q", m.Headline)
	}
	want := []field{{Label: "Follow-up due", Value: "Fri 14 Mar 2025, 09:30 UTC"}}
	if len(m.Fields) != 1 || m.Fields[0] != want[0] {
		t.Errorf("fields = %q, want only %q", m.Fields, want)
	}
	if m.Link != "" || strings.Contains(m.plainText(), linkLabel) {
		t.Errorf("no link expected without AdminURL, got %q", m.plainText())
	}
}

func TestRenderFlattensAndClipsTypedValues(t *testing.T) {
	t.Parallel()
	m := render(Alert{EventType: leadrelay.EventLeadCreated, Name: "Jane\r\nPhone: +1 forged\tDoe", Email: strings.Repeat("a", 2000)})
	if want := "New lead: Jane Phone: +1 forged Doe"; m.Headline != want {
		t.Errorf("headline = %q, want %q", m.Headline, want)
	}
	if got := []rune(m.Fields[0].Value); len(got) != maxValueRunes || got[len(got)-1] != '…' {
		t.Errorf("email not clipped to %d runes with an ellipsis: %d runes", maxValueRunes, len(got))
	}
}

func TestAdminLink(t *testing.T) {
	t.Parallel()
	if got := AdminLink("https://truenester.com//", "a/b c"); got != "https://truenester.com/admin/conversations/a%2Fb%20c" {
		t.Errorf("AdminLink = %q", got)
	}
	if got := AdminLink("", "x"); got != "" {
		t.Errorf("AdminLink without FRONTEND_URL = %q, want empty", got)
	}
}

func TestPlainText(t *testing.T) {
	t.Parallel()
	got := render(testAlert()).plainText()
	want := "New HOT lead: " + hostileName + "\n" +
		"\nEmail: zoe+test@example.com" +
		"\nPhone: +971 50 123 4567" +
		"\nSource: property_inquiry / property-detail" +
		"\nProperty: Marina View <2BR> & Pool (prop-42)" +
		"\nQuality: HOT" +
		"\nWhy: budget > 2M AED; wants a viewing this week" +
		"\nAnswer by: Fri 14 Mar 2025, 09:30 UTC" +
		"\n\nOpen in admin panel: " + wantLink
	if got != want {
		t.Errorf("plainText =\n%s\nwant\n%s", got, want)
	}
}

// A verified phone (the database stores E.164 only when valid) is a tel:
// link where the channel has links; one shown as typed is not.
func TestAVerifiedPhoneIsTappable(t *testing.T) {
	t.Parallel()
	phoneField := func(m message) field {
		for _, f := range m.Fields {
			if f.Label == "Phone" {
				return f
			}
		}
		t.Fatalf("no Phone field in %q", m.Fields)
		return field{}
	}
	a := testAlert()
	a.Phone = "+971501234567"
	m := render(a)
	if f := phoneField(m); f.Tel != "tel:+971501234567" || f.Value != "+971501234567" {
		t.Errorf("phone field = %+v, want a tel: link to +971501234567", f)
	}
	var slackPhone string
	for _, f := range slackPayload(m).Blocks[1].Fields {
		if strings.HasPrefix(f.Text, "*Phone*") {
			slackPhone = f.Text
		}
	}
	if want := "*Phone*\n<tel:+971501234567|+971501234567>"; slackPhone != want {
		t.Errorf("Slack phone field = %q, want %q", slackPhone, want)
	}
	if html := emailHTML(m); !strings.Contains(html, `<a href="tel:+971501234567">+971501234567</a>`) {
		t.Errorf("email HTML has no tel: link:\n%s", html)
	}

	a.Phone = "050 123 4567 (not verified)"
	m = render(a)
	if f := phoneField(m); f.Tel != "" {
		t.Errorf("an unverified phone became a link: %+v", f)
	}
	if html := emailHTML(m); strings.Contains(html, "tel:") {
		t.Errorf("email HTML links an unverified phone:\n%s", html)
	}
}
