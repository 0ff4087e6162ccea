package notifiers

// Channel names a delivery channel. The values mirror the SQL enum
// notification_channel (TestChannelsMatchSQLEnum checks it), because the
// dispatcher stores them in notification_logs.channel.
type Channel string

const (
	ChannelSlack    Channel = "slack"
	ChannelEmail    Channel = "email"
	ChannelTelegram Channel = "telegram"
	ChannelWhatsApp Channel = "whatsapp"
	ChannelSMS      Channel = "sms"
	ChannelCRM      Channel = "crm"
)

// ChannelConsole is the developer's console, used when no real channel is
// configured. It is deliberately not in notification_channel: a line printed
// on a terminal is not a delivery worth a notification_logs row.
const ChannelConsole Channel = "console"

// Channels returns every channel of notification_channel, in the enum's order.
func Channels() []Channel {
	return []Channel{ChannelSlack, ChannelEmail, ChannelTelegram, ChannelWhatsApp, ChannelSMS, ChannelCRM}
}
