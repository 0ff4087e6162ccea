# The two commands a new user needs: `make run` and `make test`.
SUPABASE_CLI_VERSION := 2.122.1
SUPABASE_CLI := .cache/supabase-cli/node_modules/.bin/supabase
# The reference Standard Webhooks library the webhook tests sign and verify with (webhook/webhooktest).
STANDARDWEBHOOKS_VERSION := $(shell sed -n 's/^const Version = "\(.*\)"/\1/p' webhook/webhooktest/reference.go)
STANDARDWEBHOOKS := .cache/standardwebhooks/node_modules/standardwebhooks/package.json

.PHONY: run test build vet supabase-cli standardwebhooks clean bench-intake bench-delivery bench-sla

## run: the service on an embedded PostgreSQL, migrated, with demo data, on localhost:8080
run:
	go run ./cmd/leadrelay dev

## test: every test (Go, pgTAP, Supabase CLI compatibility); starts a throwaway PostgreSQL when none answers.
## The packages that query from Go run a second time in pgx's exec mode, the one Supabase's
## transaction pooler needs.
test: vet supabase-cli standardwebhooks
	SUPABASE_CLI=$(if $(wildcard $(SUPABASE_CLI)),$(abspath $(SUPABASE_CLI))) \
		go run ./tools/withpostgres -- sh -c '\
		go test -count=1 ./... && \
		TEST_QUERY_EXEC_MODE=exec go test -count=1 ./server/ ./dispatch/ ./sla/ ./cmd/... ./bench/...'

vet:
	go vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

build:
	go build -o bin/leadrelay ./cmd/leadrelay

## bench-intake: load the intake on loopback and compare it with the database's own ceiling
## (a throwaway PostgreSQL unless DATABASE_URL is set); e.g. BENCH_FLAGS="-duration=30s -concurrency=16"
bench-intake:
	go run ./bench/intake $(BENCH_FLAGS)

## supabase-cli: the pinned Supabase CLI (npm package), for the compatibility test; skipped without npm
supabase-cli:
	@if [ -x $(SUPABASE_CLI) ]; then :; \
	elif command -v npm >/dev/null; then \
		mkdir -p .cache/supabase-cli && \
		npm install --silent --no-audit --no-fund --prefix .cache/supabase-cli supabase@$(SUPABASE_CLI_VERSION) >/dev/null; \
	else echo "npm not found: the Supabase CLI compatibility test will be skipped"; fi

## standardwebhooks: the pinned reference library (npm), for the webhook tests; they skip without npm unless CI=true
standardwebhooks:
	@if [ -f $(STANDARDWEBHOOKS) ]; then :; \
	elif command -v npm >/dev/null; then \
		echo "installing npm standardwebhooks@$(STANDARDWEBHOOKS_VERSION) into .cache/standardwebhooks (at most 2 minutes)" && \
		mkdir -p .cache/standardwebhooks && \
		timeout 120 npm install --no-audit --no-fund --prefix .cache/standardwebhooks standardwebhooks@$(STANDARDWEBHOOKS_VERSION) >/dev/null || \
		{ echo "npm install standardwebhooks failed: the webhook tests against the reference library will skip (fail under CI=true)"; rm -rf .cache/standardwebhooks; }; \
	else echo "npm not found: the webhook tests against the reference library will skip (fail under CI=true)"; fi

clean:
	rm -rf bin .cache

## bench-delivery: time from the intake's 201 to the alert at a Slack peer (50 leads/s and max), and deliveries/s on a backlog
bench-delivery:
	go run ./tools/withpostgres -- go test -run '^$$' -bench BenchmarkDelivery -benchtime 1x ./cmd/leadrelay/

## bench-sla: the SLA tick over 1,000,000 conversations, a few hundred due: plans (EXPLAIN ANALYZE, BUFFERS) and timings
bench-sla:
	go run ./tools/withpostgres -- go test -v -run '^$$' -bench BenchmarkSLA -benchtime 20x -timeout 30m ./sla/
