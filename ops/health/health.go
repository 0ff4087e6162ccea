// Package health keeps what each part of a running replica says of itself
// (the database at start-up, the dispatcher, LISTEN, the SLA engine), so that
// /readyz tells the truth about the whole process, and logs each part's
// changes of state once, never once per tick.
//
// A part that fails says so; a part that hangs cannot. So a watched part
// (Watch) also shows progress: its loop beats on every iteration, idle waits
// included, and each step that may block (a send, a claim, a job) runs
// between Begin and its end. A part silent for longer than its bound, or with
// a step begun longer ago than that, is stale: not ready, named in Check
// with how long it has been silent. Time comes from the process's one clock.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// errStarting is a part's state until its first report.
var errStarting = errors.New("starting")

// Registry holds the state of every part. It is safe for concurrent use.
type Registry struct {
	log   *slog.Logger
	clock clockwork.Clock

	mu    sync.Mutex
	parts map[string]*part
}

type part struct {
	off   string        // why the process does not run it, on purpose; "": it runs
	err   error         // nil: works
	bound time.Duration // the longest it may be silent; 0: not watched
	last  time.Time     // its last progress
	steps map[uint64]time.Time
	next  uint64 // the next step's key
	stale bool   // found stale, and logged so
}

// silence is how long the part has shown no progress at now: since its
// last sign of life, or since the oldest step it has not ended began. A
// part not yet started (no report, beat or step) is not silent: it is
// "starting".
func (p *part) silence(now time.Time) time.Duration {
	since := p.last
	for _, begun := range p.steps {
		if since.IsZero() || begun.Before(since) {
			since = begun
		}
	}
	if since.IsZero() {
		return 0
	}
	return now.Sub(since)
}

func (p *part) overdue(now time.Time) bool { return p.bound > 0 && p.silence(now) > p.bound }

// New returns an empty Registry that logs changes of state to log and reads
// the time from clock (nil: the real one).
func New(log *slog.Logger, clock clockwork.Clock) *Registry {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Registry{log: log, clock: clock, parts: map[string]*part{}}
}

// Part registers a part, not ready until it first reports that it works,
// and returns the function it reports through. On a nil Registry it returns
// a Report that does nothing, so a part may run without one (in tests).
func (r *Registry) Part(name string) Report {
	if r == nil {
		return func(error) {}
	}
	r.register(name, 0)
	return func(err error) { r.report(name, err, true) }
}

// Off registers a part this process does not run, on purpose (its settings
// leave it off): its state is "off: " and why, and it never fails Check. So
// /readyz says what the replica does not do without taking it out of the
// rotation for what it does; the caller warns about it once.
func (r *Registry) Off(name, why string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parts[name] = &part{off: why}
}

// Report is how a part says it works (nil) or why it does not.
type Report func(err error)

// Watch registers a part like Part that must also show progress: it is
// stale when it has been silent (no Report, Beat or step's end) for longer
// than bound, or a step it began has run longer than that. bound is the
// longest the part can be silent while it works, derived from its intervals
// and timeouts. The silence counts from the part's first sign of life, so a
// part may register before it runs (until then it is "starting"). On a nil
// Registry it returns nil, whose methods do nothing.
func (r *Registry) Watch(name string, bound time.Duration) *Progress {
	if r == nil {
		return nil
	}
	r.register(name, bound)
	return &Progress{r: r, name: name}
}

func (r *Registry) register(name string, bound time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.parts[name]
	if !ok {
		p = &part{err: errStarting}
		r.parts[name] = p
	}
	p.bound = bound
}

// Progress is how a watched part reports, and shows that it moves.
type Progress struct {
	r    *Registry
	name string
}

// Report says the part works (nil) or why it does not; either is progress.
func (p *Progress) Report(err error) {
	if p != nil {
		p.r.report(p.name, err, true)
	}
}

// Beat says the part's loop goes round (a tick, a wake, an idle wait's end).
func (p *Progress) Beat() {
	if p != nil {
		p.r.report(p.name, nil, false)
	}
}

// Begin marks the start of a step that may block (a send, a query); the
// returned function marks its end. A step longer than the bound makes the
// part stale however often its loop beats.
func (p *Progress) Begin() (end func()) {
	if p == nil {
		return func() {}
	}
	r := p.r
	r.mu.Lock()
	pt := r.parts[p.name]
	if pt.steps == nil {
		pt.steps = map[uint64]time.Time{}
	}
	key := pt.next
	pt.next++
	pt.steps[key] = r.clock.Now()
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(pt.steps, key)
		r.mu.Unlock()
		r.report(p.name, nil, false)
	}
}

// report records progress, and with state a part's new state, and logs
// what changed.
func (r *Registry) report(name string, err error, state bool) {
	now := r.clock.Now()
	r.mu.Lock()
	p := r.parts[name]
	prev := p.err
	if state {
		p.err = err
	}
	p.last = now
	recovered := p.stale && !p.overdue(now)
	if recovered {
		p.stale = false
	}
	r.mu.Unlock()
	if recovered {
		r.log.Info("health: "+name+" makes progress again", "part", name)
	}
	if !state {
		return
	}
	switch {
	case err != nil && (prev == nil || prev == errStarting):
		r.log.Warn("health: "+name+" is not working; /readyz fails until it is", "part", name, "err", err)
	case err == nil && prev != nil && prev != errStarting:
		r.log.Info("health: "+name+" works again", "part", name)
	case err == nil && prev == errStarting:
		r.log.Debug("health: "+name+" works", "part", name)
	}
}

// Run looks for stale parts until ctx ends, often enough to find one within
// half its bound, and logs each once when it goes stale (Check finds them
// too, when /readyz asks first). Its recovery is logged when it next shows
// progress.
func (r *Registry) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(r.every()):
			r.Check()
		}
	}
}

// every is half the shortest bound of a watched part (a second while none is).
func (r *Registry) every() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	every := time.Duration(0)
	for _, p := range r.parts {
		if p.bound > 0 && (every == 0 || p.bound/2 < every) {
			every = p.bound / 2
		}
	}
	if every <= 0 {
		return time.Second
	}
	return every
}

// Check returns nil when every part works and moves, else an error naming
// each part that does not and why. A part it finds stale for the first time
// is logged. A part that is off passes.
func (r *Registry) Check() error {
	if r == nil {
		return nil
	}
	states := r.states()
	var failing []string
	for _, name := range sortedKeys(states) {
		if s := states[name]; s.fails {
			failing = append(failing, name+": "+s.text)
		}
	}
	if len(failing) == 0 {
		return nil
	}
	return errors.New(strings.Join(failing, "; "))
}

// States returns each part's state: "ok", "starting", why it fails, how
// long it has shown no progress, or "off: " and why.
func (r *Registry) States() map[string]string {
	if r == nil {
		return map[string]string{}
	}
	states := r.states()
	out := make(map[string]string, len(states))
	for name, s := range states {
		out[name] = s.text
	}
	return out
}

// state is what a part says of itself, and whether that fails the check.
type state struct {
	text  string
	fails bool
}

func (r *Registry) states() map[string]state {
	now := r.clock.Now()
	type stale struct {
		name           string
		silence, bound time.Duration
	}
	var found []stale
	r.mu.Lock()
	states := make(map[string]state, len(r.parts))
	for name, p := range r.parts {
		if p.off != "" {
			states[name] = state{text: "off: " + p.off}
			continue
		}
		var says []string
		if p.err != nil {
			says = append(says, p.err.Error())
		}
		if p.overdue(now) {
			silence := p.silence(now)
			says = append(says, fmt.Sprintf("no progress for %s (bound %s)", silence.Round(time.Millisecond), p.bound))
			if !p.stale {
				p.stale = true
				found = append(found, stale{name, silence, p.bound})
			}
		}
		states[name] = state{text: "ok"}
		if len(says) > 0 {
			states[name] = state{text: strings.Join(says, "; "), fails: true}
		}
	}
	r.mu.Unlock()
	for _, s := range found {
		r.log.Warn("health: "+s.name+" has made no progress for longer than its bound; /readyz fails until it does",
			"part", s.name, "silent", s.silence.Round(time.Millisecond).String(), "bound", s.bound.String())
	}
	return states
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
