package config_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/truenester/leadrelay/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.LogLevel != slog.LevelInfo {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	_, err := config.Load(env(map[string]string{"PORT": "eighty", "LOG_LEVEL": "loud"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"DATABASE_URL", "PORT", "LOG_LEVEL"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
}
