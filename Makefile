# calsync — see README.md. `make run` and `make test` are the two set-up commands.
SHELL := /bin/bash
export GOFLAGS := -buildvcs=false

# Development defaults: the in-process Graph emulator and a dev-only JWT secret.
DEV_JWT_SECRET ?= calsync-dev-only-jwt-secret-not-for-production
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/calsync_test?sslmode=disable
export TEST_DATABASE_URL

.PHONY: run build test vet generate check-generated postgres test-packages fmt tidy bench fuzz-smoke screenshot reliability

## run: start calsync against the local Postgres with the built-in Graph emulator
run: postgres build
	CALSYNC_GRAPH=emulator CALSYNC_JWT_SECRET="$${CALSYNC_JWT_SECRET:-$(DEV_JWT_SECRET)}" ./bin/calsync serve

## build: bin/calsync without build paths, symbol table and DWARF (72 MiB -> 50 MiB; panics and pprof keep
## function names). make test compiles the race-instrumented packages, so this compiles its own set either way.
build:
	go build -trimpath -ldflags "-s -w" -o bin/calsync ./cmd/calsync

## test: vet, generated-code check, and every test with -race against a real Postgres. The Debian packages
## the tests need (scripts/ensure-test-packages.sh) install in the background while vet compiles.
test: postgres
	@log=$$(mktemp); scripts/ensure-test-packages.sh >"$$log" 2>&1 & packages=$$!; \
	  $(MAKE) --no-print-directory vet check-generated; checks=$$?; \
	  wait $$packages; installed=$$?; cat "$$log" >&2; rm -f "$$log"; \
	  [ $$installed -eq 0 ] || echo "installing the test packages failed" >&2; \
	  [ $$checks -eq 0 ] && [ $$installed -eq 0 ]
	go test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz-smoke

## fuzz-smoke: each fuzz target for a bounded number of executions (seed corpora under testdata/); the
## list, the counts and why they are counts are in internal/reliability/fuzzreport.
fuzz-smoke:
	go run ./internal/reliability/fuzzreport

## vet: gofmt and go vet. With -race, vet type-checks against the race-instrumented packages that
## go test -race compiles anyway: a fresh machine compiles the Graph SDK once, not twice.
vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted" >&2; exit 1; fi
	go vet -race ./...

## generate: regenerate graph/ and resolver stubs from graph/*.graphqls, and the time zone maps from internal/zonedata (CLDR)
generate:
	go tool gqlgen generate
	go generate ./internal/schedule ./graphemu

check-generated:
	scripts/check-generated.sh

postgres:
	@scripts/ensure-postgres.sh

test-packages:
	@scripts/ensure-test-packages.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	go mod tidy

## screenshot: refresh docs/playground.png from the real-browser Playground test
screenshot: postgres test-packages
	CALSYNC_UPDATE_SCREENSHOT=1 go test -count=1 -run TestPlaygroundInBrowser ./cmd/calsync

## bench: measure calsync (a real process) against Postgres and the emulator; writes BENCHMARKS.md
bench: postgres
	go run ./cmd/calsync-bench -out BENCHMARKS.md

## reliability: run the fault and hostile-input tests and write docs/RELIABILITY.md from their outcome
reliability: postgres
	CALSYNC_WRITE_RELIABILITY=1 go test -count=1 -run 'Test(KilledDuringProcessing|GraphFaults|PostgresStoppedDuringBurst|ForgedFloodDoesNotStarveGenuine)$$' ./bench
	CALSYNC_WRITE_RELIABILITY=1 go test -count=1 -run 'Test(Hostile|CostWalker|QueryCache|AuthorizationMatrix)' ./server ./cmd/calsync ./outlook
	CALSYNC_WRITE_RELIABILITY=1 go test -count=1 -run 'Test(ForgedNotifications|AcceptAndReject|VersionsAndHostileValues)$$' ./webhooks
	CALSYNC_WRITE_RELIABILITY=1 go test -count=1 -run 'Test(DuplicateLifecycle|FailedLifecycle)' ./subscriptions
	CALSYNC_WRITE_RELIABILITY=1 go test -count=1 -run 'TestStreamsShareOneReadPerWakeUp' ./changes
	CALSYNC_WRITE_RELIABILITY=1 go run ./internal/reliability/fuzzreport
