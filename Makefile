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

# The CUDA execution provider of the same ONNX Runtime and the CUDA
# libraries it loads, from wheels of the PyPI registry (the npm package
# leaves the provider out; README "Running on a GPU"). The onnxruntime-gpu
# 1.30.0 wheel is built for CUDA 13.0 (its build info says so and its
# provider links libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10 and
# the driver's libcuda.so.1; it loads cuDNN 9, cuFFT and NVRTC only for
# operators that use them), so the NVIDIA wheels are CUDA 13.0 update 2's
# and cuDNN 9.14. Its provider works with the npm core (checked by
# TestCUDAProviderBelongsToCore), so that core is copied beside it and one
# core serves CPU and GPU. Each entry: package==version:SHA-256 of the
# wheel:files taken from it (comma-separated patterns).
ORT_GPU_CACHE  := .cache/onnxruntime-gpu
ORT_GPU_WHEELS := \
  onnxruntime-gpu==$(ORT_VERSION):6acc0f4b3d5ac5f2984432faa59dd8fcce6775f8b43a7140afa0f322c7a703b1:onnxruntime/capi/libonnxruntime_providers_cuda.so,onnxruntime/capi/libonnxruntime_providers_shared.so \
  nvidia-cuda-runtime==13.0.96:7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548:nvidia/cu13/lib/libcudart.so.13 \
  nvidia-cublas==13.1.0.3:ee8722c1f0145ab246bccb9e452153b5e0515fd094c3678df50b2a0888b8b171:nvidia/cu13/lib/libcublas.so.13,nvidia/cu13/lib/libcublasLt.so.13 \
  nvidia-curand==10.4.0.35:1aee33a5da6e1db083fe2b90082def8915f30f3248d5896bcec36a579d941bfc:nvidia/cu13/lib/libcurand.so.10 \
  nvidia-cufft==12.0.0.61:6c44f692dce8fd5ffd3e3df134b6cdb9c2f72d99cf40b62c32dde45eea9ddad3:nvidia/cu13/lib/libcufft.so.12 \
  nvidia-cudnn-cu13==9.14.0.64:024ce8f7571d322991ecadbe82907df2e89b5f36597d03436413ec6dd7c9fe54:nvidia/cudnn/lib/libcudnn*.so.9 \
  nvidia-cuda-nvrtc==13.0.88:ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575:nvidia/cu13/lib/libnvrtc.so.13,nvidia/cu13/lib/libnvrtc-builtins.so.13.0
# The wheels' platform tags (pip takes only the tags given).
ORT_GPU_PIP := --no-cache-dir --no-deps --only-binary=:all: --python-version 3.12 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64
PYTHON ?= python3
# Copies the wheel members matching the patterns into a folder; fails on a
# pattern that matches nothing (python, not unzip: pip brings python).
WHEEL_TAKE := import fnmatch, os, shutil, sys, zipfile; \
  z = zipfile.ZipFile(sys.argv[1]); names = z.namelist(); \
  [sys.exit(f"{sys.argv[1]}: nothing matches {p}") for p in sys.argv[3:] if not fnmatch.filter(names, p)]; \
  [shutil.copyfileobj(z.open(m), open(os.path.join(sys.argv[2], os.path.basename(m)), "wb")) for p in sys.argv[3:] for m in fnmatch.filter(names, p)]

.PHONY: ort-gpu
ort-gpu: $(ORT_CACHE)/libonnxruntime.so.1 ## fetch the CUDA provider and CUDA 13 libraries into .cache/onnxruntime-gpu (1.5 GB download; GPU machines only)
	@set -f; if [ "$$(cat $(ORT_GPU_CACHE)/PINS 2>/dev/null)" = "$(ORT_GPU_WHEELS)" ]; then \
	  echo "$(ORT_GPU_CACHE) is up to date"; exit 0; fi; \
	tmp=$(ORT_GPU_CACHE).tmp; rm -rf $$tmp; mkdir -p $$tmp/wheels; \
	for w in $(ORT_GPU_WHEELS); do \
	  IFS=: read -r spec sum files <<<"$$w"; \
	  echo "fetching $$spec (wheel of the PyPI registry)"; \
	  $(PYTHON) -m pip download --quiet $(ORT_GPU_PIP) -d $$tmp/wheels "$$spec"; \
	  whl=$$(find $$tmp/wheels -name "*.whl"); \
	  echo "$$sum  $$whl" | sha256sum -c --quiet; \
	  $(PYTHON) -c '$(WHEEL_TAKE)' "$$whl" $$tmp $${files//,/ }; \
	  rm "$$whl"; \
	done; \
	rmdir $$tmp/wheels; \
	cp $(ORT_CACHE)/libonnxruntime.so.1 $$tmp/libonnxruntime.so.1; \
	echo "$(ORT_GPU_WHEELS)" > $$tmp/PINS; \
	rm -rf $(ORT_GPU_CACHE); mv $$tmp $(ORT_GPU_CACHE); \
	ls -l $(ORT_GPU_CACHE); du -sh $(ORT_GPU_CACHE)

# The GPU machine's one command: fetch, then the CUDA tests with every
# skip turned into a failure, then the CPU/CUDA crossover benchmark. The
# libraries stay in .cache; only the NVIDIA driver comes from the machine.
.PHONY: gpu-check
gpu-check: ort ort-gpu ## on a machine with an NVIDIA GPU: the CUDA tests (they fail, not skip, without CUDA) and the CPU/CUDA crossover
	ORT_LIB=$(CURDIR)/$(ORT_GPU_CACHE)/libonnxruntime.so.1 \
	LD_LIBRARY_PATH=$(CURDIR)/$(ORT_GPU_CACHE)$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} \
	RECSYS_REQUIRE_CUDA=1 \
	  go test -count=1 -v -run 'CUDA|Auto' -bench CUDACrossover -benchtime 200x ./libs/modelrt/

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

# The stock validators of the Kubernetes and Istio manifests (deploy/README.md,
# "Tests"), pinned: the kustomize CLI from its Go module (deploy/tools/go.mod,
# v5.7.1: the newest that builds with Go 1.26) and kubernetes-validate from
# the PyPI registry (deploy/requirements-validate.txt) in a venv under
# .cache/. deploy/validate.sh builds every kustomization and checks every
# Kubernetes object strictly against each of KUBE_VERSIONS (the oldest
# Kubernetes deploy/README.md supports and newer ones); custom resources are
# decoded strictly into their upstream Go types by deploy/manifeststest.
KUSTOMIZE     := .cache/bin/kustomize
VALIDATE_VENV := .cache/venv-validate
KUBE_VERSIONS := 1.29.0 1.33.0 1.37.0

$(KUSTOMIZE): deploy/tools/go.mod deploy/tools/go.sum
	@mkdir -p $(dir $@)
	GOWORK=off go build -C deploy/tools -o $(CURDIR)/$@ sigs.k8s.io/kustomize/kustomize/v5

$(VALIDATE_VENV)/.installed: deploy/requirements-validate.txt
	rm -rf $(VALIDATE_VENV)
	$(PYTHON) -m venv $(VALIDATE_VENV)
	$(VALIDATE_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r $<
	@touch $@

.PHONY: validate
validate: $(KUSTOMIZE) $(VALIDATE_VENV)/.installed ## kustomize build of every kustomization, kubernetes-validate --strict against Kubernetes 1.29, 1.33 and 1.37
	deploy/validate.sh $(KUSTOMIZE) $(VALIDATE_VENV)/bin/kubernetes-validate $(KUBE_VERSIONS)

# Istio's analyzers, all 53 of istioctl analyze, offline: deploy/istioanalyze
# feeds Istio's analyzer packages (istio.io/istio, pinned in its go.mod) the
# rendered overlays and istio/, with stand-in pods built from the pod
# templates. Its first build takes about eight minutes on two cores, so it
# is not part of make test; deploy/README.md records its output.
ISTIOANALYZE := .cache/bin/istioanalyze

$(ISTIOANALYZE): deploy/istioanalyze/go.mod deploy/istioanalyze/go.sum deploy/istioanalyze/main.go
	@mkdir -p $(dir $@)
	GOWORK=off go build -C deploy/istioanalyze -o $(CURDIR)/$@ .

.PHONY: validate-istio
validate-istio: $(KUSTOMIZE) $(ISTIOANALYZE) ## Istio's analyzers over each mesh overlay with istio/ and stand-in pods (first build: minutes)
	deploy/validate-istio.sh $(KUSTOMIZE) $(ISTIOANALYZE)

# The API conformance run (docs/architecture.md, "Validation declared in
# the contract"): schemathesis, pinned with hashes in
# tools/requirements-conformance.txt, in a venv under .cache/; the test
# services/local TestConformance runs it against every service's
# /openapi.json on the whole platform (in make test too) and keeps its
# reports in .cache/conformance/.
CONFORMANCE_VENV := .cache/venv-conformance

$(CONFORMANCE_VENV)/.installed: tools/requirements-conformance.txt
	rm -rf $(CONFORMANCE_VENV)
	$(PYTHON) -m venv $(CONFORMANCE_VENV)
	$(CONFORMANCE_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $<
	@touch $@

.PHONY: conformance-venv
conformance-venv: $(CONFORMANCE_VENV)/.installed ## install schemathesis (pinned) into .cache/venv-conformance; make test does

.PHONY: conformance
conformance: ort conformance-venv ## schemathesis, every check, against every service's /openapi.json on a live platform; reports in .cache/conformance/
	go test -count=1 -v -run '^TestConformance$$' ./services/local/

.PHONY: test
test: ort ui check-generate lint check-modules vulncheck validate conformance-venv ## the whole test suite (real Redis/Kafka from the environment, else embedded)
	GOWORK=off go test -C tools -count=1 ./protoc-gen-openapiv2-protovalidate/
	go test -count=1 $(GO_TEST_FLAGS) $(PKGS)

.PHONY: test-short
test-short: ort ## quick tests only (testing.Short)
	go test -short $(PKGS)

# The store's benchmarks take 1000 samples: the item read's budget is a
# ratio of two p99s, and the p99 of 300 is their third-slowest.
.PHONY: bench
bench: ort ## every benchmark (the ranking ones score the trainer's model, trained first), then the budget table (also in .cache/bench/)
	@mkdir -p .cache/bench
	go test -run '^$$' -bench . -benchtime 1x -timeout 30m ./services/featurecompute/... ./services/trainer/... | tee .cache/bench/raw.txt
	go run ./services/trainer/cmd/trainer -model-root .cache/bench/models -version shipped -if-empty
	RECSYS_BENCH_MODEL=$(CURDIR)/.cache/bench/models/ctr/shipped \
	  go test -run '^$$' -bench . -benchtime 300x -timeout 30m ./libs/featureservice/... ./libs/retrieval/... ./services/ranking/... | tee -a .cache/bench/raw.txt
	go test -run '^$$' -bench . -benchtime 1000x -timeout 30m ./libs/featurestore/... | tee -a .cache/bench/raw.txt
	go test -run '^$$' -bench ClickToVisible -benchtime 200x ./services/featurecompute/... | tee -a .cache/bench/raw.txt
	go run ./libs/benchreport/cmd/benchreport -o .cache/bench/table-$$(date -u +%Y%m%dT%H%M%SZ).txt < .cache/bench/raw.txt

# The load test of the live stack (README "Load test"): the launcher with
# the demo world and its simulated traffic, rate limits off, loaded by
# deploy/loadtest (ghz's runner over gRPC, vegeta's attacker over REST and
# gRPC-Web; its own module, outside the workspace). REDIS and KAFKA name a
# real Redis and Kafka (make deps-up starts both); without them the
# embedded ones serve and the budgets are relaxed 1.5x. A missed budget
# fails the target.
LOADTEST := .cache/bin/loadtest
$(LOADTEST): deploy/loadtest/go.mod deploy/loadtest/go.sum deploy/loadtest/main.go
	@mkdir -p $(@D)
	GOWORK=off go build -C deploy/loadtest -o $(CURDIR)/$@ .

REDIS ?=
KAFKA ?=
.PHONY: loadtest
loadtest: ort ui $(LOADTEST) ## load Recommend over gRPC, REST and gRPC-Web on the live stack, beside bare health checks (REDIS=127.0.0.1:6379 KAFKA=127.0.0.1:9092 after make deps-up; else embedded); results in .cache/bench/
	go build -o .cache/bin/recsys ./services/local/cmd/recsys
	$(LOADTEST) -label $(if $(REDIS),redis,embedded) -slack $(if $(REDIS),1,1.5) $(LOADTEST_ARGS) -- \
	  .cache/bin/recsys $(if $(REDIS),-redis=$(REDIS)) $(if $(KAFKA),-kafka=$(KAFKA)) \
	  -ranking.model-root=.cache/loadtest/models -ranking.rate-limit=0 -web.rate-limit=0 $(ARGS)

.PHONY: run
run: ort ui ## the whole platform in one process; web UI and edge on http://localhost:8080
	go run ./services/local/cmd/recsys $(ARGS)

DATA ?=
.PHONY: eval
eval: ## evaluate the served pipeline on DATA (a folder of MovieLens-format files) over the whole catalogue, beside popularity, item-kNN and EASE; publishes nothing
	@if [ -z "$(DATA)" ]; then echo "usage: make eval DATA=<folder with u.data + u.item, ratings.dat + movies.dat, or ratings.csv + movies.csv>"; exit 2; fi
	go run ./services/trainer/cmd/trainer -movielens "$(DATA)" -eval-only $(ARGS)

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
canary-weight: ## set the treatment arm's share in deploy/base/experiment.json (make canary-weight WEIGHT=25), then kubectl apply -k deploy/overlays/dev
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
deps-up: ## start a real Redis (:6379) and Kafka (:9092) on loopback, as CI does, and their secured twins (TLS+ACL Redis :6380, Kafka SASL_SSL :9094)
	@mkdir -p .cache/deps
	redis-server --port 6379 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes \
	  --pidfile $(CURDIR)/.cache/deps/redis.pid --dir $(CURDIR)/.cache/deps
	.ci/secure/start.sh $(CURDIR)/.cache/deps/secure 6380 9094
	. $(CURDIR)/.cache/deps/secure/env && .ci/kafka/start.sh $(CURDIR)/.cache/deps/kafka 9092
	@echo "export RECSYS_TEST_REDIS_ADDR=127.0.0.1:6379 RECSYS_TEST_KAFKA_BROKERS=127.0.0.1:9092; . $(CURDIR)/.cache/deps/secure/env"

.PHONY: deps-down
deps-down: ## stop what deps-up started
	-.ci/kafka/stop.sh $(CURDIR)/.cache/deps/kafka
	-[ -f .cache/deps/redis.pid ] && kill $$(cat .cache/deps/redis.pid)
	-[ -f .cache/deps/secure/redis-tls.pid ] && kill $$(cat .cache/deps/secure/redis-tls.pid)

.PHONY: clean
clean: ## remove build outputs and caches (not node_modules)
	rm -rf bin .cache certs
