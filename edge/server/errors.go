package server

import "time"

// Error is an error with an HTTP status and a stable machine-readable code.
// Its message is shown to the caller; anything else is only logged.
type Error struct {
	Status  int               `json:"-"`
	Code    ErrorCode         `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
	Err     error             `json:"-"` // internal cause, logged only
	// RetryAfter, when set, tells the caller when to try again (429, 503).
	RetryAfter time.Duration `json:"-"`
	// NotReady marks /readyz's answers: a state the caller asked about, not
	// a failure of the request, so a 5xx is logged as a warning.
	NotReady bool `json:"-"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode is the stable, machine-readable code of an error answer: the
// website and the admin panel branch on it, so a code never changes its
// meaning. Every code the service answers is here.
type ErrorCode string

const (
	CodeInternal             ErrorCode = "internal"  // a fault of ours; details only in the log
	CodeNotFound             ErrorCode = "not_found" // no such endpoint, or no such thing at it
	CodeMethodNotAllowed     ErrorCode = "method_not_allowed"
	CodeUnauthorized         ErrorCode = "unauthorized"       // the admin API's Bearer token is missing or wrong
	CodeAdminDisabled        ErrorCode = "admin_disabled"     // ADMIN_API_KEY is not set
	CodeWebhookDisabled      ErrorCode = "webhook_disabled"   // WEBHOOK_SECRET is not set
	CodeInvalidSignature     ErrorCode = "invalid_signature"  // a webhook's Standard Webhooks signature
	CodeUnexpectedPayload    ErrorCode = "unexpected_payload" // a signed webhook about something else than a lead_events insert
	CodeOriginNotAllowed     ErrorCode = "origin_not_allowed" // a browser on an origin not in FRONTEND_URL
	CodeUnsupportedMediaType ErrorCode = "unsupported_media_type"
	CodeBodyTooLarge         ErrorCode = "body_too_large"
	CodeUnreadableBody       ErrorCode = "unreadable_body"
	CodeMalformedJSON        ErrorCode = "malformed_json"
	CodeInvalidLead          ErrorCode = "invalid_lead"           // Fields names each bad field
	CodeIdempotencyKeyReused ErrorCode = "idempotency_key_reused" // the key names another lead
	CodeInvalidPeriod        ErrorCode = "invalid_period"         // the SLA summary's from and to
	CodeRateLimited          ErrorCode = "rate_limited"           // with Retry-After
	CodeDatabaseUnavailable  ErrorCode = "database_unavailable"   // with Retry-After
	CodeMigrationsPending    ErrorCode = "migrations_pending"     // readiness
	CodeNotReady             ErrorCode = "not_ready"              // readiness: a part of the service does not work
	// The admin API (adminapi.go).
	CodeNotAdmin       ErrorCode = "not_admin"       // a valid Supabase token of a user who is not an admin
	CodeForbidden      ErrorCode = "forbidden"       // the database refused the action to this admin
	CodeInvalidRequest ErrorCode = "invalid_request" // an admin action's body names a bad value
	CodeInvalidFilter  ErrorCode = "invalid_filter"  // Fields names each bad filter of a list
	CodeConflict       ErrorCode = "conflict"        // the thing is not in a state that allows the action
)
