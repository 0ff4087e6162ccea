package dispatch

import "time"

// progressBound is the longest the dispatcher can be silent while it works
// (health.Registry.Watch): a delivery ends within its attempt (SendTimeout)
// and the recording of its outcome, retried for up to a Lease and then tried
// once more (SendTimeout); a claim within SendTimeout; and the loop goes
// round at least every Lease/3 of the clock (the heartbeat that renews the
// leases, its statement itself bounded by Lease/3), more often with the
// sweep.
func (c Config) progressBound() time.Duration { return c.Lease + 2*c.SendTimeout }

// renewEvery is the heartbeat's longest spacing: a third of the lease, so a
// send in flight has its lease renewed twice before it could lapse.
func (c Config) renewEvery() time.Duration { return max(c.Lease/3, time.Millisecond) }
