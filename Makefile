# otelcol-fabric — build, run and test the distribution.
#
#   make run        build if needed, run the embedded default (configs/local.yaml)
#   make test       every test: unit, generated-code check, binary smoke tests
#   make build      bin/otelcol-fabric (incremental)
#   make generate   regenerate cmd/otelcol-fabric (ocb) and mdatagen code
#   make lint       gofmt, go vet, golangci-lint (pinned in tools/go.mod)
#   make clean      remove build outputs and local data

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO         ?= go
# One set of build flags for every go command here (build, test, vet), so that
# the tests reuse the packages the binary build compiled instead of compiling
# the whole collector a second time: a static binary, reproducible paths.
export CGO_ENABLED := 0
export GOFLAGS     := $(strip $(GOFLAGS) $(if $(findstring -trimpath,$(GOFLAGS)),,-trimpath))
OCB_VERSION := v0.145.0
TOOLS_DIR  := $(CURDIR)/.tools
OCB        ?= $(TOOLS_DIR)/ocb-$(OCB_VERSION)
DIST_DIR   := cmd/otelcol-fabric
BIN        := bin/otelcol-fabric
TOOL       := $(GO) tool -modfile=$(CURDIR)/tools/go.mod

# The module proxy here does not answer checksum-database look-ups for every
# module, so commands that may add modules run with the checksum database off;
# committed go.sum files verify everything else.
NOSUMDB    := GOSUMDB=off GOFLAGS=-mod=mod

# Build stamps (see README "Version stamping"). SOURCE_DATE_EPOCH, when set,
# makes the build time reproducible.
VERSION    := $(shell cat VERSION)
COMMIT     := $(shell git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)
BUILD_TIME  = $(shell date -u $(if $(SOURCE_DATE_EPOCH),-d @$(SOURCE_DATE_EPOCH)) +%Y-%m-%dT%H:%M:%SZ)
STAMP_PKG  := github.com/otelcol-fabric/otelcol-fabric/internal/buildinfo
LDFLAGS     = -s -w -X $(STAMP_PKG).Version=$(VERSION) -X $(STAMP_PKG).Commit=$(COMMIT) -X $(STAMP_PKG).BuildTime=$(BUILD_TIME)

# Every input of the binary: Go sources of both modules (tests excluded), module
# files, and the embedded configuration.
SOURCES := $(shell find . \( -path ./bin -o -path ./data -o -path ./.tools -o -path ./.build -o -path ./tools -o -path ./deploy -o -path ./bench -o -path ./.git \) -prune \
             -o \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) -print) configs/local.yaml
METADATA := $(shell find processors exporters receivers extensions connectors -name metadata.yaml 2>/dev/null)

.PHONY: all build run test test-deps unit-test reliability bench loadtest lint generate clean ocb tools FORCE
all: build

## build: bin/otelcol-fabric; a second run with nothing changed does nothing.
build: $(BIN)

$(BIN): $(SOURCES) .build/stamp
	@mkdir -p $(@D)
	@echo ">> building $@ $(VERSION) ($(COMMIT))"
	cd $(DIST_DIR) && $(GO) build -ldflags "$(LDFLAGS)" -o $(CURDIR)/$@ .

# Rewritten only when the version or commit changes, so that a new commit
# relinks the binary with its SHA and nothing else does.
.build/stamp: FORCE
	@mkdir -p $(@D)
	@echo "$(VERSION) $(COMMIT)" | cmp -s - $@ || echo "$(VERSION) $(COMMIT)" > $@

# Regenerate the distribution sources when the manifest changes.
$(DIST_DIR)/components.go: builder-config.yaml
	$(MAKE) generate

## ocb: install the pinned OpenTelemetry Collector Builder into .tools/.
ocb: $(OCB)
$(OCB):
	@mkdir -p $(TOOLS_DIR)
	GOBIN=$(TOOLS_DIR) $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION)
	mv $(TOOLS_DIR)/builder $@

## generate: ocb sources for cmd/otelcol-fabric and mdatagen code for each custom component.
generate: $(OCB)
	$(NOSUMDB) $(OCB) --config builder-config.yaml --skip-compilation
	$(GO) run ./internal/tools/ocbpatch $(DIST_DIR)/main.go
	gofmt -w $(DIST_DIR)
	@for m in $(METADATA); do \
	  echo ">> mdatagen $$m"; \
	  (cd $$(dirname $$m) && $(TOOL) mdatagen metadata.yaml); \
	done

## run: build if needed and run the embedded default configuration (configs/local.yaml).
run: $(BIN)
	@echo ">> otelcol-fabric $(VERSION), local mode (configs/local.yaml, embedded)"
	@echo "   send OTLP/gRPC to $${FABRIC_OTLP_GRPC_ENDPOINT:-127.0.0.1:4317}, OTLP/HTTP to http://$${FABRIC_OTLP_HTTP_ENDPOINT:-127.0.0.1:4318}"
	@echo "   Pyroscope SDKs push to http://$${FABRIC_PYROSCOPE_ENDPOINT:-127.0.0.1:4040}"
	@echo "   output lands in $${FABRIC_DATA_DIR:-./data}/{traces,metrics,logs,profiles}.jsonl (OTLP/JSON, one batch per line)"
	@echo "   health: http://$${FABRIC_HEALTH_ENDPOINT:-127.0.0.1:13133}/   own metrics: http://$${FABRIC_METRICS_HOST:-127.0.0.1}:$${FABRIC_METRICS_PORT:-8888}/metrics"
	@echo "   stop with Ctrl-C"
	exec ./$(BIN)

## test: every test. Unit tests do not need the binary; the tests under tests/
## run against bin/otelcol-fabric, built first.
test: $(BIN) $(OCB) test-deps
	FABRIC_BIN=$(CURDIR)/$(BIN) FABRIC_OCB=$(OCB) $(GO) test -count=1 -timeout 20m ./...
	cd $(DIST_DIR) && $(GO) test -count=1 ./...
	cd deploy && $(GO) test -count=1 ./...
	cd third_party/fluentforwardreceiver && GOFLAGS= $(GO) test -count=1 ./... # upstream tests find testdata through runtime.Caller: no -trimpath
	cd bench && FABRIC_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 ./... # the load harness: config checks, exact counts, a few seconds through the binary

## test-deps: programs the tests run for real, from Debian's packages:
## Prometheus receives the gateway's remote writes; Chromium renders the
## queuewatch status page.
test-deps:
	@for pkg in prometheus chromium; do \
	  command -v $$pkg >/dev/null 2>&1 && continue; \
	  echo ">> installing $$pkg (Debian package) for the tests"; \
	  apt-get install -y -q $$pkg >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q $$pkg >/dev/null; }; \
	done
	@prometheus --version 2>&1 | head -1; chromium --version 2>/dev/null

## reliability: the reliability suite through the binary (store outages of
## 60 s, make test runs them with 15 s; FABRIC_OUTAGE_SECONDS overrides;
## crashes and restarts, hostile input on every port, overload, tagguard in
## a real Prometheus) and tests/RELIABILITY.md generated from what it measured.
RELIABILITY_TESTS := TestStoreOutages|TestGatewayRestart|TestGatewayPortsHostile|TestAgentPortsHostile|TestDeepNestingThroughBinary|TestPyroscopeBombThroughBinary|TestFluentForwardHostileThroughBinary|TestTagguardCollapsedSeriesInPrometheus|TestOverload|TestGatewayOverloadByTier|TestLargeSpansIn2GiB|TestTailSamplingMemoryPerSpan|TestRequestExpansion|TestLoadBalancing|TestLocalWriteFailure
reliability: $(BIN) test-deps
	FABRIC_BIN=$(CURDIR)/$(BIN) FABRIC_OUTAGE_SECONDS=$${FABRIC_OUTAGE_SECONDS:-60} \
	  FABRIC_RELIABILITY_REPORT=$(CURDIR)/tests/RELIABILITY.md FABRIC_RELIABILITY_LONG=1 \
	  $(GO) test -count=1 -timeout 60m -run '$(RELIABILITY_TESTS)' -v ./tests/

## bench: every component's Go benchmarks (-benchmem), BENCH_COUNT runs of
## each for benchstat, into bench/out/bench-<commit>.txt (gitignored).
## Compare two commits: benchstat bench/out/bench-<old>.txt bench/out/bench-<new>.txt
## The defaults (6 x 200ms) took 6 min 12 s on the shared 2-core machine.
BENCH_COUNT ?= 6
BENCH_TIME  ?= 200ms
BENCH_PKGS  := $(sort $(patsubst %/,./%,$(dir $(shell grep -rl --include='*_test.go' '^func Benchmark' processors exporters receivers extensions internal 2>/dev/null))))
BENCH_OUT   ?= bench/out/bench-$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)$(if $(shell git status --porcelain --untracked-files=no 2>/dev/null),-dirty).txt
bench:
	@mkdir -p $(dir $(BENCH_OUT))
	@echo ">> benchmarks of $(BENCH_PKGS): -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) into $(BENCH_OUT)"
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) -benchtime $(BENCH_TIME) -timeout 30m $(BENCH_PKGS) | tee $(BENCH_OUT).tmp
	mv $(BENCH_OUT).tmp $(BENCH_OUT)
	@echo ">> $(BENCH_OUT): $$(grep -c '^Benchmark' $(BENCH_OUT)) results; benchstat $(BENCH_OUT) summarises them"

## loadtest: the load harness (bench/, its own module) against bin/otelcol-fabric:
## physical limit, the configs of bench/configs/ side by side at one rate,
## 60 s runs (the cost per span of a load that goes on), the ablation
## (baseline to gateway chain one part at a time), agent -> gateway
## compression, GOGC with the deployment's GOMEMLIMIT, a slow store, a step search for each one's maximum sustainable throughput, tail
## sampling memory, the agent's footprint, 3x overload in a pod-sized memory
## cgroup and a profile of the gateway
## chain; writes docs/BENCHMARKS.md and docs/benchmarks/*.svg, raw results
## and profiles under bench/out/. Size it with LOADTEST_FLAGS, e.g.
## LOADTEST_FLAGS="-duration 5s -rounds 1 -step-max 4 -mem-traces 10000 -experiments compare,steps"
## (go run ./bench -h lists every flag). Ports 41000-41019 on 127.0.0.1.
LOADTEST_FLAGS ?=
loadtest: $(BIN)
	cd bench && $(GO) run . -root .. -bin $(CURDIR)/$(BIN) $(LOADTEST_FLAGS)

## unit-test: the tests that need neither the binary nor ocb (fast).
unit-test:
	$(GO) test -count=1 ./...
	cd $(DIST_DIR) && $(GO) test -count=1 ./...
	cd deploy && $(GO) test -count=1 ./...
	cd third_party/fluentforwardreceiver && GOFLAGS= $(GO) test -count=1 ./... # upstream tests find testdata through runtime.Caller: no -trimpath
	cd bench && $(GO) test -count=1 ./...

## lint: gofmt, go vet and golangci-lint at the version pinned in tools/go.mod.
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	cd $(DIST_DIR) && $(GO) vet ./...
	cd deploy && $(GO) vet ./...
	cd bench && $(GO) vet ./...
	$(TOOL) golangci-lint run ./...
	cd $(DIST_DIR) && $(TOOL) golangci-lint run ./...
	cd deploy && $(TOOL) golangci-lint run ./...

## clean: remove the binary, build stamps, local data and installed tools.
clean:
	rm -rf bin .build data $(TOOLS_DIR)

FORCE:
