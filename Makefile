# rule-engine: the two commands a new machine needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/rules_db
export REDIS_URL ?= redis://127.0.0.1:6379/0
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)

.PHONY: help prereqs ci tour-check fresh-check fuzz-api fuzz chaos chaos-ci mutants services build migrate run test check-deploy fmt fmt-check lint bench bench-worker bench-api bench-history cluster cluster-stop test-cluster clean-test-dbs

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

prereqs: ## a C compiler, python3 with venv, curl (installed with apt-get when absent)
	@scripts/prereqs.sh

services: prereqs ## PostgreSQL and Redis up (installed and started when absent), rules_db created
	@scripts/services.sh

build: prereqs ## build every binary
	$(CARGO) build --workspace --bins

migrate: services build ## apply pending migrations to DATABASE_URL
	$(TARGET_DIR)/debug/rules-migrate

run: migrate ## services, migrations, then the API and a worker in the foreground
	@scripts/run.sh

test: services build ## unit, property and end-to-end tests, the console in Chromium, deploy checks (CI adds fmt and clippy: make ci)
	@scripts/prereqs.sh --browser
	scripts/check-deploy.sh
	$(CARGO) test --workspace --doc --quiet
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --no-fail-fast; \
	fi

ci: ## what CI runs: fmt check, clippy -D warnings, make test (.ci/run)
	bash .ci/run

tour-check: ## run the README's quick tour against a running `make run` and compare the answers
	python3 scripts/check_tour.py

fresh-check: ## on a new minimal Debian root without network: make run, the tour, make test
	scripts/fresh-check.sh

fuzz-api: services build ## schemathesis against the OpenAPI document (FUZZ_EXAMPLES per operation, default 100)
	scripts/fuzz-api.sh

FUZZ_SECONDS ?= 60
FUZZ_TARGETS := rule event template
fuzz: ## cargo fuzz on rules-core: rule JSON, stream fields, templates (FUZZ_SECONDS each, default 60)
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd crates/rules-core/fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		CARGO_TARGET_DIR=$(abspath $(TARGET_DIR))/fuzz $(CARGO) fuzz run --sanitizer none -O $$t corpus/$$t seeds/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 || exit 1; \
	done

chaos: services ## the fault suite, every scenario at full size (own PostgreSQL and Redis, release binaries; CHAOS_ARGS)
	$(CARGO) build --release -p rules-api -p rules-worker -p rules-e2e --bins
	$(TARGET_DIR)/release/rules-chaos $(CHAOS_ARGS)

chaos-ci: services build ## the fault scenarios CI runs, smaller, on the debug binaries
	$(TARGET_DIR)/debug/rules-chaos --ci $(CHAOS_ARGS)

# Not with CARGO_TARGET_DIR: cargo-mutants builds a copy of the tree, and a shared
# target directory would hand it the unmutated build (same package, fresh artifacts).
MUTANTS_CORE ?= index simulate path condition validate template compiled event
MUTANTS_STORE ?= gate/mod gate/destination
mutants: ## cargo-mutants on rules-core's matching code and the gate's Rust side (MUTANTS_CORE, MUTANTS_STORE: files without .rs)
	@command -v cargo-mutants >/dev/null || $(CARGO) install --locked cargo-mutants
	$(if $(strip $(MUTANTS_CORE)),env -u CARGO_TARGET_DIR $(CARGO) mutants -p rules-core --test-tool nextest --timeout 120 -o $(TARGET_DIR)/mutants \
		$(foreach f,$(MUTANTS_CORE),--file crates/rules-core/src/$(f).rs))
	$(if $(strip $(MUTANTS_STORE)),env -u CARGO_TARGET_DIR $(CARGO) mutants -p rules-store --test-tool nextest --timeout 300 -o $(TARGET_DIR)/mutants-store \
		$(foreach f,$(MUTANTS_STORE),--file crates/rules-store/src/$(f).rs))

fmt: ## format the code
	$(CARGO) fmt --all

fmt-check: ## check formatting
	$(CARGO) fmt --all -- --check

lint: ## clippy, warnings are errors
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

check-deploy: build ## validate deploy/ (manifests, KEDA, compose, entrypoints)
	scripts/check-deploy.sh

bench: ## criterion benchmarks of the matcher
	$(CARGO) bench -p rules-core --features workload --bench matching

bench-worker: services ## drain rate, latency and memory of a real worker (rules-bench)
	$(CARGO) build --release -p rules-bench -p rules-worker
	$(TARGET_DIR)/release/rules-bench drain --event-count 1000000
	$(TARGET_DIR)/release/rules-bench drain --event-count 1000000 --workers 1,2,4
	$(TARGET_DIR)/release/rules-bench latency --rate 5000 --seconds 30
	$(TARGET_DIR)/release/rules-bench rss --rule-count 100000 --livestreams 10000

bench-instructions: services ## the worker's instructions per event in a drain, by callgrind: repeatable where events/s are not (WORKER_BIN, SMALL, LARGE, KEEP)
	$(CARGO) build --release -p rules-bench -p rules-worker
	CARGO_TARGET_DIR=$(TARGET_DIR) scripts/worker-instructions.sh

bench-api: services ## load benchmark of the API with 100,000 rules (wrk)
	CONNECTIONS=6 DURATION=10 scripts/bench-api.sh

cluster: prereqs ## a local Redis Cluster: 3 masters on 127.0.0.1:7000-7002 (MASTERS, REPLICAS, BASE_PORT, CLUSTER_DIR)
	@scripts/cluster.sh start

cluster-stop: ## stops the cluster `make cluster` started and removes its directory
	@scripts/cluster.sh stop

test-cluster: services build ## the worker's and api's end-to-end suites on a Redis Cluster of their own (scripts/test-cluster.sh; CI runs it)
	@scripts/prereqs.sh --browser
	scripts/test-cluster.sh

bench-history: services ## executions and analytics endpoints on 50M executions over 90 days (wrk)
	scripts/bench-history.sh

clean-test-dbs: ## drop databases left by interrupted test runs
	@psql "$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -Atc \
		"SELECT datname FROM pg_database WHERE datname LIKE 'rules_test_%'" | \
		while read -r db; do psql "$${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" -qc "DROP DATABASE \"$$db\" WITH (FORCE)"; done
