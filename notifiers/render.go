package notifiers

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/truenester/leadrelay"
)

// message is what every channel says about an alert, before the channel's
// own markup. Values are plain text, unescaped: each channel escapes them.
type message struct {
	Headline string
	Fields   []field
	Link     string // the lead in the admin panel; "" when unknown
}

type field struct {
	Label string
	Value string
}

const linkLabel = "Open in admin panel"

// Bounds on what a lead typed, so one long field cannot push a message over
// a channel's limit (Slack rejects a block field over 2,000 characters,
// Telegram a message over 4,096) and turn into a permanent failure.
const (
	maxNameRunes  = 200
	maxValueRunes = 500
)

const deadlineLayout = "Mon 2 Jan 2006, 15:04 MST"

// render turns an alert into the facts every channel shows, in order.
func render(a Alert) message {
	name := oneLine(a.Name, maxNameRunes)
	if name == "" {
		name = "(no name)"
	}
	quality := strings.ToUpper(oneLine(a.Quality, 20))

	m := message{Headline: headline(a.EventType, name, quality), Link: a.AdminURL}
	add := func(label, value string) {
		if value = oneLine(value, maxValueRunes); value != "" {
			m.Fields = append(m.Fields, field{Label: label, Value: value})
		}
	}
	add("Email", a.Email)
	add("Phone", a.Phone)
	add("Source", joinNonEmpty(" / ", a.Source, a.Form))
	property := a.PropertyTitle
	if a.PropertyID != "" {
		property = joinNonEmpty(" ", property, "("+a.PropertyID+")")
	}
	add("Property", property)
	add("Quality", quality)
	add("Why", strings.Join(a.Reasons, "; "))
	if !a.Deadline.IsZero() {
		label := "Answer by"
		if a.EventType == leadrelay.EventFollowUpDue || a.EventType == leadrelay.EventFollowUpOverdue {
			label = "Follow-up due"
		}
		add(label, a.Deadline.Format(deadlineLayout))
	}
	return m
}

func headline(kind leadrelay.EventType, name, quality string) string {
	lead := name
	if quality != "" {
		lead = quality + " lead " + name
	}
	switch kind {
	case leadrelay.EventLeadCreated:
		if quality == "" {
			return "New lead: " + name
		}
		return "New " + quality + " lead: " + name
	case leadrelay.EventSLAWarning:
		return "SLA warning: " + lead + " not answered yet"
	case leadrelay.EventSLABreached:
		return "SLA breached: " + lead + " was not answered in time"
	case leadrelay.EventFollowUpDue:
		return "Follow-up due: " + name
	case leadrelay.EventFollowUpOverdue:
		return "Follow-up overdue: " + name
	default:
		return "Lead update (" + oneLine(string(kind), 50) + "): " + name
	}
}

// plainText is the message as plain text: the console, the email's text
// part and SMS use it.
func (m message) plainText() string {
	var b strings.Builder
	b.WriteString(m.Headline)
	b.WriteString("\n")
	for _, f := range m.Fields {
		b.WriteString("\n" + f.Label + ": " + f.Value)
	}
	if m.Link != "" {
		b.WriteString("\n\n" + linkLabel + ": " + m.Link)
	}
	return b.String()
}

// oneLine makes a value someone typed safe to show on one line: control
// characters (newlines included, which could forge extra "fields" or
// headers) become spaces, runs of space collapse, and it is cut to max runes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	return clip(s, max)
}

// clip cuts s to at most max runes, marking the cut with an ellipsis.
func clip(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}
