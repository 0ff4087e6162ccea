package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/truenester/leadrelay/database/migrate"
	"github.com/truenester/leadrelay/notifiers"
	"github.com/truenester/leadrelay/supabase"
	"github.com/truenester/leadrelay/webhook"
)

var doctorCommand = command{
	name:    "doctor",
	summary: "check every setting, the database, each channel and the webhook; say how to fix what is wrong",
	details: `Reads the same environment as serve. One line per check: ok, FAIL (with its
fix) or skip (with why). Exits 1 when anything failed; no channel at all is a
failure unless ENABLE_NOTIFICATION_WORKER=false. It sends nothing to
anyone: Slack gets an empty message, which Slack refuses before posting;
Telegram getMe; SMTP up to AUTH, then QUIT; Twilio fetches the account. The
webhook receiver at webhook_url gets a probe signed with the database's
secret, which only wakes it. With SUPABASE_URL and SUPABASE_ANON_KEY, PostgREST
is checked from outside: anon can call submit_lead's validation, and reads
nothing.`,
	setup: func(*flag.FlagSet) func(context.Context, cli, []string) error {
		return noArgs(func(ctx context.Context, c cli) error {
			return doctor(ctx, c.getenv, c.stdout)
		})
	},
}

// doctorRun prints findings and counts the failures.
type doctorRun struct {
	out    io.Writer
	failed int
}

func (d *doctorRun) ok(check, format string, a ...any) {
	fmt.Fprintf(d.out, "ok    %s: %s\n", check, fmt.Sprintf(format, a...))
}

func (d *doctorRun) skip(check, format string, a ...any) {
	fmt.Fprintf(d.out, "skip  %s: %s\n", check, fmt.Sprintf(format, a...))
}

// fail reports a problem and, after "fix:", what to do about it.
func (d *doctorRun) fail(check, problem, fix string) {
	d.failed++
	fmt.Fprintf(d.out, "FAIL  %s: %s (fix: %s)\n", check, problem, fix)
}

// doctor checks everything serve depends on.
func doctor(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	d := &doctorRun{out: stdout}
	st, err := loadSettings(getenv)
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			d.fail("settings", line, "correct the variable it names (README: Configuration)")
		}
	} else {
		d.ok("settings", "every variable is valid")
	}

	for _, reason := range st.channelsOff {
		ch, why, _ := strings.Cut(reason, ": ")
		d.skip(ch, "%s", why)
	}
	for _, s := range st.senders {
		d.channel(ctx, s)
	}
	// No channel is a failure of serve's environment, as a wrong secret is: serve would take
	// leads and alert nobody. Only an intake-only process has no use for one.
	switch {
	case len(st.senders) > 0:
	case !st.Dispatch:
		d.skip("channels", "none is configured; with ENABLE_NOTIFICATION_WORKER=false serve delivers nothing here, and the process that delivers needs them")
	default:
		d.fail("channels", "none is configured: serve would claim no alert and leave every one waiting in the outbox for a replica that has a channel", notifiers.SetAChannel)
	}

	if st.DatabaseURL == "" {
		d.skip("database", "DATABASE_URL is not set: nothing in the database is checked")
	} else if conn, err := connectDB(ctx, st.DatabaseURL); err != nil {
		d.fail("database", err.Error(), "check DATABASE_URL's host, port, user and password (Supabase: the direct connection, port 5432)")
	} else {
		defer conn.Close(context.WithoutCancel(ctx))
		d.database(ctx, conn, st)
	}
	d.postgREST(ctx, getenv)

	if d.failed > 0 {
		return fmt.Errorf("doctor found %d problem(s)", d.failed)
	}
	fmt.Fprintln(stdout, "all good")
	return nil
}

func (d *doctorRun) channel(ctx context.Context, s notifiers.Sender) {
	name := string(s.Channel())
	p, ok := s.(notifiers.Prober)
	if !ok {
		d.skip(name, "configured; it has no harmless call, so it is not probed")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	found, err := p.Probe(ctx)
	if err != nil {
		d.fail(name, err.Error(), channelFix[name])
		return
	}
	d.ok(name, "%s", found)
}

var channelFix = map[string]string{
	"slack":    "create an incoming webhook in Slack (Apps > Incoming Webhooks) and put its URL in SLACK_WEBHOOK_URL",
	"telegram": "put the token @BotFather gave the bot in TELEGRAM_BOT_TOKEN (and check TELEGRAM_API_BASE_URL)",
	"email":    "check EMAIL_HOST, EMAIL_PORT and the credentials EMAIL_USER and EMAIL_PASS (with Gmail or Microsoft 365, an app password)",
	"sms":      "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN in Twilio's console",
	"whatsapp": "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN in Twilio's console",
}

// database checks what the service needs of the database: the schema, the
// functions, the realtime publication, row-level security, the webhook.
func (d *doctorRun) database(ctx context.Context, conn *pgx.Conn, st settings) {
	var version string
	if err := conn.QueryRow(ctx, "select current_setting('server_version')").Scan(&version); err != nil {
		d.fail("database", err.Error(), "check that DATABASE_URL names a PostgreSQL database")
		return
	}
	d.ok("database", "reachable (%s, PostgreSQL %s)", describeDB(conn.Config()), version)
	d.durability(ctx, conn)

	pending, err := migrate.Pending(ctx, conn, supabase.FS)
	switch {
	case err != nil:
		d.fail("migrations", "cannot read the migration history: "+err.Error(), "run `leadrelay migrate`")
		return
	case len(pending) > 0:
		d.fail("migrations", fmt.Sprintf("%d not applied: %s", len(pending), strings.Join(pending, ", ")), "run `leadrelay migrate` (on Fly.io the release command does)")
		return
	default:
		all, _ := migrate.Migrations(supabase.FS)
		d.ok("migrations", "all %d applied", len(all))
	}
	d.functions(ctx, conn)
	d.realtime(ctx, conn)
	d.rowLevelSecurity(ctx, conn)
	d.webhook(ctx, conn, st.WebhookKey)
}

// durability checks that a commit waits for the disk, as the intake's 201 promises (the lead
// is saved): with fsync or synchronous_commit off, a crash of the database loses leads it
// acknowledged. It reads them as the service's sessions get them, DATABASE_URL's own
// settings included.
func (d *doctorRun) durability(ctx context.Context, conn *pgx.Conn) {
	var fsync, syncCommit string
	if err := conn.QueryRow(ctx, "select current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit); err != nil {
		d.fail("durability", err.Error(), "check the database")
		return
	}
	switch {
	case fsync != "on":
		d.fail("durability", "fsync is off: a crash of the database can lose or corrupt leads it acknowledged",
			"turn fsync on in postgresql.conf (Supabase keeps it on; `make run`'s embedded database is the one place it is off)")
	case syncCommit == "off":
		d.fail("durability", "synchronous_commit is off: the intake answers 201 before the lead is on disk, and a crash of the database loses the leads of its last moments",
			"drop synchronous_commit from DATABASE_URL, or ALTER ROLE (or DATABASE) ... SET synchronous_commit = on")
	default:
		d.ok("durability", "a commit waits for the disk (fsync on, synchronous_commit %s)", syncCommit)
	}
}

var (
	sqlFunction = regexp.MustCompile(`(?is)create or replace function\s+([a-z0-9_]+)\.([a-z0-9_]+)\s*\(.*?\bas\s+\$\$(.*?)\$\$`)
	sqlTrigger  = regexp.MustCompile(`(?is)create or replace trigger\s+([a-z0-9_]+)\s.*?\bon\s+([a-z0-9_.]+)`)
)

// functions compares every function and trigger of supabase/functions-sql
// with the database's: a binary newer than the last migrate shows here.
func (d *doctorRun) functions(ctx context.Context, conn *pgx.Conn) {
	files, err := fs.Glob(supabase.FS, "functions-sql/*.sql")
	if err != nil {
		d.fail("functions", err.Error(), "rebuild the binary")
		return
	}
	var missing, stale []string
	functions, triggers := 0, 0
	for _, file := range files {
		body, err := fs.ReadFile(supabase.FS, file)
		if err != nil {
			d.fail("functions", err.Error(), "rebuild the binary")
			return
		}
		for _, m := range sqlFunction.FindAllStringSubmatch(string(body), -1) {
			functions++
			rows, _ := conn.Query(ctx, `select p.prosrc from pg_proc p join pg_namespace n on n.oid = p.pronamespace
				where n.nspname = $1::text and p.proname = $2::text`, m[1], m[2])
			sources, err := pgx.CollectRows(rows, pgx.RowTo[string])
			switch {
			case err != nil:
				d.fail("functions", err.Error(), "check the database")
				return
			case len(sources) == 0:
				missing = append(missing, m[1]+"."+m[2])
			case !slices.Contains(sources, m[3]):
				stale = append(stale, m[1]+"."+m[2])
			}
		}
		for _, m := range sqlTrigger.FindAllStringSubmatch(string(body), -1) {
			triggers++
			var exists bool
			if err := conn.QueryRow(ctx, `select exists (select from pg_trigger where tgname = $1::text and tgrelid = to_regclass($2::text))`, m[1], m[2]).Scan(&exists); err != nil {
				d.fail("functions", err.Error(), "check the database")
				return
			}
			if !exists {
				missing = append(missing, "trigger "+m[1])
			}
		}
	}
	if len(missing)+len(stale) > 0 {
		var problems []string
		if len(missing) > 0 {
			problems = append(problems, "missing: "+strings.Join(missing, ", "))
		}
		if len(stale) > 0 {
			problems = append(problems, "older than supabase/functions-sql: "+strings.Join(stale, ", "))
		}
		d.fail("functions", strings.Join(problems, "; "), "run `leadrelay migrate`: it re-applies supabase/functions-sql")
		return
	}
	d.ok("functions", "%d functions and %d triggers as in supabase/functions-sql", functions, triggers)
}

var (
	realtimeTables = regexp.MustCompile(`(?is)alter publication supabase_realtime add table\s+([^;]+);`)
	identity       = regexp.MustCompile(`(?is)alter table\s+([a-z0-9_.]+)\s+replica identity\s+(full|default)`)
)

// realtime checks that the admin panel's tables are published, with the
// replica identity their update events need.
func (d *doctorRun) realtime(ctx context.Context, conn *pgx.Conn) {
	var want []string
	full := map[string]bool{} // the last word of the migrations on each table
	migrations, err := fs.Glob(supabase.FS, "migrations/*.sql")
	if err != nil {
		d.fail("realtime", err.Error(), "rebuild the binary")
		return
	}
	for _, file := range migrations {
		body, _ := fs.ReadFile(supabase.FS, file)
		for _, m := range realtimeTables.FindAllStringSubmatch(string(body), -1) {
			for _, t := range strings.Split(m[1], ",") {
				want = append(want, strings.TrimSpace(t))
			}
		}
		for _, m := range identity.FindAllStringSubmatch(string(body), -1) {
			full[m[1]] = strings.EqualFold(m[2], "full")
		}
	}
	rows, _ := conn.Query(ctx, `select schemaname || '.' || tablename from pg_publication_tables where pubname = 'supabase_realtime'`)
	published, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		d.fail("realtime", err.Error(), "check the database")
		return
	}
	var problems []string
	for _, t := range want {
		if !slices.Contains(published, t) {
			problems = append(problems, t+" is not in the supabase_realtime publication")
		}
	}
	for t, isFull := range full {
		if !isFull {
			continue
		}
		var identity string
		if err := conn.QueryRow(ctx, `select relreplident::text from pg_class where oid = to_regclass($1::text)`, t).Scan(&identity); err != nil || identity != "f" {
			problems = append(problems, t+" lacks replica identity full")
		}
	}
	if len(problems) > 0 {
		d.fail("realtime", strings.Join(problems, "; "), "run `leadrelay migrate`; on Supabase, check Database > Publications > supabase_realtime")
		return
	}
	d.ok("realtime", "supabase_realtime publishes %s", strings.Join(want, ", "))
}

func (d *doctorRun) rowLevelSecurity(ctx context.Context, conn *pgx.Conn) {
	rows, _ := conn.Query(ctx, `select relname::text from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p') and not relrowsecurity order by 1`)
	open, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		d.fail("row-level security", err.Error(), "check the database")
		return
	}
	if len(open) > 0 {
		d.fail("row-level security", "off on public."+strings.Join(open, ", public."), "`alter table ... enable row level security` in a migration: without it anon reads these tables through PostgREST")
		return
	}
	var n int
	_ = conn.QueryRow(ctx, `select count(*) from pg_class where relnamespace = 'public'::regnamespace and relkind in ('r', 'p')`).Scan(&n)
	d.ok("row-level security", "on for all %d tables in public", n)
}

// probeEventID is the webhook probe's event: no event has it, so a receiver
// woken by it finds nothing to do.
const probeEventID = "00000000-0000-0000-0000-000000000000"

// webhook checks the database webhook's settings: the secret the database
// signs with equals WEBHOOK_SECRET, and the receiver at webhook_url takes a
// probe signed with it.
func (d *doctorRun) webhook(ctx context.Context, conn *pgx.Conn, key []byte) {
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	body := fmt.Sprintf(`{"type":"INSERT","table":"lead_events","schema":"public","record":{"id":%q,"event_type":"doctor.probe"},"old_record":null}`, probeEventID)
	var url, source, signature *string
	err := conn.QueryRow(ctx, "select webhook_url, secret_source, signature from leadrelay_private.webhook_probe($1::text, $2::text, $3::text)",
		probeEventID, ts, body).Scan(&url, &source, &signature)
	if err != nil {
		d.fail("webhook", "cannot read the webhook settings: "+err.Error(), "run `leadrelay migrate`")
		return
	}
	const storeFix = "store the secret WEBHOOK_SECRET holds: on Supabase `select vault.create_secret('<WEBHOOK_SECRET>', 'leadrelay_webhook_secret')` (or vault.update_secret), elsewhere `insert into leadrelay_private.settings values ('webhook_secret', '<WEBHOOK_SECRET>')`"
	switch {
	case url == nil && len(key) == 0:
		d.skip("webhook", "no webhook_url in leadrelay_private.settings and no WEBHOOK_SECRET: the doorbells are LISTEN/NOTIFY and the sweep")
		return
	case url == nil:
		d.fail("webhook", "WEBHOOK_SECRET is set but the database has no webhook_url, so it never calls the receiver",
			"`insert into leadrelay_private.settings (key, value) values ('webhook_url', 'https://<app>.fly.dev/webhooks/lead-events')`, or unset WEBHOOK_SECRET")
		return
	case len(key) == 0:
		d.fail("webhook", "the database posts to "+*url+" but WEBHOOK_SECRET is not set, so the receiver refuses every call", "set WEBHOOK_SECRET to the secret the database signs with")
		return
	case source == nil:
		d.fail("webhook", "webhook_url is set but no secret is stored, so the database sends nothing", storeFix)
		return
	case signature == nil:
		d.fail("webhook", "the secret in "+*source+" is not base64 (optionally after whsec_): the database cannot sign with it", storeFix)
		return
	}
	h := http.Header{}
	h.Set("webhook-id", probeEventID)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", *signature)
	if _, err := webhook.Verify(key, h, []byte(body), now); err != nil {
		d.fail("webhook", "the secret in "+*source+" differs from WEBHOOK_SECRET: the receiver would refuse every call", storeFix+", or set WEBHOOK_SECRET to the stored one")
		return
	}
	d.ok("webhook", "the secret in %s equals WEBHOOK_SECRET (a probe it signed verifies)", *source)

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *url, strings.NewReader(body))
	if err != nil {
		d.fail("webhook receiver", "webhook_url is not a URL: "+err.Error(), "store https://<app>.fly.dev/webhooks/lead-events in leadrelay_private.settings")
		return
	}
	req.Header = h
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.fail("webhook receiver", "cannot reach "+*url+": "+redactedErr(err), "deploy the service, or correct webhook_url in leadrelay_private.settings")
		return
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusAccepted:
		d.ok("webhook receiver", "%s accepted a probe signed by the database", *url)
	case http.StatusUnauthorized:
		d.fail("webhook receiver", *url+" refused the database's signature (401)", "the running service has another WEBHOOK_SECRET: `fly secrets set WEBHOOK_SECRET=...` to the stored secret")
	default:
		d.fail("webhook receiver", fmt.Sprintf("%s answered %d to a signed probe", *url, res.StatusCode), "webhook_url must be the service's /webhooks/lead-events, served with WEBHOOK_SECRET set")
	}
}

func redactedErr(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap().Error()
	}
	return err.Error()
}

// postgREST checks the API surface from outside as anon: submit_lead's
// validation answers (a lead without contact is refused, nothing stored) and
// a read of the leads returns nothing.
func (d *doctorRun) postgREST(ctx context.Context, getenv func(string) string) {
	base, key := strings.TrimRight(getenv("SUPABASE_URL"), "/"), getenv("SUPABASE_ANON_KEY")
	if base == "" || key == "" {
		d.skip("postgrest", "set SUPABASE_URL and SUPABASE_ANON_KEY to check the API as the website's anon key sees it")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	call := func(method, path, body string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("apikey", key)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", errors.New(redactedErr(err))
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		return res.StatusCode, string(b), nil
	}
	status, body, err := call(http.MethodPost, "/rest/v1/rpc/submit_lead", `{"payload":{"form":"contact_form","name":"leadrelay doctor"}}`)
	switch {
	case err != nil:
		d.fail("postgrest", "cannot reach "+base+": "+err.Error(), "check SUPABASE_URL (https://<ref>.supabase.co)")
		return
	case status == http.StatusBadRequest && strings.Contains(body, "22023"):
		d.ok("postgrest", "anon calls submit_lead, whose validation refuses a lead without contact (400)")
	default:
		d.fail("postgrest", fmt.Sprintf("submit_lead as anon answered %d %s, want 400 invalid lead", status, clipText(body, 200)),
			"check SUPABASE_ANON_KEY, and that `leadrelay migrate` ran (it grants anon execute on submit_lead)")
	}
	status, body, err = call(http.MethodGet, "/rest/v1/conversations?select=id&limit=1", "")
	switch {
	case err != nil:
		d.fail("postgrest reads", err.Error(), "check SUPABASE_URL")
	case status == http.StatusOK && strings.TrimSpace(body) == "[]", status == http.StatusUnauthorized, status == http.StatusForbidden:
		d.ok("postgrest reads", "anon reads no lead (%d)", status)
	default:
		d.fail("postgrest reads", fmt.Sprintf("anon read conversations: %d %s", status, clipText(body, 200)), "row-level security must be on and give anon no policy (run `leadrelay migrate`)")
	}
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
