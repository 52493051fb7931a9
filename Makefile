# The single entry point: `make run` (demo + Dagster UI) and `make test` (whole suite);
# `make test-fast` and `make lint` for quick feedback.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_LAKE := data/lake
DEMO_START := 2026-01-01
DEMO_DAYS := 14
HOST := 127.0.0.1
PORT := 3000

export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: install java chromium postgresql run demo-lake test test-fast lint bench clean prod prod-status prod-stop

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
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

demo-lake: install
	@if [ ! -d $(DEMO_LAKE) ]; then \
		echo "generating a $(DEMO_DAYS)-day demo lake in $(DEMO_LAKE)"; \
		$(BIN)/adrecon-simulate --lake $(DEMO_LAKE) --serving-db data/serving.duckdb \
			--start $(DEMO_START) --days $(DEMO_DAYS) --emissions-per-day 200000 --seed 7; \
	fi

# The sensors look back far enough to reach the demo's days (they are months old), so the
# readiness sensor reconciles them one by one, oldest first, as it would yesterday's lake.
DEMO_LOOKBACK = $(shell echo $$(( ($$(date -u +%s) - $$(date -u -d $(DEMO_START) +%s)) / 86400 + 1 )))

run: install demo-lake
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml
	ADRECON_START_DATE=$(DEMO_START) \
	ADRECON_LATE_DATA_LOOKBACK_DAYS=$${ADRECON_LATE_DATA_LOOKBACK_DAYS:-$(DEMO_LOOKBACK)} \
		$(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

test: install chromium postgresql
	$(BIN)/pytest -q

# Production (README "Production"): code server, daemon and webserver as separate processes under
# supervisor, Dagster's storage and the serving store on PostgreSQL. `make prod` runs in the
# foreground (Ctrl-C stops all three); from another shell `make prod-status`, `make prod-stop`.
PROD_DIR ?= $(CURDIR)/.prod
PROD_HOME ?= $(PROD_DIR)/dagster_home
CODE_SERVER_PORT ?= 4266
PROD_ENV = DAGSTER_HOME=$(PROD_HOME) ADRECON_PROD_DIR=$(PROD_DIR) ADRECON_BIN=$(CURDIR)/$(BIN) \
	ADRECON_DEPLOY=$(CURDIR)/deploy ADRECON_CODE_SERVER_PORT=$(CODE_SERVER_PORT) \
	ADRECON_WEBSERVER_HOST=$(HOST) ADRECON_WEBSERVER_PORT=$(PORT)

prod: install
	@test -n "$$ADRECON_DAGSTER_PG_URL" || { echo "set ADRECON_DAGSTER_PG_URL (Dagster's storage)"; exit 2; }
	@test -n "$$ADRECON_SERVING_URL" || echo "ADRECON_SERVING_URL unset: serving from $${ADRECON_SERVING_DB:-data/serving.duckdb}"
	mkdir -p $(PROD_HOME) && cp deploy/dagster.yaml $(PROD_HOME)/dagster.yaml
	$(PROD_ENV) $(BIN)/supervisord -c deploy/supervisord.conf

prod-status:
	$(PROD_ENV) $(BIN)/supervisorctl -c deploy/supervisord.conf status

prod-stop:
	$(PROD_ENV) $(BIN)/supervisorctl -c deploy/supervisord.conf shutdown

# The quick loop while editing: everything but Spark, the browser and the dev-server/slow
# end-to-end tests (no Java or Chromium needed), on both cores (pytest-xdist); `make test`
# stays the complete check.
FAST_TESTS := not spark and not browser and not slow
test-fast: $(STAMP)
	$(BIN)/pytest -q -n 2 -m "$(FAST_TESTS)"

lint: install
	$(BIN)/ruff check adrecon_assets adrecon_simulate adrecon_assets_tests benchmarks
	$(BIN)/ruff format --check adrecon_assets adrecon_simulate adrecon_assets_tests benchmarks
	$(BIN)/mypy

# Issue 7's benchmark: simulates 1/4, 1/2 and 1x of a 20M-row day once into benchmarks/cache/,
# then times Polars, Polars through Dagster, Spark and the DuckDB SQL job (benchmarks/RESULTS.md).
# BENCH_ARGS=--quick smoke-tests the harness on a tiny day.
bench: install
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data/warehouse
