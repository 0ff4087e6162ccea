// Package leadrelay is the pipeline's vocabulary, the one Go mirror of the
// SQL enums in supabase/migrations. The enums are the definition: every
// value the Go code stores, compares or routes by is a constant here, and
// TestVocabularyMatchesSQL compares each list with enum_range in a migrated
// database. It depends on nothing, so every package may use it.
package leadrelay

// Form is the form a lead came through (lead_form).
type Form string

const (
	FormContact         Form = "contact_form"
	FormPropertyInquiry Form = "property_inquiry"
	FormChatbot         Form = "chatbot"
)

// Forms lists lead_form in the enum's order.
func Forms() []Form { return []Form{FormContact, FormPropertyInquiry, FormChatbot} }

// Quality is how promising a lead scored (lead_quality); it sets the SLA.
type Quality string

const (
	QualityHot  Quality = "hot"
	QualityWarm Quality = "warm"
	QualityCold Quality = "cold"
)

// Qualities lists lead_quality in the enum's order.
func Qualities() []Quality { return []Quality{QualityHot, QualityWarm, QualityCold} }

// ConversationStatus is where a lead stands with the team
// (conversation_status). Closed and spam leads are no longer open.
type ConversationStatus string

const (
	ConversationNew       ConversationStatus = "new"
	ConversationContacted ConversationStatus = "contacted"
	ConversationQualified ConversationStatus = "qualified"
	ConversationConverted ConversationStatus = "converted"
	ConversationClosed    ConversationStatus = "closed"
	ConversationSpam      ConversationStatus = "spam"
)

// ConversationStatuses lists conversation_status in the enum's order.
func ConversationStatuses() []ConversationStatus {
	return []ConversationStatus{ConversationNew, ConversationContacted, ConversationQualified,
		ConversationConverted, ConversationClosed, ConversationSpam}
}

// SenderType is who wrote a chat message (sender_type).
type SenderType string

const (
	SenderCustomer SenderType = "customer"
	SenderBot      SenderType = "bot"
	SenderAgent    SenderType = "agent"
	SenderSystem   SenderType = "system"
)

// SenderTypes lists sender_type in the enum's order.
func SenderTypes() []SenderType {
	return []SenderType{SenderCustomer, SenderBot, SenderAgent, SenderSystem}
}

// EventType is what a lead_events row (an outbox event) says happened
// (lead_event_type). The channels an event goes to are routed by it.
type EventType string

const (
	EventLeadCreated        EventType = "lead.created"
	EventLeadUpdated        EventType = "lead.updated"
	EventLeadStatusChanged  EventType = "lead.status_changed"
	EventLeadResponded      EventType = "lead.responded"
	EventSLAWarning         EventType = "sla.warning"
	EventSLABreached        EventType = "sla.breached"
	EventFollowUpDue        EventType = "followup.due"
	EventFollowUpOverdue    EventType = "followup.overdue"
	EventNotificationSent   EventType = "notification.sent"
	EventNotificationFailed EventType = "notification.failed"
)

// EventTypes lists lead_event_type in the enum's order.
func EventTypes() []EventType {
	return []EventType{EventLeadCreated, EventLeadUpdated, EventLeadStatusChanged, EventLeadResponded,
		EventSLAWarning, EventSLABreached, EventFollowUpDue, EventFollowUpOverdue,
		EventNotificationSent, EventNotificationFailed}
}

// ActorType is who did what a timeline entry records (actor_type).
type ActorType string

const (
	ActorSystem   ActorType = "system"
	ActorAgent    ActorType = "agent"
	ActorCustomer ActorType = "customer"
	ActorBot      ActorType = "bot"
)

// ActorTypes lists actor_type in the enum's order.
func ActorTypes() []ActorType { return []ActorType{ActorSystem, ActorAgent, ActorCustomer, ActorBot} }

// TimelineType is what a conversation_timeline entry records
// (timeline_event_type).
type TimelineType string

const (
	TimelineCreated            TimelineType = "created"
	TimelineStatusChanged      TimelineType = "status_changed"
	TimelineQualityChanged     TimelineType = "quality_changed"
	TimelineFirstResponse      TimelineType = "first_response"
	TimelineMessage            TimelineType = "message"
	TimelineNotificationSent   TimelineType = "notification_sent"
	TimelineNotificationFailed TimelineType = "notification_failed"
	TimelineSLAWarning         TimelineType = "sla_warning"
	TimelineSLABreached        TimelineType = "sla_breached"
	TimelineFollowUpDue        TimelineType = "followup_due"
	TimelineFollowUpOverdue    TimelineType = "followup_overdue"
	TimelineNote               TimelineType = "note"
	// The admin's actions (supabase/functions-sql/80_console.sql).
	TimelineAssigned          TimelineType = "assigned"
	TimelineFollowUpScheduled TimelineType = "followup_scheduled"
	TimelineFollowUpCompleted TimelineType = "followup_completed"
	TimelineFollowUpCancelled TimelineType = "followup_cancelled"
)

// TimelineTypes lists timeline_event_type in the enum's order.
func TimelineTypes() []TimelineType {
	return []TimelineType{TimelineCreated, TimelineStatusChanged, TimelineQualityChanged, TimelineFirstResponse,
		TimelineMessage, TimelineNotificationSent, TimelineNotificationFailed, TimelineSLAWarning,
		TimelineSLABreached, TimelineFollowUpDue, TimelineFollowUpOverdue, TimelineNote,
		TimelineAssigned, TimelineFollowUpScheduled, TimelineFollowUpCompleted, TimelineFollowUpCancelled}
}

// FollowUpStatus is where a follow-up task stands (follow_up_status).
type FollowUpStatus string

const (
	FollowUpScheduled FollowUpStatus = "scheduled"
	FollowUpCompleted FollowUpStatus = "completed"
	FollowUpOverdue   FollowUpStatus = "overdue"
	FollowUpCancelled FollowUpStatus = "cancelled"
)

// FollowUpStatuses lists follow_up_status in the enum's order.
func FollowUpStatuses() []FollowUpStatus {
	return []FollowUpStatus{FollowUpScheduled, FollowUpCompleted, FollowUpOverdue, FollowUpCancelled}
}

// Channel is where a notification goes (notification_channel); the
// dispatcher stores it in notification_logs.channel.
type Channel string

const (
	ChannelSlack    Channel = "slack"
	ChannelEmail    Channel = "email"
	ChannelTelegram Channel = "telegram"
	ChannelWhatsApp Channel = "whatsapp"
	ChannelSMS      Channel = "sms"
	ChannelCRM      Channel = "crm"
)

// Channels lists notification_channel in the enum's order.
func Channels() []Channel {
	return []Channel{ChannelSlack, ChannelEmail, ChannelTelegram, ChannelWhatsApp, ChannelSMS, ChannelCRM}
}

// DeliveryStatus is where one delivery of an event to one channel stands
// (notification_status, the status of a notification_logs row).
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending" // not sent yet, or a transient failure retried later
	DeliverySent      DeliveryStatus = "sent"
	DeliveryDelivered DeliveryStatus = "delivered" // a peer confirmed receipt
	DeliveryFailed    DeliveryStatus = "failed"
)

// DeliveryStatuses lists notification_status in the enum's order.
func DeliveryStatuses() []DeliveryStatus {
	return []DeliveryStatus{DeliveryPending, DeliverySent, DeliveryDelivered, DeliveryFailed}
}
