package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/truenester/leadrelay"
	"github.com/truenester/leadrelay/config"
	"github.com/truenester/leadrelay/database/dberr"
	"github.com/truenester/leadrelay/sla"
)

// The errors the actions return; the HTTP edges turn them into 404, 400, 409, 403 and 503
// (with Retry-After).
var (
	ErrNotFound  = errors.New("not found")
	ErrInvalid   = errors.New("invalid")
	ErrConflict  = errors.New("conflict")
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the database did not answer within the Store's deadline (waiting for
	// a connection of the admin pool included), the connection to it was lost, or it
	// answered that it cannot now (a row locked by another transaction past the lock
	// timeout included).
	ErrUnavailable = errors.New("the database is busy or away")
)

// The values of the SQL enums the console lets an admin choose (package leadrelay mirrors
// the enums), and the SLA states the leads list filters by.
var (
	Statuses  = names(leadrelay.ConversationStatuses())
	Qualities = names(leadrelay.Qualities())
	Channels  = names(leadrelay.Channels())
	SLAStates = []string{"waiting", "approaching", "breached", "answered"}
)

func names[T ~string](values []T) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = string(v)
	}
	return out
}

// Store reads what the console shows and runs the admin's actions, through the SQL
// functions of supabase/functions-sql/80_console.sql. Each call has a deadline, waiting for
// a connection included, so a request never waits for ever on a saturated admin pool.
type Store struct {
	db      *pgxpool.Pool
	timeout time.Duration
}

// NewStore returns a Store on db whose every call ends within timeout (0: DB_ADMIN_TIMEOUT's
// default, config.DefaultDBSettings.AdminTimeout).
func NewStore(db *pgxpool.Pool, timeout time.Duration) *Store {
	if timeout <= 0 {
		timeout = config.DefaultDBSettings.AdminTimeout
	}
	return &Store{db: db, timeout: timeout}
}

// bound gives a call the Store's deadline; end, deferred with the call's error, releases it
// and turns the error into the console's (classify).
func (s *Store) bound(ctx context.Context) (_ context.Context, end func(*error)) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, func(err *error) {
		defer cancel()
		*err = classify(*err)
	}
}

// LeadRow is one line of the leads list.
type LeadRow struct {
	ID                  string     `json:"id" db:"id"`
	CreatedAt           time.Time  `json:"created_at" db:"created_at"`
	Name                *string    `json:"name" db:"name"`
	Email               *string    `json:"email" db:"email"`
	Phone               *string    `json:"phone" db:"phone"`
	Form                string     `json:"form" db:"form"`
	Source              string     `json:"source" db:"source"`
	Quality             string     `json:"quality" db:"quality"`
	LeadScore           int        `json:"lead_score" db:"lead_score"`
	Status              string     `json:"status" db:"status"`
	AssignedTo          *string    `json:"assigned_to" db:"assigned_to"`
	SLAResponseDeadline time.Time  `json:"sla_response_deadline" db:"sla_response_deadline"`
	SLAWarningAt        time.Time  `json:"sla_warning_at" db:"sla_warning_at"`
	FirstResponseAt     *time.Time `json:"first_response_at" db:"first_response_at"`
	SLABreached         bool       `json:"sla_breached" db:"sla_breached"`
}

// SLAState is where the lead stands against its deadline at now: answered, breached
// (unanswered past it, or declared breached), approaching (warned), waiting, or closed.
func (l LeadRow) SLAState(now time.Time) string {
	switch {
	case l.FirstResponseAt != nil:
		if l.SLABreached || l.FirstResponseAt.After(l.SLAResponseDeadline) {
			return "answered late"
		}
		return "answered"
	case l.Status == "closed" || l.Status == "spam":
		return "closed"
	case l.SLABreached || !now.Before(l.SLAResponseDeadline):
		return "breached"
	case !now.Before(l.SLAWarningAt):
		return "approaching"
	}
	return "waiting"
}

// Filter selects and pages the leads list. Empty fields do not filter.
type Filter struct {
	Status   string `json:"status,omitempty"`
	Quality  string `json:"quality,omitempty"`
	Source   string `json:"source,omitempty"`
	Assignee string `json:"assignee,omitempty"` // a user id, "unassigned", or "" for anyone
	SLA      string `json:"sla,omitempty"`      // one of SLAStates
	Query    string `json:"q,omitempty"`        // a piece of a name, email or phone
	After    string `json:"after,omitempty"`    // the cursor of the last lead of the page before
	Limit    int    `json:"limit,omitempty"`
}

// DefaultPageSize and MaxPageSize bound a page of the leads list.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Check reports every bad field of f, as field -> message.
func (f *Filter) Check() map[string]string {
	bad := map[string]string{}
	oneOf := func(field, v string, allowed []string) {
		if v != "" && !contains(allowed, v) {
			bad[field] = "must be one of " + strings.Join(allowed, ", ")
		}
	}
	oneOf("status", f.Status, Statuses)
	oneOf("quality", f.Quality, Qualities)
	oneOf("sla", f.SLA, SLAStates)
	if f.Assignee != "" && f.Assignee != "unassigned" && !isUUID(f.Assignee) {
		bad["assignee"] = "must be a user id (uuid) or unassigned"
	}
	if len(f.Source) > 100 {
		bad["source"] = "must be at most 100 characters"
	}
	if len([]rune(f.Query)) > 100 {
		bad["q"] = "must be at most 100 characters"
	}
	if f.After != "" {
		if _, err := decodeCursor(f.After); err != nil {
			bad["after"] = "is not a cursor this list gave"
		}
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultPageSize
	case f.Limit < 1 || f.Limit > MaxPageSize:
		bad["limit"] = fmt.Sprintf("must be between 1 and %d", MaxPageSize)
	}
	if len(bad) == 0 {
		return nil
	}
	return bad
}

// Page is a page of the leads list; Next is the cursor of the page after, "" at the end.
type Page struct {
	Leads []LeadRow `json:"leads"`
	Next  string    `json:"next,omitempty"`
}

type cursor struct {
	createdAt time.Time
	id        string
}

func (c cursor) String() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.createdAt.UnixMicro(), 10) + "_" + c.id))
}

// CursorFor is the cursor of the page after the lead created at createdAt with id.
func CursorFor(createdAt time.Time, id string) string {
	return cursor{createdAt: createdAt, id: id}.String()
}

func decodeCursor(s string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, err
	}
	micros, id, ok := strings.Cut(string(raw), "_")
	n, err := strconv.ParseInt(micros, 10, 64)
	if !ok || err != nil || !isUUID(id) {
		return cursor{}, errors.New("bad cursor")
	}
	return cursor{createdAt: time.UnixMicro(n).UTC(), id: id}, nil
}

// UnansweredOpenLead is the leads list's SQL for an open lead (public.lead_is_open) that no
// human has answered, spelled as the partial index conversations_sla_open_idx spells it, so
// the planner can use the index; supabase/open_lead_test.go checks its statuses against
// lead_is_open.
const UnansweredOpenLead = "c.first_response_at is null and c.status not in ('closed', 'spam')"

// Leads returns a page of the leads list, newest first, keyset-paginated on (created_at,
// id). f must have passed Check.
func (s *Store) Leads(ctx context.Context, f Filter, now time.Time) (_ Page, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var where []string
	args := pgx.NamedArgs{"now": now, "limit": f.Limit + 1}
	add := func(cond, name string, v any) {
		where = append(where, cond)
		if name != "" {
			args[name] = v
		}
	}
	if f.Status != "" {
		add("c.status = @status::public.conversation_status", "status", f.Status)
	}
	if f.Quality != "" {
		add("c.quality = @quality::public.lead_quality", "quality", f.Quality)
	}
	if f.Source != "" {
		add("c.source = @source::text", "source", f.Source)
	}
	switch f.Assignee {
	case "":
	case "unassigned":
		add("c.assigned_to is null", "", nil)
	default:
		add("c.assigned_to = @assignee::uuid", "assignee", f.Assignee)
	}
	switch f.SLA {
	case "waiting":
		add(UnansweredOpenLead+" and not c.sla_breached and c.sla_warning_at > @now::timestamptz", "", nil)
	case "approaching":
		add(UnansweredOpenLead+" and not c.sla_breached and c.sla_warning_at <= @now::timestamptz and c.sla_response_deadline > @now::timestamptz", "", nil)
	case "breached":
		add("c.status <> 'spam' and (c.sla_breached or ("+UnansweredOpenLead+" and c.sla_response_deadline <= @now::timestamptz))", "", nil)
	case "answered":
		add("c.first_response_at is not null", "", nil)
	}
	if q := strings.TrimSpace(f.Query); q != "" {
		// The expression of conversations_search_idx.
		add(`lower(coalesce(c.name, '') || ' ' || coalesce(c.email, '') || ' ' || coalesce(c.phone, '')) like @pattern::text`,
			"pattern", "%"+likeEscape(strings.ToLower(q))+"%")
	}
	if f.After != "" {
		cur, err := decodeCursor(f.After)
		if err != nil {
			return Page{}, fmt.Errorf("%w: after is not a cursor", ErrInvalid)
		}
		add("(c.created_at, c.id) < (@after_at::timestamptz, @after_id::uuid)", "after_at", cur.createdAt)
		args["after_id"] = cur.id
	}
	sql := "select " + leadRowColumns + " from public.conversations c"
	if len(where) > 0 {
		sql += " where " + strings.Join(where, " and ")
	}
	sql += " order by c.created_at desc, c.id desc limit @limit::integer"
	rows, _ := s.db.Query(ctx, sql, args)
	leads, err := pgx.CollectRows(rows, pgx.RowToStructByName[LeadRow])
	if err != nil {
		return Page{}, fmt.Errorf("list leads: %w", err)
	}
	page := Page{Leads: leads}
	if len(leads) > f.Limit {
		page.Leads = leads[:f.Limit]
		last := page.Leads[f.Limit-1]
		page.Next = cursor{createdAt: last.CreatedAt, id: last.ID}.String()
	}
	if page.Leads == nil {
		page.Leads = []LeadRow{}
	}
	return page, nil
}

const leadRowColumns = `c.id, c.created_at, c.name, c.email, c.phone, c.form, c.source, c.quality, c.lead_score,
	c.status, c.assigned_to, c.sla_response_deadline, c.sla_warning_at, c.first_response_at, c.sla_breached`

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Lead is everything the lead's page shows.
type Lead struct {
	LeadRow
	Message       *string         `json:"message" db:"message"`
	SessionID     *string         `json:"session_id" db:"session_id"`
	PropertyID    *string         `json:"property_id" db:"property_id"`
	PropertyTitle *string         `json:"property_title" db:"property_title"`
	Budget        *string         `json:"budget" db:"budget"`
	Timeline      *string         `json:"timeline" db:"timeline"`
	Financing     *string         `json:"financing" db:"financing"`
	ScoreReasons  []string        `json:"score_reasons" db:"score_reasons"`
	Metadata      json.RawMessage `json:"metadata" db:"metadata"`
	DeviceInfo    json.RawMessage `json:"device_info" db:"device_info"`
	ClosedAt      *time.Time      `json:"closed_at" db:"closed_at"`

	Messages   []Message  `json:"messages" db:"-"`
	Entries    []Entry    `json:"timeline_entries" db:"-"`
	Deliveries []Delivery `json:"deliveries" db:"-"`
	Unsent     Unsent     `json:"unsent"`
	FollowUps  []FollowUp `json:"follow_ups" db:"-"`
	Related    []LeadRow  `json:"related_leads" db:"-"`
}

// Unsent is what the lead's deliveries cannot show: its events that have none.
type Unsent struct {
	// Waiting events are due and not yet opened for delivery, for longer than stalledAfter.
	// While no replica is Delivering (none seen within public.replica_window() has a
	// channel), they wait for one.
	Waiting    int  `json:"waiting"`
	Delivering bool `json:"delivering"`
	// Processed events went to no channel: routed to none, or shown by the developer's
	// console (leadrelay dev with no channel configured).
	Processed int `json:"processed_without_delivery"`
}

// Stalled says that the lead has alerts no running replica can send.
func (u Unsent) Stalled() bool { return u.Waiting > 0 && !u.Delivering }

// stalledAfter is how long a due event waits to be opened before the console calls it
// stalled: a running replica opens one within its doorbell or its sweep, and the developer's
// console prints it at once, so only an event nobody takes is named.
const stalledAfter = 30 * time.Second

// maxStalledCount bounds the banner's count of stalled events: it is drawn on every page.
const maxStalledCount = 1000

// The console's one reading of a stalled alert, for the banner (Stalled) and a lead's page
// (Lead's Unsent): an event e waiting to be opened, due for longer than stalledAfter (the
// query's $1), while no running replica delivers (fleetDelivers false).
const (
	waitingEvent  = `e.deliveries_opened_at is null and e.available_at <= now() - $1::interval`
	fleetDelivers = `cardinality(public.live_channels('{}', now())) > 0`
)

// Stalled counts the events (at most maxStalledCount) that wait while no running replica
// delivers alerts: due, not opened, for longer than stalledAfter. 0 while one delivers.
func (s *Store) Stalled(ctx context.Context) (_ int, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	var n int
	err = s.db.QueryRow(ctx, `select case when `+fleetDelivers+` then 0
			else (select count(*)::integer from (select from public.lead_events e
				where `+waitingEvent+` limit $2::integer) w) end`, stalledAfter, maxStalledCount).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count stalled events: %w", err)
	}
	return n, nil
}

// Message is one line of the transcript.
type Message struct {
	ID         string    `json:"id" db:"id"`
	SenderType string    `json:"sender_type" db:"sender_type"`
	SenderID   *string   `json:"sender_id" db:"sender_id"`
	Content    string    `json:"content" db:"content"`
	SentAt     time.Time `json:"sent_at" db:"sent_at"`
}

// Entry is one timeline entry.
type Entry struct {
	ID          string          `json:"id" db:"id"`
	EventType   string          `json:"event_type" db:"event_type"`
	Title       string          `json:"title" db:"title"`
	Description *string         `json:"description" db:"description"`
	ActorType   string          `json:"actor_type" db:"actor_type"`
	ActorID     *string         `json:"actor_id" db:"actor_id"`
	ActorEmail  *string         `json:"actor_email" db:"actor_email"`
	Metadata    json.RawMessage `json:"metadata" db:"metadata"`
	CreatedAt   time.Time       `json:"created_at" db:"created_at"`
}

// Delivery is one event's delivery to one channel.
type Delivery struct {
	ID             string     `json:"id" db:"id"`
	LeadEventID    string     `json:"lead_event_id" db:"lead_event_id"`
	ConversationID string     `json:"conversation_id" db:"conversation_id"`
	LeadName       *string    `json:"lead_name" db:"lead_name"`
	EventType      string     `json:"event_type" db:"event_type"`
	Channel        string     `json:"channel" db:"channel"`
	Status         string     `json:"status" db:"status"`
	Attempts       int        `json:"attempts" db:"attempts"`
	NextAttemptAt  *time.Time `json:"next_attempt_at" db:"next_attempt_at"`
	LastError      *string    `json:"last_error" db:"last_error"`
	SentAt         *time.Time `json:"sent_at" db:"sent_at"`
	CreatedAt      time.Time  `json:"created_at" db:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at" db:"updated_at"`
}

// FollowUp is one follow-up task.
type FollowUp struct {
	ID           string     `json:"id" db:"id"`
	Status       string     `json:"status" db:"status"`
	FollowUpDate time.Time  `json:"follow_up_date" db:"follow_up_date"`
	SLADeadline  *time.Time `json:"sla_deadline" db:"sla_deadline"`
	Notes        *string    `json:"notes" db:"notes"`
	AssignedTo   *string    `json:"assigned_to" db:"assigned_to"`
	CompletedAt  *time.Time `json:"completed_at" db:"completed_at"`
	CreatedAt    time.Time  `json:"created_at" db:"created_at"`
}

// Open says whether the task can still be completed or cancelled.
func (f FollowUp) Open() bool { return f.Status == "scheduled" || f.Status == "overdue" }

// MaxRelated bounds the person's other leads shown on a lead's page.
const MaxRelated = 20

// Lead loads a lead and everything its page shows.
func (s *Store) Lead(ctx context.Context, id string) (_ *Lead, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	if !isUUID(id) {
		return nil, fmt.Errorf("lead %q: %w", id, ErrNotFound)
	}
	var lead *Lead
	err = pgx.BeginTxFunc(ctx, s.db, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `select `+leadRowColumns+`, c.message, c.session_id, c.property_id, c.property_title,
				c.budget, c.timeline, c.financing, c.score_reasons, c.metadata, c.device_info, c.closed_at
			from public.conversations c where c.id = $1::uuid`, id)
		l, err := pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByNameLax[Lead])
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("lead %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("load lead: %w", err)
		}
		lead = l
		rows, _ = tx.Query(ctx, `select id, sender_type, sender_id, content, sent_at
			from public.chat_messages where conversation_id = $1::uuid order by seq`, id)
		if lead.Messages, err = pgx.CollectRows(rows, pgx.RowToStructByName[Message]); err != nil {
			return fmt.Errorf("load transcript: %w", err)
		}
		rows, _ = tx.Query(ctx, `select id, event_type, title, description, actor_type, actor_id,
				metadata ->> 'actor_email' as actor_email, metadata, created_at
			from public.conversation_timeline where conversation_id = $1::uuid order by created_at, id`, id)
		if lead.Entries, err = pgx.CollectRows(rows, pgx.RowToStructByName[Entry]); err != nil {
			return fmt.Errorf("load timeline: %w", err)
		}
		rows, _ = tx.Query(ctx, deliveryQuery+` where l.conversation_id = $1::uuid order by l.created_at, l.channel`, id)
		if lead.Deliveries, err = pgx.CollectRows(rows, pgx.RowToStructByName[Delivery]); err != nil {
			return fmt.Errorf("load deliveries: %w", err)
		}
		if err := tx.QueryRow(ctx, `select count(*) filter (where `+waitingEvent+`), count(*) filter (where e.processed), `+fleetDelivers+`
			from public.lead_events e
			where e.conversation_id = $2::uuid
			  and not exists (select from public.notification_logs l where l.lead_event_id = e.id)`, stalledAfter, id).Scan(
			&lead.Unsent.Waiting, &lead.Unsent.Processed, &lead.Unsent.Delivering); err != nil {
			return fmt.Errorf("load unsent events: %w", err)
		}
		rows, _ = tx.Query(ctx, `select id, status, follow_up_date, sla_deadline, notes, assigned_to, completed_at, created_at
			from public.follow_up_tasks where conversation_id = $1::uuid order by follow_up_date, id`, id)
		if lead.FollowUps, err = pgx.CollectRows(rows, pgx.RowToStructByName[FollowUp]); err != nil {
			return fmt.Errorf("load follow-ups: %w", err)
		}
		// The same person's other leads (the intake links a returning person's leads by
		// person_id; conversations_person_id_created_at_idx).
		rows, _ = tx.Query(ctx, `select `+leadRowColumns+` from public.conversations c
			where c.person_id = (select p.person_id from public.conversations p where p.id = $1::uuid)
			  and c.id <> $1::uuid
			order by c.created_at desc, c.id desc limit $2::integer`, id, MaxRelated)
		if lead.Related, err = pgx.CollectRows(rows, pgx.RowToStructByName[LeadRow]); err != nil {
			return fmt.Errorf("load related leads: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lead, nil
}

const deliveryQuery = `select l.id, l.lead_event_id, l.conversation_id, c.name as lead_name, e.event_type::text as event_type,
		l.channel, l.status, l.attempts, l.next_attempt_at, l.last_error, l.sent_at, l.created_at, l.updated_at
	from public.notification_logs l
	join public.lead_events e on e.id = l.lead_event_id
	join public.conversations c on c.id = l.conversation_id`

// DeliveryFilter selects the deliveries page: failed and pending deliveries across leads.
type DeliveryFilter struct {
	Channel string `json:"channel,omitempty"`
	Status  string `json:"status,omitempty"` // failed or pending; "" for both
	Limit   int    `json:"limit,omitempty"`
}

// Check reports every bad field of f.
func (f *DeliveryFilter) Check() map[string]string {
	bad := map[string]string{}
	if f.Channel != "" && !contains(Channels, f.Channel) {
		bad["channel"] = "must be one of " + strings.Join(Channels, ", ")
	}
	if f.Status != "" && f.Status != "failed" && f.Status != "pending" {
		bad["status"] = "must be failed or pending"
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultPageSize * 2
	case f.Limit < 1 || f.Limit > MaxPageSize:
		bad["limit"] = fmt.Sprintf("must be between 1 and %d", MaxPageSize)
	}
	if len(bad) == 0 {
		return nil
	}
	return bad
}

// OpenDeliveries lists failed and pending deliveries, most recently changed first.
func (s *Store) OpenDeliveries(ctx context.Context, f DeliveryFilter) (_ []Delivery, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	statuses := []string{"failed", "pending"}
	if f.Status != "" {
		statuses = []string{f.Status}
	}
	// The predicate of notification_logs_open_idx, then the filters.
	rows, _ := s.db.Query(ctx, deliveryQuery+`
		where l.status in ('failed', 'pending')
		  and l.status::text = any ($1::text[])
		  and ($2::text = '' or l.channel::text = $2::text)
		order by l.updated_at desc, l.id desc limit $3::integer`, statuses, f.Channel, f.Limit)
	list, err := pgx.CollectRows(rows, pgx.RowToStructByName[Delivery])
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	if list == nil {
		list = []Delivery{}
	}
	return list, nil
}

// Alerts is the SLA banner: open, unanswered leads whose warning time has come.
func (s *Store) Alerts(ctx context.Context, now time.Time) (_ []sla.Alert, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return sla.Alerts(ctx, s.db, now)
}

// Summary is the SLA report of the leads that arrived in [from, to).
func (s *Store) Summary(ctx context.Context, from, to time.Time) (_ []sla.SummaryRow, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	return sla.Summary(ctx, s.db, from, to)
}

// act runs fn in a transaction that names actor to the SQL functions (and to the triggers
// they fire), so every timeline entry they write says who acted. Its caller's bound
// classifies its error.
func (s *Store) act(ctx context.Context, actor Actor, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		claims := ""
		if actor.Kind == ActorSupabase {
			b, err := json.Marshal(map[string]any{
				"sub": actor.ID, "email": actor.Email, "role": "authenticated",
				"app_metadata": map[string]string{"role": "admin"},
			})
			if err != nil {
				return err
			}
			claims = string(b)
		}
		if _, err := tx.Exec(ctx, `select set_config('leadrelay.actor_id', $1::text, true),
				set_config('leadrelay.actor_email', $2::text, true),
				set_config('request.jwt.claims', $3::text, true)`, actor.ID, actor.Email, claims); err != nil {
			return fmt.Errorf("name the actor: %w", err)
		}
		return fn(tx)
	})
}

// classify turns err into the console's errors, the one mapping of the database's errors
// for reads and actions alike, by the kinds of dberr (the one place that tells the database's
// failures apart): a row or value the database refuses, or a refusal of one of the SQL
// functions, is ErrNotFound, ErrInvalid, ErrConflict or ErrForbidden; the database's absence
// (dberr.ErrUnavailable: the Store's deadline passed, waiting for a connection included, the
// connection was lost, or the server answered that it cannot now) is ErrUnavailable. An
// error already the console's, or any other (a fault of ours), stays as it is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, kind := range []error{ErrNotFound, ErrInvalid, ErrConflict, ErrForbidden, ErrUnauthorized, ErrUnavailable} {
		if errors.Is(err, kind) {
			return err
		}
	}
	err = dberr.Interpret(err)
	e := dberr.Of(err)
	switch {
	case errors.Is(err, dberr.ErrNotFound), errors.Is(err, dberr.ErrForeignKey):
		return fmt.Errorf("%w: %s", ErrNotFound, e.Message)
	case errors.Is(err, dberr.ErrInvalid), errors.Is(err, dberr.ErrCheck):
		return fmt.Errorf("%w: %s", ErrInvalid, e.Message)
	case errors.Is(err, dberr.ErrForbidden):
		return fmt.Errorf("%w: %s", ErrForbidden, e.Message)
	case errors.Is(err, dberr.ErrRefused):
		switch e.HTTPStatus {
		case 404:
			return fmt.Errorf("%w: %s", ErrNotFound, e.Message)
		case 409:
			return fmt.Errorf("%w: %s", ErrConflict, e.Message)
		case 403:
			return fmt.Errorf("%w: %s", ErrForbidden, e.Message)
		}
		return fmt.Errorf("%w: %s", ErrInvalid, e.Message)
	case errors.Is(err, dberr.ErrUnavailable):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// call runs one action function that returns one value.
func call[T any](ctx context.Context, s *Store, actor Actor, sql string, args ...any) (v T, err error) {
	ctx, end := s.bound(ctx)
	defer end(&err)
	err = s.act(ctx, actor, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, sql, args...).Scan(&v)
	})
	return v, err
}

func checkLead(id string) error {
	if !isUUID(id) {
		return fmt.Errorf("lead %q: %w", id, ErrNotFound)
	}
	return nil
}

// MarkContacted marks a new lead contacted; it returns whether the status changed.
func (s *Store) MarkContacted(ctx context.Context, actor Actor, lead string) (bool, error) {
	if err := checkLead(lead); err != nil {
		return false, err
	}
	return call[bool](ctx, s, actor, "select public.admin_mark_contacted($1::uuid)", lead)
}

// SetStatus changes a lead's status; it returns whether it changed.
func (s *Store) SetStatus(ctx context.Context, actor Actor, lead, status string) (bool, error) {
	if err := checkLead(lead); err != nil {
		return false, err
	}
	if !contains(Statuses, status) {
		return false, fmt.Errorf("%w: status must be one of %s", ErrInvalid, strings.Join(Statuses, ", "))
	}
	return call[bool](ctx, s, actor, "select public.admin_set_status($1::uuid, $2::public.conversation_status)", lead, status)
}

// SetQuality changes a lead's quality (and so its deadline, while unanswered).
func (s *Store) SetQuality(ctx context.Context, actor Actor, lead, quality string) (bool, error) {
	if err := checkLead(lead); err != nil {
		return false, err
	}
	if !contains(Qualities, quality) {
		return false, fmt.Errorf("%w: quality must be one of %s", ErrInvalid, strings.Join(Qualities, ", "))
	}
	return call[bool](ctx, s, actor, "select public.admin_set_quality($1::uuid, $2::public.lead_quality)", lead, quality)
}

// Assign gives a lead to a user (a Supabase user id), or to nobody ("").
func (s *Store) Assign(ctx context.Context, actor Actor, lead, assignee string) (bool, error) {
	if err := checkLead(lead); err != nil {
		return false, err
	}
	var who *string
	if assignee != "" {
		if !isUUID(assignee) {
			return false, fmt.Errorf("%w: assignee must be a user id (uuid), or empty to unassign", ErrInvalid)
		}
		who = &assignee
	}
	return call[bool](ctx, s, actor, "select public.admin_assign($1::uuid, $2::uuid)", lead, who)
}

// AddNote writes a note on the lead's timeline; it returns the entry's id.
func (s *Store) AddNote(ctx context.Context, actor Actor, lead, body string) (string, error) {
	if err := checkLead(lead); err != nil {
		return "", err
	}
	return call[string](ctx, s, actor, "select public.admin_add_note($1::uuid, $2::text)::text", lead, body)
}

// Reply saves an agent's answer to the customer (which meets the SLA); it returns the
// message's id.
func (s *Store) Reply(ctx context.Context, actor Actor, lead, body string) (string, error) {
	if err := checkLead(lead); err != nil {
		return "", err
	}
	return call[string](ctx, s, actor, "select public.admin_reply($1::uuid, $2::text)::text", lead, body)
}

// NewFollowUp is a follow-up to schedule.
type NewFollowUp struct {
	FollowUpDate time.Time  `json:"follow_up_date"`
	SLADeadline  *time.Time `json:"sla_deadline,omitempty"`
	Notes        string     `json:"notes,omitempty"`
	Assignee     string     `json:"assignee,omitempty"`
}

// ScheduleFollowUp creates a follow-up task; it returns its id.
func (s *Store) ScheduleFollowUp(ctx context.Context, actor Actor, lead string, f NewFollowUp) (string, error) {
	if err := checkLead(lead); err != nil {
		return "", err
	}
	if f.FollowUpDate.IsZero() {
		return "", fmt.Errorf("%w: follow_up_date is required", ErrInvalid)
	}
	var who *string
	if f.Assignee != "" {
		if !isUUID(f.Assignee) {
			return "", fmt.Errorf("%w: assignee must be a user id (uuid)", ErrInvalid)
		}
		who = &f.Assignee
	}
	return call[string](ctx, s, actor, `select public.admin_schedule_follow_up($1::uuid, $2::timestamptz, $3::timestamptz, $4::text, $5::uuid)::text`,
		lead, f.FollowUpDate, f.SLADeadline, f.Notes, who)
}

// CompleteFollowUp completes an open follow-up task.
func (s *Store) CompleteFollowUp(ctx context.Context, actor Actor, task string) (bool, error) {
	if !isUUID(task) {
		return false, fmt.Errorf("follow-up %q: %w", task, ErrNotFound)
	}
	return call[bool](ctx, s, actor, "select public.admin_complete_follow_up($1::uuid)", task)
}

// CancelFollowUp cancels an open follow-up task.
func (s *Store) CancelFollowUp(ctx context.Context, actor Actor, task string) (bool, error) {
	if !isUUID(task) {
		return false, fmt.Errorf("follow-up %q: %w", task, ErrNotFound)
	}
	return call[bool](ctx, s, actor, "select public.admin_cancel_follow_up($1::uuid)", task)
}

// FollowUpLead returns the lead a follow-up task belongs to.
func (s *Store) FollowUpLead(ctx context.Context, task string) (_ string, err error) {
	if !isUUID(task) {
		return "", fmt.Errorf("follow-up %q: %w", task, ErrNotFound)
	}
	ctx, end := s.bound(ctx)
	defer end(&err)
	var lead string
	err = s.db.QueryRow(ctx, "select conversation_id::text from public.follow_up_tasks where id = $1::uuid", task).Scan(&lead)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("follow-up %s: %w", task, ErrNotFound)
	}
	return lead, err
}

// ReplayEvent sends an event's failed channels again; it returns how many.
func (s *Store) ReplayEvent(ctx context.Context, actor Actor, event string) (int, error) {
	if !isUUID(event) {
		return 0, fmt.Errorf("lead event %q: %w", event, ErrNotFound)
	}
	return call[int](ctx, s, actor, "select public.admin_replay_event($1::uuid)", event)
}

// ReplayFailed sends every failed delivery again, or those of one channel; it returns how
// many channels it queued.
func (s *Store) ReplayFailed(ctx context.Context, actor Actor, channel string) (int, error) {
	var ch *string
	if channel != "" {
		if !contains(Channels, channel) {
			return 0, fmt.Errorf("%w: channel must be one of %s", ErrInvalid, strings.Join(Channels, ", "))
		}
		ch = &channel
	}
	return call[int](ctx, s, actor, "select public.admin_replay_failed($1::public.notification_channel)", ch)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range []byte(s) {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}
