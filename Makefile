# SOL-Bot developer targets. Each target creates .venv and installs on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run demo test lint typecheck fmt bench clean pipeline screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)  ## the bot: paper trading on the built-in synthetic market, API on 127.0.0.1:3001
	$(BIN)/solbot run --home .

demo: $(STAMP)  ## backtest the Donchian breakout on the synthetic market and write a report
	$(BIN)/solbot demo --out runs/demo

test: $(STAMP)  ## lint, types and the whole test suite
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

pipeline: $(STAMP)  ## rehearse the runbook's deploy flow locally (BREAK=step to sabotage one)
	$(BIN)/solbot rehearse $(if $(BREAK),--break $(BREAK))

screenshots: $(STAMP)  ## refresh docs/dashboard-{desktop,phone,symbols}.png from running paper bots
	DASHBOARD_SCREENSHOTS=docs $(BIN)/pytest -q tests/integration/test_dashboard_browser.py -k "kill_button or symbol_selector"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)  ## benchmarks (backtest_speed creates .venv-bench for the reference frameworks)
	$(BIN)/python bench/backtest_speed.py
	$(BIN)/python bench/service_latency.py
	$(BIN)/python bench/api_load.py

clean:
	rm -rf $(VENV) .venv-bench runs .pytest_cache .mypy_cache .ruff_cache
