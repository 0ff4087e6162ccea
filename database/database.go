// Package database is what every part that talks to PostgreSQL shares: the
// Querier a read takes, and the LISTEN connection that reconnects. The
// packages below it hold the rest: the migrator (migrate), the one place that
// reads Postgres's errors (dberr), the outbox's SQL access (outbox).
package database

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is a pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
