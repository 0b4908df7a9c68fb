# Run `make help` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /usr/bin/env bash

CONTROL_PLANE_BIN := bin/control-plane
OPA := bin/opa
BUNDLE := policies/bundle
# The e2e suite starts a whole control plane: allow it more than go test's default 10 minutes.
E2E_TIMEOUT ?= 30m

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build bin/sparkplace.
	go build -o bin/sparkplace ./cmd/sparkplace

.PHONY: generate
generate: ## Regenerate deep-copy code and CRD manifests (manifests/base/jobs/crds) from jobs/api with controller-gen.
	hack/generate.sh

.PHONY: lint
lint: lint-rego ## go vet, gofmt must have nothing to change, generated files must be up to date, lint-rego, and helm lint --strict of the chart (Helm's Go SDK).
	go vet ./...
	hack/generate.sh --verify
	go run ./hack/helmlint charts/sparkplace
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [[ -n "$$unformatted" ]]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

.PHONY: lint-rego
lint-rego: opa ## OPA's own CLI on the policy bundle exactly as it lies: opa fmt, opa check --strict with the schemas, opa test, opa build.
	@$(OPA) fmt --fail --list $(BUNDLE) || { echo "opa fmt needed on the files above: run $(OPA) fmt -w $(BUNDLE)"; exit 1; }
	@$(OPA) check --strict -s policies/schemas $(BUNDLE) || { echo "an undefined input or config ref after a new field? regenerate the schemas: go test ./policies -run TestSchemasAreCurrent -update"; exit 1; }
	$(OPA) test $(BUNDLE)
	$(OPA) build -b $(BUNDLE) -o /dev/null

.PHONY: opa
opa: ## Build (or link from the per-user cache) bin/opa at the OPA version go.mod pins.
	@hack/opa.sh $(OPA)

.PHONY: test
test: lint control-plane build ## Everything: Rego, unit, golden, fuzz-seed and end-to-end tests (builds what is missing).
	bin/sparkplace policy test
	go test -count=1 -timeout $(E2E_TIMEOUT) ./...

.PHONY: unit
unit: opa ## Unit tests only (no control plane).
	go test $$(go list ./... | grep -v /e2e)

.PHONY: bench
bench: ## In-process admission benchmark: cache hits and misses of Spark-shaped pods, each interleaved with a no-op handler; median ratios (COUNT=10, BENCHTIME=2000x).
	hack/bench-ratio.sh $${COUNT:-10}

.PHONY: bench-zones
bench-zones: control-plane ## The zone simulation and spot reclaim drill at full scale (README "Zone choice"); tables in bin/bench-zones.md.
	@mkdir -p bin
	go test -count=1 -timeout 30m ./e2e/zonebench -run TestZones -v -args -zonebench.full -zonebench.out $(CURDIR)/bin/bench-zones.md

.PHONY: bench-cluster
bench-cluster: control-plane ## Measure through the real API server (SCALE=full|small, PARTS=create,burst,sched,memory): a run of all parts writes e2e/bench/report/ and the README's report, one of some parts only its log.
	SPARKPLACE_BENCH_SCALE=$${SCALE:-full} SPARKPLACE_BENCH_PARTS=$${PARTS:-} \
	SPARKPLACE_BENCH_REPORT=$(CURDIR)/e2e/bench/report SPARKPLACE_BENCH_README=$(CURDIR)/README.md \
	  go test -count=1 -timeout 120m -run '^TestCluster$$' -v ./e2e/bench

.PHONY: bench-cache
bench-cache: ## Heap of the webhook's informer caches for 1,000 Spark pods and 5,000 EKS nodes, stripped and not.
	go test ./cluster -run '^$$' -bench CacheMemory -benchtime 1x

.PHONY: fuzz
fuzz: ## Fuzz the admission handler for FUZZTIME (default 1m).
	go test ./webhook -run '^$$' -fuzz FuzzAdmission -fuzztime $${FUZZTIME:-1m}

.PHONY: control-plane
control-plane: ## Build (or link from the per-user cache) etcd, kube-apiserver, scheduler, controller-manager, kwok.
	@hack/build-control-plane.sh $(CONTROL_PLANE_BIN)

.PHONY: e2e
e2e: control-plane ## End-to-end tests against a real local control plane (builds what is missing).
	go test -count=1 -timeout $(E2E_TIMEOUT) ./e2e/...

.PHONY: demo
demo: control-plane build ## Start a local cluster with the webhook, run a sample Spark app, print where its pods landed.
	@go build -o bin/sparkplace-demo ./e2e/cmd/demo
	@bin/sparkplace-demo up

.PHONY: demo-down
demo-down: ## Stop the demo cluster started by `make demo`.
	@if [[ -x bin/sparkplace-demo ]]; then bin/sparkplace-demo down; else go run ./e2e/cmd/demo down; fi
