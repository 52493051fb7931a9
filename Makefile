# The single entry point: `make run` (demo + Dagster UI) and `make test` (whole suite);
# `make test-fast` and `make lint` for quick feedback.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The demo: the DEMO_DAYS days ending yesterday (UTC), 200k emission rows a day, in DEMO_DATA.
DEMO_DATA ?= data
DEMO_LAKE := $(DEMO_DATA)/lake
DEMO_DAYS := 14
DEMO_START = $(shell date -u -d "$(DEMO_DAYS) days ago" +%F)
# 3x the default click-through rates: every placement gets valid clicks from the first demo day
# on, so the demo's checks pass (a day with a placement without buyers is a real finding).
DEMO_SIMULATION := --emissions-per-day 200000 --seed 7 --ctr-scale 3
# Dagster's one-time notice on a new instance (its run-retry daemon starts reading events from
# now on): not a problem, so the demo terminal leaves it out.
FIRST_START_NOTICE := EventLogConsumerDaemon - .*No cursor for event type
# dagster dev's notice that ./dagster.yaml is not read: make run copies it into DAGSTER_HOME.
COPIED_YAML_NOTICE := Found a dagster instance configuration value (dagster.yaml) in the current folder
HOST ?= 127.0.0.1
PORT ?= 3000

export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install java chromium postgresql nginx run demo demo-lake screenshots test test-fast lint bench bench-catch-up clean prod prod-status prod-stop

# uv installs the same pyproject.toml as pip would, from its cache when the cache holds every
# package the ranges allow (seconds; pip re-resolved against PyPI and rebuilt nothing faster
# than ~2 min), else from PyPI (a fresh machine: ~1-2 min, PySpark is built from its sdist).
# --compile-bytecode writes every package's .pyc once: where PYTHONDONTWRITEBYTECODE is set (as
# on CI machines), Python would otherwise compile Dagster from source in every process it starts
# (every run, code server and CLI command: 2.5 instead of 1.0 CPU s to load the definitions).
UV := $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev]"
$(STAMP): pyproject.toml
	@echo "==> creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --progress-bar off "uv>=0.9,<1"
	@echo "==> installing adrecon and its dependencies (Dagster, Polars, PySpark, ...) with uv"
	$(UV) --offline 2>/dev/null || $(UV)
	@echo "==> installed"
	touch $(STAMP)

install: $(STAMP) java

# PySpark 4 needs Java 17+; install Debian's headless JRE where it is missing or too old.
java:
	@if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then \
		echo "installing openjdk-17-jre-headless for Spark"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	fi

# Browser tests drive Debian's chromium (Playwright's own browser download does not work here).
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# The tests start throwaway PostgreSQL servers from Debian's binaries (adrecon_assets_tests/postgres.py).
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing postgresql for the PostgreSQL tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	fi

# docs/security.md's reverse-proxy example is checked with `nginx -t` (test_security_docs.py).
nginx:
	@if ! command -v nginx >/dev/null 2>&1 && ! test -x /usr/sbin/nginx; then \
		echo "installing nginx to check the reverse-proxy example"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; \
	fi

# Writes the days the lake lacks (all of them the first time): a lake made days ago is extended
# up to yesterday, as the event persister would have, with the online layer's rows of those days.
demo-lake:
	@echo "==> demo lake $(DEMO_LAKE): the $(DEMO_DAYS) days ending yesterday, from $(DEMO_START)"
	@$(BIN)/adrecon-simulate --lake $(DEMO_LAKE) --serving-db $(DEMO_DATA)/serving.duckdb \
		--start $(DEMO_START) --days $(DEMO_DAYS) $(DEMO_SIMULATION) --extend

# `make run` = install + `make demo`. The partitions start at the lake's first day; the sensors
# reconcile the closed days in one catch-up run. dg dev logs at WARNING: the terminal shows what
# needs attention (the full daemon log is in the UI), after the banner that says where to click.
run: install
	@$(MAKE) --no-print-directory demo

demo: demo-lake
	@mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	@echo "==> starting Dagster (dg dev) on http://$(HOST):$(PORT) with DAGSTER_HOME=$(DAGSTER_HOME)"
	@$(BIN)/python -m adrecon_simulate.demo_banner --url http://$(HOST):$(PORT) --lake $(DEMO_LAKE) &
	@export ADRECON_START_DATE=$$(ls $(DEMO_LAKE)/emissions | head -1 | cut -d= -f2) \
		ADRECON_LAKE_ROOT=$(DEMO_LAKE) ADRECON_WAREHOUSE=$(DEMO_DATA)/warehouse \
		ADRECON_SERVING_DB=$(DEMO_DATA)/serving.duckdb VIRTUAL_ENV=$(abspath $(VENV)); \
		set -o pipefail; $(BIN)/dg dev --no-check-yaml --log-level warning -h $(HOST) -p $(PORT) 2>&1 \
		| grep --line-buffered -v -e "$(FIRST_START_NOTICE)" -e "$(COPIED_YAML_NOTICE)"

# The README's "First ten minutes" pictures, taken by the browser tests: three on a fresh
# `make demo`, the backfill by the UI tests' own backfill.
screenshots: install chromium
	ADRECON_README_SCREENSHOTS=1 $(BIN)/pytest -q adrecon_assets_tests/browser

# The whole suite in three pytest runs, each on two pytest-xdist workers (--dist loadfile keeps a
# file's tests and module fixtures on one worker, spark_worker.py puts every Spark test on one):
# the tests marked `serial` (production faults, dagster dev runs, Spark clusters: they mostly
# wait on daemons and servers, so they share no worker, only the machine) beside every other
# test (CPU-bound), then the `demo` tests alone (`make demo`'s catch-up is timed: 3 minutes).
# Each run must pass: pytest's exit 5 (no test collected) fails the target too, so a marker
# that selects nothing cannot turn CI green. The serial run's report follows the parallel one's.
PARALLEL := -n 2 --dist loadfile
SERIAL_LOG := test-artifacts/serial-tests.log
test: install chromium postgresql nginx
	@mkdir -p $(dir $(SERIAL_LOG))
	@echo "==> the serial tests run beside the others, two at a time; their report follows ($(SERIAL_LOG))"
	@$(BIN)/pytest -q $(PARALLEL) -m "serial and not demo" $(PYTEST_ARGS) > $(SERIAL_LOG) 2>&1 & serial=$$!; \
	$(BIN)/pytest -q $(PARALLEL) -m "not serial and not demo" $(PYTEST_ARGS); parallel=$$?; \
	wait $$serial; serial=$$?; echo "==> the serial tests:"; cat $(SERIAL_LOG); \
	test $$parallel -eq 0 && test $$serial -eq 0
	@echo "==> the demo tests, alone"
	$(BIN)/pytest -q -m demo $(PYTEST_ARGS)

# Production (docs/production.md): code server, daemon, webserver and adrecon-metrics (and, with
# ADRECON_READONLY_WEBSERVER_PORT, a read-only webserver) as separate processes under
# supervisor, Dagster's storage and the serving store on PostgreSQL. `make prod` runs in the
# foreground (Ctrl-C stops them all); from another shell `make prod-status`, `make prod-stop`.
PROD_DIR ?= $(CURDIR)/.prod
PROD_HOME ?= $(PROD_DIR)/dagster_home
CODE_SERVER_PORT ?= 4266
# The operator UI listens on loopback unless told otherwise (Dagster has no log-in: put it
# behind an authenticating proxy, docs/security.md); with ADRECON_READONLY_WEBSERVER_PORT set, a
# read-only UI for analysts also listens on ADRECON_READONLY_WEBSERVER_HOST (all interfaces).
ADRECON_WEBSERVER_HOST ?= $(HOST)
ADRECON_WEBSERVER_PORT ?= $(PORT)
ADRECON_READONLY_WEBSERVER_HOST ?= 0.0.0.0
ADRECON_READONLY_WEBSERVER_PORT ?=
PROD_ENV = DAGSTER_HOME=$(PROD_HOME) ADRECON_PROD_DIR=$(PROD_DIR) ADRECON_BIN=$(CURDIR)/$(BIN) \
	ADRECON_DEPLOY=$(CURDIR)/deploy ADRECON_CODE_SERVER_PORT=$(CODE_SERVER_PORT) \
	ADRECON_WEBSERVER_HOST=$(ADRECON_WEBSERVER_HOST) ADRECON_WEBSERVER_PORT=$(ADRECON_WEBSERVER_PORT) \
	ADRECON_READONLY_WEBSERVER_HOST=$(ADRECON_READONLY_WEBSERVER_HOST) \
	ADRECON_READONLY_WEBSERVER_PORT=$(or $(ADRECON_READONLY_WEBSERVER_PORT),0) \
	ADRECON_READONLY_WEBSERVER_AUTOSTART=$(if $(ADRECON_READONLY_WEBSERVER_PORT),true,false)

prod: install
	@test -n "$$ADRECON_DAGSTER_PG_URL" || { echo "set ADRECON_DAGSTER_PG_URL (Dagster's storage)"; exit 2; }
	@test -n "$$ADRECON_SERVING_URL" || echo "ADRECON_SERVING_URL unset: serving from $${ADRECON_SERVING_DB:-data/serving.duckdb}"
	@# Least privilege (docs/security.md): say whether the serving login holds adrecon_offline only.
	@test -z "$$ADRECON_SERVING_URL" || $(BIN)/adrecon-serving-roles --check --url "$$ADRECON_SERVING_URL" || true
	mkdir -p $(PROD_HOME) && cp deploy/dagster.yaml $(PROD_HOME)/dagster.yaml
	$(PROD_ENV) $(BIN)/supervisord -c deploy/supervisord.conf

prod-status:
	$(PROD_ENV) $(BIN)/supervisorctl -c deploy/supervisord.conf status

prod-stop:
	$(PROD_ENV) $(BIN)/supervisorctl -c deploy/supervisord.conf shutdown

# The quick loop while editing: everything but Spark, the browser and the dev-server/slow
# end-to-end tests (no Java or Chromium needed), on both cores (pytest-xdist); `make test`
# stays the complete check.
FAST_TESTS := not spark and not browser and not slow and not serial
test-fast: $(STAMP) postgresql
	$(BIN)/pytest -q $(PARALLEL) -m "$(FAST_TESTS)" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check adrecon_assets adrecon_simulate adrecon_assets_tests benchmarks
	$(BIN)/ruff format --check adrecon_assets adrecon_simulate adrecon_assets_tests benchmarks
	$(BIN)/mypy

# Issues 7 and 15's benchmark: simulates 5M, 20M and 100M-row days once into benchmarks/cache/
# (progress bar), then times Polars, Polars through Dagster (in process and the whole CLI run),
# Spark (own JVM, and a warm Spark Connect server) and the DuckDB SQL job; writes
# benchmarks/RESULTS.md and benchmarks/scaling.png. Heavy (the 100M day): run it on a quiet
# machine. BENCH_ARGS=--quick smoke-tests the harness on a tiny day.
bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Issue 15 target 2: re-reconciling 30 demo days with a reconcile_days backfill under dagster dev
# against a do-nothing daily backfill of one run per day (benchmarks/CATCH_UP.md).
bench-catch-up: install
	$(BIN)/python -m benchmarks.catch_up

clean:
	rm -rf $(VENV) data/warehouse
