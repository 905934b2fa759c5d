# slogate — see `make help`.

GO        ?= go
BIN_DIR   := $(CURDIR)/.bin
BINARY    := slogate
# Tests find prometheus, promtool, alertmanager and amtool here first.
TEST_ENV  := PATH=$(BIN_DIR):$$PATH SLOGATE_BIN_DIR=$(BIN_DIR)

STATICCHECK_VERSION := v0.7.0

# Build information for github.com/prometheus/common/version, as promu sets it.
VERSION    ?= $(or $(shell git describe --tags --dirty --match 'v[0-9]*' 2>/dev/null | sed 's/^v//'),0.0.0-dev)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH     ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_USER ?= $(shell whoami 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y%m%d-%H:%M:%S)
VERSION_PKG := github.com/prometheus/common/version
LDFLAGS := -X $(VERSION_PKG).Version=$(VERSION) \
	-X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) \
	-X $(VERSION_PKG).BuildUser=$(BUILD_USER) \
	-X $(VERSION_PKG).BuildDate=$(BUILD_DATE)

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "; printf "Targets:\n"} /^[a-zA-Z_-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build ./slogate with version information
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BINARY) ./cmd/slogate

.PHONY: run
run: build ## Build and run the self-contained demo (embedded Prometheus, simulated service)
	./$(BINARY) demo

.PHONY: tools
tools: ## Build the pinned Prometheus and Alertmanager into .bin/ (once)
	./scripts/tools.sh

.PHONY: test
test: tools ## Run all tests with -race against real Prometheus/Alertmanager, then a short fuzz run
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 40m ./...
	@if grep -rqs 'func FuzzLoad(' slo/; then \
		echo "$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=15s ./slo"; \
		$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=15s ./slo; \
	else \
		echo "no FuzzLoad in slo/ yet: short fuzz run skipped"; \
	fi

.PHONY: lint
lint: ## gofmt, go vet and staticcheck
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

.PHONY: bench
bench: ## Run the benchmarks (the table is kept in BENCHMARKS.md)
	$(TEST_ENV) $(GO) test -run='^$$' -bench=. -benchmem -timeout 60m ./...

.PHONY: fuzz
fuzz: ## Longer fuzz runs of every fuzz target (loader, tolerance parser, HTTP API)
	$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=2m ./slo
	$(GO) test -run='^$$' -fuzz='^FuzzParseTolerance$$' -fuzztime=1m ./slo
	$(GO) test -run='^$$' -fuzz='^FuzzAPI$$' -fuzztime=1m ./web

.PHONY: soak
soak: tools ## Longer kill -9, load and fault tests (build tag soak), longer fuzzing: about 30 min
	@# Tunable: SLOGATE_CRASH_ITERATIONS (60), SLOGATE_SOAK_LOAD (3m),
	@# SLOGATE_SOAK_FAULTS (4m), SOAK_FUZZTIME (3m per fuzz target).
	$(TEST_ENV) $(GO) test -race -count=1 -timeout 45m -tags soak -run Soak -v ./...
	$(GO) test -run='^$$' -fuzz='^FuzzLoad$$' -fuzztime=$(or $(SOAK_FUZZTIME),3m) ./slo
	$(GO) test -run='^$$' -fuzz='^FuzzParseTolerance$$' -fuzztime=$(or $(SOAK_FUZZTIME),3m) ./slo
	$(GO) test -run='^$$' -fuzz='^FuzzAPI$$' -fuzztime=$(or $(SOAK_FUZZTIME),3m) ./web

.PHONY: clean
clean: ## Remove build output and the test cache (keeps .bin/: rm -rf .bin to rebuild the tools)
	rm -rf $(BINARY) dist/
	$(GO) clean -testcache
