// Package webhooktest runs the reference Standard Webhooks library (npm
// standardwebhooks) so tests can check that what leadrelay signs, that
// library accepts, and what it signs, leadrelay accepts.
//
// The library is installed once under the module's .cache/standardwebhooks
// (`make test` does it; a test does it itself when npm is there), with a
// bounded npm step that says what it does. Without node or npm the tests
// that need it skip with a message, unless CI=true: then they fail.
package webhooktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the pinned reference library.
const Version = "1.1.1"

// Reference is the installed reference library.
type Reference struct {
	dir string // holds node_modules/standardwebhooks
}

// New returns the reference library, installing it if needed; it skips the
// test (fails it under CI=true) when node or npm is missing or the
// registry cannot be reached.
func New(t testing.TB) *Reference {
	t.Helper()
	dir, err := install()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the reference Standard Webhooks library is required under CI=true: %v", err)
		}
		t.Skipf("SKIPPED: the reference Standard Webhooks library (npm standardwebhooks@%s) is not available: %v", Version, err)
	}
	return &Reference{dir: dir}
}

var install = sync.OnceValues(func() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".cache", "standardwebhooks")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err == nil {
		if _, err := exec.LookPath("node"); err != nil {
			return "", errors.New("node is not on PATH")
		}
		return dir, nil
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s is not on PATH", tool)
		}
	}
	// Install beside the target and rename, so test binaries of several
	// packages installing at once never see half a tree.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "standardwebhooks-install-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fmt.Fprintf(os.Stderr, "webhooktest: npm install standardwebhooks@%s into %s (at most 2 minutes)\n", Version, dir)
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--prefix", tmp, "standardwebhooks@"+Version)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("npm install standardwebhooks@%s: %v: %s", Version, err, bytes.TrimSpace(out))
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); statErr != nil {
			return "", fmt.Errorf("install into %s: %w", dir, err)
		}
	}
	return dir, nil
})

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// script signs or verifies with the library, reading one JSON request on
// stdin and writing one JSON answer.
const script = `
const { Webhook } = require("standardwebhooks");
let input = "";
process.stdin.on("data", (c) => (input += c));
process.stdin.on("end", () => {
  const req = JSON.parse(input);
  const out = {};
  try {
    const wh = new Webhook(req.secret);
    if (req.op === "sign") {
      out.signature = wh.sign(req.id, new Date(req.timestamp * 1000), req.body);
    } else {
      wh.verify(req.body, req.headers);
      out.ok = true;
    }
  } catch (e) {
    out.error = String(e && e.message ? e.message : e);
  }
  process.stdout.write(JSON.stringify(out));
});
`

type request struct {
	Op        string            `json:"op"`
	Secret    string            `json:"secret"`
	ID        string            `json:"id,omitempty"`
	Timestamp int64             `json:"timestamp,omitempty"`
	Body      string            `json:"body"`
	Headers   map[string]string `json:"headers,omitempty"`
}

type answer struct {
	Signature string `json:"signature"`
	OK        bool   `json:"ok"`
	Error     string `json:"error"`
}

func (r *Reference) run(t testing.TB, req request) answer {
	t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "-e", script)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(r.dir, "node_modules"))
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node standardwebhooks: %v: %s", err, stderr.String())
	}
	var a answer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("node standardwebhooks answered %q: %v", out, err)
	}
	return a
}

// Sign is the library's webhook-signature for a message; it fails the test
// when the library refuses the secret.
func (r *Reference) Sign(t testing.TB, secret, id string, timestamp time.Time, body []byte) string {
	t.Helper()
	a := r.run(t, request{Op: "sign", Secret: secret, ID: id, Timestamp: timestamp.Unix(), Body: string(body)})
	if a.Error != "" {
		t.Fatalf("standardwebhooks refused to sign: %s", a.Error)
	}
	return a.Signature
}

// Headers sets the three headers the way a sender using the library does.
func (r *Reference) Headers(t testing.TB, h http.Header, secret, id string, timestamp time.Time, body []byte) {
	t.Helper()
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(timestamp.Unix(), 10))
	h.Set("webhook-signature", r.Sign(t, secret, id, timestamp, body))
}

// Verify is the library's verdict on a received message (at the current
// time): nil when it accepts it.
func (r *Reference) Verify(t testing.TB, secret string, h http.Header, body []byte) error {
	t.Helper()
	headers := map[string]string{}
	for name := range h {
		headers[strings.ToLower(name)] = h.Get(name)
	}
	a := r.run(t, request{Op: "verify", Secret: secret, Body: string(body), Headers: headers})
	if a.OK {
		return nil
	}
	return errors.New("standardwebhooks: " + a.Error)
}
