// Package dberr is the one place that turns what Postgres (through pgx)
// reports into the service's errors, by SQLSTATE names from pgerrcode, so no
// other package matches a code or a message string.
package dberr

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// The service's kinds of database failure. Interpret's errors match one of
// them with errors.Is (or none, for a failure that is nobody's but ours).
var (
	// ErrNotFound: no such row (no rows, or a function's no_data_found).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the database refused a value (a data exception); the
	// caller's input, not the database, is at fault.
	ErrInvalid = errors.New("invalid value")
	// ErrUnavailable: the database did not answer, or answered that it
	// cannot now (shortage of resources, shutdown, a statement or lock
	// timeout, a conflict between transactions, a sequence at its maximum).
	// Not answering is the connection's or the deadline's doing only: no
	// connection, one lost or closed (mid-query included), a closed pool,
	// or the caller's context ending (waiting for a connection included).
	// A failure of ours without an answer (a scan into the wrong Go type)
	// has no kind.
	// Retrying later may succeed; nothing was committed.
	ErrUnavailable = errors.New("database unavailable")
	// ErrUndefinedTable: a table the query names does not exist (yet).
	ErrUndefinedTable = errors.New("undefined table")
	// ErrForeignKey: a value names a row that does not exist (or a row
	// still named elsewhere was to go).
	ErrForeignKey = errors.New("foreign key violation")
	// ErrCheck: a value breaks a table's check constraint.
	ErrCheck = errors.New("check violation")
	// ErrForbidden: the role may not do this (insufficient_privilege).
	ErrForbidden = errors.New("insufficient privilege")
	// ErrRefused: one of our SQL functions refused the call with a
	// PostgREST-style PTnnn code; Error.HTTPStatus is nnn.
	ErrRefused = errors.New("refused")
)

// RetryAfter is when a caller told ErrUnavailable may try again: the Retry-After
// of every 503 the edges answer for it (the intake's, the console's, the JSON
// admin API's). Short, since what it stands for (a busy pool, a row locked past
// the lock timeout, a restart) mostly passes within seconds, and nothing was
// committed that the retry would repeat.
const RetryAfter = 2 * time.Second

// Error is a database failure with its kind. Message and Detail are the
// server's MESSAGE and DETAIL (our functions put machine-readable JSON in
// DETAIL); they may quote the input, so log them with care.
type Error struct {
	Kind       error // one of the Err* kinds, or nil
	Code       string
	Message    string
	Detail     string
	Where      string
	HTTPStatus int // with ErrRefused
	Err        error
}

func (e *Error) Error() string   { return e.Err.Error() }
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// Interpret returns err as an *Error of its kind; nil stays nil. A failure
// without an answer from the server is ErrUnavailable when it is the
// connection's or the deadline's (away), else it has no kind.
func Interpret(err error) error {
	if err == nil {
		return nil
	}
	if already, ok := errors.AsType[*Error](err); ok {
		return already
	}
	e := &Error{Err: err}
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		e.Kind = ErrNotFound
		return e
	case !ok:
		if away(err) {
			e.Kind = ErrUnavailable
		}
		return e
	}
	e.Code, e.Message, e.Detail, e.Where = pgErr.Code, pgErr.Message, pgErr.Detail, pgErr.Where
	switch code := pgErr.Code; {
	case code == pgerrcode.NoDataFound:
		e.Kind = ErrNotFound
	case code == pgerrcode.SequenceGeneratorLimitExceeded:
		// The database's fault, not the input's.
		e.Kind = ErrUnavailable
	case pgerrcode.IsDataException(code):
		e.Kind = ErrInvalid
	case code == pgerrcode.UndefinedTable:
		e.Kind = ErrUndefinedTable
	case code == pgerrcode.ForeignKeyViolation:
		e.Kind = ErrForeignKey
	case code == pgerrcode.CheckViolation:
		e.Kind = ErrCheck
	case code == pgerrcode.InsufficientPrivilege:
		e.Kind = ErrForbidden
	case retryable(code):
		e.Kind = ErrUnavailable
	case len(code) == 5 && code[:2] == "PT":
		if status, ok := httpStatus(code[2:]); ok {
			e.Kind, e.HTTPStatus = ErrRefused, status
		}
	}
	return e
}

// away tells whether a failure without the server's answer is the
// connection's or the deadline's. pgx v5 reports a connection it could not
// make as *pgconn.ConnectError; one lost mid-query as io.ErrUnexpectedEOF
// (pgproto3 turns io.EOF into it) or a net.Error (a reset); a call in the
// simple protocol that met the loss, and every later call on that connection,
// as pgconn.ErrConnClosed; a call on a closed pgxpool as puddle.ErrClosedPool;
// a context that ended as its error, bare (no connection free in the pool) or
// wrapped. pgconn.SafeToRetry is no test of it: it also holds for "conn
// busy", one connection used by two calls at once, a fault of ours.
func away(err error) bool {
	_, connect := errors.AsType[*pgconn.ConnectError](err)
	_, network := errors.AsType[net.Error](err)
	return connect || network || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, puddle.ErrClosedPool) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// retryable tells the failures that a later try may not meet.
func retryable(code string) bool {
	switch code {
	case pgerrcode.AdminShutdown, pgerrcode.CrashShutdown, pgerrcode.CannotConnectNow,
		pgerrcode.QueryCanceled,    // e.g. by statement_timeout
		pgerrcode.LockNotAvailable, // lock_timeout: another transaction holds the row
		pgerrcode.SerializationFailure, pgerrcode.DeadlockDetected:
		return true
	}
	return pgerrcode.IsConnectionException(code) || pgerrcode.IsInsufficientResources(code)
}

func httpStatus(digits string) (int, bool) {
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = 10*n + int(c-'0')
	}
	return n, n >= 400 && n < 600
}

// Of returns err's *Error, as Interpret made it, or nil.
func Of(err error) *Error {
	e, _ := errors.AsType[*Error](err)
	return e
}
