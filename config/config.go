// Package config reads the service's settings from environment variables,
// the names TrueNester already uses. A bad value stops start-up with a
// message that names the variable. The channels' own settings are read by
// package notifiers.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Config is the service's configuration.
type Config struct {
	DatabaseURL string     // DATABASE_URL
	Port        int        // PORT, default 8080
	LogLevel    slog.Level // LOG_LEVEL: debug, info (default), warn, error
}

// Load reads the configuration through getenv and reports every bad value.
func Load(getenv func(string) string) (Config, error) {
	c := Config{DatabaseURL: getenv("DATABASE_URL"), Port: 8080, LogLevel: slog.LevelInfo}
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is not set (a postgres:// URL; `make run` sets one up for you)"))
	}
	if v := getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("PORT=%q is not a port number (1-65535)", v))
		}
		c.Port = p
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(strings.ToLower(v))); err != nil {
			errs = append(errs, fmt.Errorf("LOG_LEVEL=%q is not one of debug, info, warn, error", v))
		}
	}
	return c, errors.Join(errs...)
}
