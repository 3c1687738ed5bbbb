# The menu. `make` alone lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Every Go module of the workspace (go.work), and the package patterns that
# cover them (in workspace mode ./... stops at module boundaries).
MODULES  := gen libs $(sort $(wildcard services/*)) deploy/manifeststest
PKGS     := $(foreach m,$(MODULES),./$(m)/...)
BUF      := node_modules/.bin/buf
GO_TEST_FLAGS ?=

# The Go toolchain every target uses: at least the newest patch release of
# the Go that go.mod names. The go command fetches it from the module proxy
# once (about 76 MB) when the machine's own Go is older; older patches carry
# standard-library vulnerabilities that govulncheck reports. It overrides
# GOTOOLCHAIN=local from the environment (Go's container images set it);
# `make GOTOOLCHAIN=... target` still picks another.
export GOTOOLCHAIN := go1.26.10+auto

# ONNX Runtime's shared library, from the npm package onnxruntime-node (the
# Go module proxy and Debian have none). ORT_LIB may point at any other copy
# (an official release, a GPU build).
ORT_VERSION := 1.30.0
ORT_SHA256  := ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ORT_CACHE   := .cache/onnxruntime
export ORT_LIB ?= $(CURDIR)/$(ORT_CACHE)/libonnxruntime.so.1

$(ORT_CACHE)/libonnxruntime.so.1:
	@mkdir -p $(ORT_CACHE)
	@echo "fetching libonnxruntime.so.1 $(ORT_VERSION) from the npm package onnxruntime-node (113 MB download)"
	cd $(ORT_CACHE) && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null \
	  && tar -xzf onnxruntime-node-$(ORT_VERSION).tgz package/bin/napi-v6/linux/x64/libonnxruntime.so.1 \
	  && mv package/bin/napi-v6/linux/x64/libonnxruntime.so.1 libonnxruntime.so.1.tmp \
	  && rm -rf package onnxruntime-node-$(ORT_VERSION).tgz
	echo "$(ORT_SHA256)  $(ORT_CACHE)/libonnxruntime.so.1.tmp" | sha256sum -c --quiet
	mv $(ORT_CACHE)/libonnxruntime.so.1.tmp $@

.PHONY: ort
ort: $(ORT_CACHE)/libonnxruntime.so.1 ## fetch the ONNX Runtime library into .cache/ (make test and make run do this)

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

UI_SRC := $(wildcard services/web/ui/src/*.ts) $(wildcard gen/ts/recsys/*/v1/*.ts)

services/web/ui/dist/app.js: node_modules $(UI_SRC)
	node_modules/.bin/tsc -p services/web/ui/tsconfig.json
	node_modules/.bin/esbuild services/web/ui/src/app.ts --bundle --minify --sourcemap --target=es2020 --log-level=warning --outfile=$@

.PHONY: ui
ui: services/web/ui/dist/app.js ## type-check and bundle the web UI (make run and make test do it)

.PHONY: generate
generate: node_modules ## regenerate Go, OpenAPI and TypeScript code from proto/ (offline)
	rm -rf gen/go/recsys gen/openapi/recsys gen/ts
	$(BUF) generate

.PHONY: check-generate
check-generate: node_modules ## fail if generated code differs from what proto/ generates
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate -o "$$tmp"; \
	for d in gen/go/recsys gen/openapi/recsys gen/ts; do \
	  diff -r "$$tmp/$$d" "$$d" >/dev/null || { diff -r "$$tmp/$$d" "$$d" | head -20; echo "$$d is stale: run make generate and commit it"; exit 1; }; \
	done; echo "generated code is up to date"

.PHONY: lint
lint: node_modules ## buf lint, buf format, buf breaking against main, gofmt, go vet
	$(BUF) lint
	$(BUF) format -d --exit-code proto
	@if git rev-parse --verify -q main >/dev/null; then \
	  $(BUF) breaking --against '.git#branch=main'; \
	else echo "no local main branch: skipping buf breaking"; fi
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p bin
	@for d in $(sort $(wildcard services/*/cmd/*)); do \
	  echo "go build ./$$d"; go build -o bin/ ./$$d; done

.PHONY: check-modules
check-modules: ## build every module alone (GOWORK=off) and check its go.mod is tidy
	@for m in $(MODULES); do echo "GOWORK=off go build ./$$m/..."; \
	  (cd $$m && GOWORK=off go mod tidy -diff >/dev/null) || { echo "$$m/go.mod is not tidy: run make tidy"; exit 1; }; \
	  (cd $$m && GOWORK=off go build ./...); done

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES) tools; do (cd $$m && GOWORK=off go mod tidy); done

# govulncheck (pinned in tools/go.mod) against a pinned snapshot of the Go
# vulnerability database: the module golang.org/x/vulndb, which the module
# proxy serves, carries every entry as OSV JSON in data/osv, and
# govulncheck reads such a folder as its database. To take newer entries,
# set VULNDB_VERSION to a newer pseudo-version and VULNDB_SUM to the Sum
# that `go mod download -json golang.org/x/vulndb@<version>` prints.
VULNDB_VERSION := v0.0.0-20261105234957-e22db6528018
VULNDB_SUM     := h1:mfngRv0Yoh0VApsXKEN82CjD99kl7mtparN3bs3JnqI=

.PHONY: vulncheck
vulncheck: ## govulncheck of every module against the pinned vulnerability database; fails on any finding
	@mkdir -p .cache/bin
	GOWORK=off go build -C tools -o $(CURDIR)/.cache/bin/govulncheck golang.org/x/vuln/cmd/govulncheck
	@info=$$(GOWORK=off go mod download -C tools -json golang.org/x/vulndb@$(VULNDB_VERSION)); \
	sum=$$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",*$$/\1/p' <<<"$$info"); \
	dir=$$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$$/\1/p' <<<"$$info"); \
	if [ "$$sum" != "$(VULNDB_SUM)" ] || [ ! -d "$$dir/data/osv" ]; then \
	  echo "golang.org/x/vulndb@$(VULNDB_VERSION): sum $$sum, want $(VULNDB_SUM) (and a data/osv folder)"; exit 1; fi; \
	echo "govulncheck: database golang.org/x/vulndb@$(VULNDB_VERSION), $$(ls "$$dir/data/osv" | wc -l) entries"; \
	cd gen && $(CURDIR)/.cache/bin/govulncheck -db "file://$$dir/data/osv" ./... $(foreach m,$(filter-out gen,$(MODULES)),../$(m)/...)

.PHONY: test
test: ort ui check-generate lint check-modules vulncheck ## the whole test suite (real Redis/Kafka from the environment, else embedded)
	go test -count=1 $(GO_TEST_FLAGS) $(PKGS)

.PHONY: test-short
test-short: ort ## quick tests only (testing.Short)
	go test -short $(PKGS)

.PHONY: bench
bench: ort ## every benchmark, then the budget table (also in .cache/bench/)
	@mkdir -p .cache/bench
	go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./services/featurecompute/... ./services/trainer/... | tee .cache/bench/raw.txt
	go test -run '^$$' -bench . -benchtime 300x -timeout 30m ./libs/featurestore/... ./services/ranking/... | tee -a .cache/bench/raw.txt
	go test -run '^$$' -bench ClickToVisible -benchtime 200x ./services/featurecompute/... | tee -a .cache/bench/raw.txt
	go run ./libs/benchreport/cmd/benchreport -o .cache/bench/table-$$(date -u +%Y%m%dT%H%M%SZ).txt < .cache/bench/raw.txt

.PHONY: run
run: ort ui ## the whole platform in one process; web UI and edge on http://localhost:8080
	go run ./services/local/cmd/recsys $(ARGS)

.PHONY: scenario
scenario: ort ## the closed loop in one process: traffic, retrain from the logs, 50/50 experiment, report
	go test -count=1 -run TestClosedLoop -v ./services/simulator/

FUZZTIME ?= 30s
FUZZ_TARGETS := libs/serving:FuzzHTTPBodies libs/eventstream:FuzzDecode libs/dataset:FuzzImportLines libs/modelrt:FuzzParseMetadata

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME (their seed corpora run in make test)
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzzing $$fn in $$pkg for $(FUZZTIME)"; \
	  (cd $$pkg && go test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) .) || exit 1; done

.PHONY: chaos
chaos: ort ## long fault runs: 200k events through 10 SIGKILLs of featurecompute, SIGTERM under load, Redis down/slow, deadlines
	RECSYS_CHAOS_EVENTS=200000 RECSYS_CHAOS_KILLS=10 go test -count=1 -v -timeout 60m \
	  -run 'SIGKILL|SIGTERM|TestRedis|Deadline|ExactlyOnce|Rebuild' ./services/featurecompute/ ./services/userfeatures/ ./services/ranking/

.PHONY: canary-weight
canary-weight: ## set the ranking canary weight in istio/ (make canary-weight WEIGHT=25), then kubectl apply -k istio
	deploy/set-canary-weight.sh $(WEIGHT)

# make certs makes a new CA every time; make up makes one only when there is
# none, so containers that are recreated keep trusting those still running.
certs/ca.pem:
	go run ./libs/certs/cmd/certs -dir certs

.PHONY: up
up: certs/ca.pem ## the platform in Docker (docker-compose.yml): Redis, Kafka, every service with mTLS, Prometheus, Grafana, Jaeger
	docker compose up -d --build

.PHONY: down
down: ## stop and remove what make up started (volumes stay; docker compose down -v drops them)
	docker compose down

.PHONY: certs
certs: ## a local CA and one mTLS certificate per service, in certs/
	go run ./libs/certs/cmd/certs -dir certs

.PHONY: deps-up
deps-up: ## start a real Redis (:6379) and Kafka (:19092) on loopback, as CI does
	@mkdir -p .cache/deps
	redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
	  --pidfile $(CURDIR)/.cache/deps/redis.pid --dir $(CURDIR)/.cache/deps
	.ci/kafka/start.sh $(CURDIR)/.cache/deps/kafka 19092
	@echo "export RECSYS_TEST_REDIS_ADDR=127.0.0.1:6379 RECSYS_TEST_KAFKA_BROKERS=127.0.0.1:19092"

.PHONY: deps-down
deps-down: ## stop what deps-up started
	-.ci/kafka/stop.sh $(CURDIR)/.cache/deps/kafka
	-[ -f .cache/deps/redis.pid ] && kill $$(cat .cache/deps/redis.pid)

.PHONY: clean
clean: ## remove build outputs and caches (not node_modules)
	rm -rf bin .cache certs
