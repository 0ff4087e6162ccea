# The two commands a new user needs: `make run` and `make test`.
SUPABASE_CLI_VERSION := 2.122.1
# The reference Standard Webhooks library the webhook tests sign and verify with (webhook/webhooktest).
STANDARDWEBHOOKS_VERSION := $(shell sed -n 's/^const Version = "\(.*\)"/\1/p' webhook/webhooktest/reference.go)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: run test build vet deps clean bench-intake bench-intake-instructions bench-delivery bench-delivery-instructions bench-sla chaos bench-console types

## run: the service on an embedded PostgreSQL, migrated, with demo data, on localhost:8080.
## The binary is built first and replaces the recipe's shell: Ctrl-C stops it cleanly
## (claims and the SLA lease released, the embedded PostgreSQL removed) with no make error.
## It prints the console's URL and an admin key made for the run, unless ADMIN_API_KEY names one (16+ characters).
run: build
	@exec bin/leadrelay dev

## test: every test (Go, pgTAP, Supabase CLI compatibility, the reference Standard Webhooks
## library, promtool); starts a throwaway PostgreSQL when none answers. The packages that
## query from Go run a second time in pgx's exec mode, the one Supabase's transaction pooler
## needs. Every network step has a deadline; what could not run is skipped with its reason,
## listed at the end (CI=true refuses to skip).
test: vet deps
	@skipped=""; \
	sb=$$(dev/tools/npm-install .cache/supabase-cli supabase $(SUPABASE_CLI_VERSION)) || exit 1; \
	case "$$sb" in skip:*) skipped="$$skipped\n  the Supabase CLI compatibility test: $${sb#skip: }";; esac; \
	cli=$$PWD/.cache/supabase-cli/node_modules/.bin/supabase; [ "$$sb" = ok ] || cli=""; \
	sw=$$(dev/tools/npm-install .cache/standardwebhooks standardwebhooks $(STANDARDWEBHOOKS_VERSION)) || exit 1; \
	case "$$sw" in skip:*) skipped="$$skipped\n  the webhook tests against npm standardwebhooks: $${sw#skip: }";; esac; \
	if ! command -v chromium >/dev/null && [ ! -x /usr/bin/chromium ]; then \
		skipped="$$skipped\n  the admin console's browser test (chromium not found: bash .ci/run installs it)"; \
	fi; \
	promtool=$${PROMTOOL:-$$(command -v promtool || ls $$PWD/.cache/bin/promtool 2>/dev/null)}; \
	if [ -z "$$promtool" ]; then \
		if [ "$$CI" = true ]; then echo "make test: promtool not found (CI=true requires it; .ci/run installs it)"; exit 1; fi; \
		skipped="$$skipped\n  promtool check metrics (promtool not found: bash .ci/run installs it)"; \
	fi; \
	SUPABASE_CLI="$$cli" PROMTOOL="$$promtool" go run ./dev/tools/withpostgres -- sh -c '\
		go test -count=1 ./... && \
		TEST_QUERY_EXEC_MODE=exec go test -count=1 ./edge/server/ ./dispatch/ ./sla/ ./edge/console/ ./cmd/... ./dev/bench/...'; \
	status=$$?; \
	if [ -n "$$skipped" ]; then printf "make test: skipped:$$skipped\n"; else echo "make test: nothing skipped"; fi; \
	exit $$status

vet:
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

## deps: the Go modules, within 5 minutes (GOPROXY when they are not cached).
deps:
	@timeout 300 go mod download || { echo "make test: go mod download failed or took over 5 minutes (GOPROXY=$$(go env GOPROXY))"; exit 1; }

build:
	go build -ldflags '$(LDFLAGS)' -o bin/leadrelay ./cmd/leadrelay

## bench-intake: load the intake on loopback and compare it with the database's own ceiling
## (a throwaway PostgreSQL unless DATABASE_URL is set); e.g. BENCH_FLAGS="-duration=30s -concurrency=16"
bench-intake:
	go run ./dev/bench/intake $(BENCH_FLAGS)

clean:
	rm -rf bin .cache

## bench-delivery: on a private PostgreSQL (pg_stat_statements, wal_level=logical): time from the intake's 201 to the
## alert at a Slack peer (50 and 200 leads/s, and as fast as 16 clients post), deliveries/s on a 20,000-lead backlog with
## SQL time, calls, rows, transactions, WAL, CPU and RSS per lead, and the delivery functions' plans;
## BENCH_BASE=<git revision> measures that revision too, interleaved (e.g. BENCH_BASE=a2a52a4); shorter: BENCH_LOADS=200,max
## BENCH_DURATION=5s BENCH_BACKLOG=2000 BENCH_PLANS=off; BENCH_STATEMENTS=on shows where the SQL time goes
bench-delivery:
	BENCH_BASE=$(BENCH_BASE) go test -run '^$$' -bench BenchmarkDelivery -benchtime 1x -timeout 60m ./cmd/leadrelay/

## bench-intake-instructions: CPU instructions per lead of submit_lead and its triggers, counted by callgrind in a
## single-user PostgreSQL (load cannot move it); BENCH_BASE=<git revision> counts that revision too. Needs valgrind.
bench-intake-instructions:
	@dev/tools/instructions intake
	@if [ -n "$(BENCH_BASE)" ]; then dev/tools/instructions intake $(BENCH_BASE); fi

## bench-delivery-instructions: CPU instructions per lead of the delivery SQL (open, claim, record and what they fire),
## counted by callgrind in a single-user PostgreSQL draining 20,000 leads as the dispatcher does (load cannot move it);
## BENCH_BASE=<git revision> counts that revision too. Needs valgrind.
bench-delivery-instructions:
	@dev/tools/instructions delivery
	@if [ -n "$(BENCH_BASE)" ]; then dev/tools/instructions delivery $(BENCH_BASE); fi

## bench-sla: the SLA tick over 1,000,000 conversations, a few hundred due: plans (EXPLAIN ANALYZE, BUFFERS) and timings
bench-sla:
	go run ./dev/tools/withpostgres -- go test -v -run '^$$' -bench BenchmarkSLA -benchtime 20x -timeout 30m ./sla/

## chaos: three replicas of the real binary on a private PostgreSQL, Slack/Telegram/SMTP peers that
## fail and hang, seven SIGKILLs, a paused SLA leader, a Slack outage and a Postgres restart; then a
## report (leads lost, deliveries missing and duplicated, 503s, drain time, SLA lateness). Not part of
## make test. Shorter: make chaos CHAOS_DURATION=90s CHAOS_SLACK_OUTAGE=30s CHAOS_PAUSE=10s
chaos:
	cd dev/chaos && CHAOS_DURATION=$(CHAOS_DURATION) CHAOS_RATE=$(CHAOS_RATE) CHAOS_KILLS=$(CHAOS_KILLS) \
		CHAOS_SLACK_OUTAGE=$(CHAOS_SLACK_OUTAGE) CHAOS_PAUSE=$(CHAOS_PAUSE) CHAOS_DRAIN_TIMEOUT=$(CHAOS_DRAIN_TIMEOUT) \
		CHAOS_HOT_WINDOW=$(CHAOS_HOT_WINDOW) \
		go test -tags chaos -run '^TestChaos$$' -count=1 -v -timeout 60m .

## bench-console: the admin console's leads list at 1,000,000 leads, per filter and as a whole page; plans
bench-console:
	go run ./dev/tools/withpostgres -- go test -run '^$$' -bench BenchmarkLeadsList -benchtime 1x -timeout 30m ./edge/console/

## types: regenerate supabase/types/database.ts (the API's TypeScript types) with the pinned Supabase CLI
types:
	@sb=$$(dev/tools/npm-install .cache/supabase-cli supabase $(SUPABASE_CLI_VERSION)) || exit 1; \
	[ "$$sb" = ok ] || { echo "make types: $$sb"; exit 1; }; \
	SUPABASE_CLI=$$PWD/.cache/supabase-cli/node_modules/.bin/supabase UPDATE_TYPES=1 \
		go run ./dev/tools/withpostgres -- go test -count=1 -run TestGeneratedTypesAreCurrent -v ./supabase/
