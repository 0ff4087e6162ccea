package console

import "time"

// Heartbeat is how often an event stream pings and reads its session again, for the tests
// that move the injected clock past it.
const Heartbeat = heartbeat

// OpenRefresh opens a session's sealed refresh token with its cookie's token, for the tests
// that ask the Auth API's peer what it makes of the token a session keeps.
func OpenRefresh(token string, sealed []byte) (string, error) { return openRefresh(token, sealed) }

// HumanDuration is how the console's pages say a duration, for the test that holds it to
// the SQL's duration_text.
func HumanDuration(d time.Duration) string { return humanDuration(d) }
