package notifiers

import "github.com/truenester/leadrelay"

// ChannelConsole is the developer's console, used when no real channel is
// configured. It is deliberately not in notification_channel: a line printed
// on a terminal is not a delivery worth a notification_logs row.
const ChannelConsole leadrelay.Channel = "console"
