package console

// Heartbeat is how often an event stream pings and reads its session again, for the tests
// that move the injected clock past it.
const Heartbeat = heartbeat
