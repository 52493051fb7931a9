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

.PHONY: install java chromium run demo-lake test test-fast lint bench clean

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

test: install chromium
	$(BIN)/pytest -q

# The quick loop while editing: everything but Spark, the browser and the dev-server/slow
# end-to-end tests (no Java or Chromium needed); `make test` stays the complete check.
FAST_TESTS := not spark and not browser and not slow
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "$(FAST_TESTS)"

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
