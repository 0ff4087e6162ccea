// Package health keeps what each part of a running replica says of itself
// (the database at start-up, the dispatcher, LISTEN, the SLA engine), so that
// /readyz tells the truth about the whole process, and logs each part's
// changes of state once, never once per tick.
package health

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// errStarting is a part's state until its first report.
var errStarting = errors.New("starting")

// Registry holds the state of every part. It is safe for concurrent use.
type Registry struct {
	log *slog.Logger

	mu    sync.Mutex
	parts map[string]error // nil: works
}

// New returns an empty Registry that logs changes of state to log.
func New(log *slog.Logger) *Registry {
	return &Registry{log: log, parts: map[string]error{}}
}

// Part registers a part, not ready until it first reports that it works,
// and returns the function it reports through. On a nil Registry it returns
// a Report that does nothing, so a part may run without one (in tests).
func (r *Registry) Part(name string) Report {
	if r == nil {
		return func(error) {}
	}
	r.mu.Lock()
	if _, ok := r.parts[name]; !ok {
		r.parts[name] = errStarting
	}
	r.mu.Unlock()
	return func(err error) { r.set(name, err) }
}

// Report is how a part says it works (nil) or why it does not.
type Report func(err error)

func (r *Registry) set(name string, err error) {
	r.mu.Lock()
	prev, known := r.parts[name]
	r.parts[name] = err
	r.mu.Unlock()
	switch {
	case err != nil && (prev == nil || prev == errStarting || !known):
		r.log.Warn("health: "+name+" is not working; /readyz fails until it is", "part", name, "err", err)
	case err == nil && prev != nil && prev != errStarting:
		r.log.Info("health: "+name+" works again", "part", name)
	case err == nil && (prev == errStarting || !known):
		r.log.Debug("health: "+name+" works", "part", name)
	}
}

// Check returns nil when every part works, else an error naming each part
// that does not and why.
func (r *Registry) Check() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var failing []string
	for _, name := range r.names() {
		if err := r.parts[name]; err != nil {
			failing = append(failing, name+": "+err.Error())
		}
	}
	if len(failing) == 0 {
		return nil
	}
	return errors.New(strings.Join(failing, "; "))
}

// States returns each part's state: "ok", "starting" or why it fails.
func (r *Registry) States() map[string]string {
	if r == nil {
		return map[string]string{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	states := make(map[string]string, len(r.parts))
	for name, err := range r.parts {
		states[name] = "ok"
		if err != nil {
			states[name] = err.Error()
		}
	}
	return states
}

func (r *Registry) names() []string {
	names := make([]string, 0, len(r.parts))
	for name := range r.parts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
