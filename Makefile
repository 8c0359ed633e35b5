# Personify — two commands: `make demo` (install + run the demo) and `make test` (install + all checks).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: sdk demo test dev lint typecheck imports unit serve clean help browser-deps any-hour

help:
	@echo "make demo   - install and run the engine on SQLite with the bundled sample data"
	@echo "make test   - install and run lint, type checks, layering checks and the test suite"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(PIP) install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

dev: $(STAMP)

# The web snippet has one source, sdk/js/personify.js (the npm package); the API serves a copy
# from the Python package (a test checks the two are identical).
sdk:
	cp sdk/js/personify.js src/personify/api/static/personify.js

demo: $(STAMP)
	$(BIN)/personify demo

serve: $(STAMP)
	$(BIN)/personify serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy benchmarks

imports: $(STAMP)
	$(BIN)/lint-imports

# The dashboard's end-to-end tests drive the OS Chromium (never a downloaded browser).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Chromium from the OS packages for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

# Tests run on every core (pytest-xdist; PYTEST_WORKERS=0 runs them in one process). A file's
# tests stay on one worker, so module-scoped fixtures (a browser, a Spark session) start once.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

# Time-of-day rules (quiet hours, local days, journeys) must not make the suite depend on when
# it runs: the messaging tests run again with the wall clock at 03:00 and at 23:00 UTC
# (PERSONIFY_TEST_WALL_CLOCK, see tests/conftest.py).
ANY_HOUR_TESTS := tests/cli tests/integration tests/api/test_messaging_api.py tests/api/test_message_tests.py tests/unit/messaging
any-hour: $(STAMP)
	@for at in 03:00 23:00; do \
	  echo "messaging tests with the wall clock at $$at UTC"; \
	  PERSONIFY_TEST_WALL_CLOCK=$$at $(BIN)/pytest -q -p no:cacheprovider $(PYTEST_PARALLEL) \
	    $(ANY_HOUR_TESTS) \
	    -m "not real_clock" -k "messag or campaign or worker or journey or outbox" || exit 1; \
	done

unit: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_PARALLEL)

test: lint typecheck imports browser-deps unit any-hour

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
