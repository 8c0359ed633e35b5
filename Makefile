# Personify — two commands: `make demo` (install + run the demo) and `make test` (install + all checks).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test dev lint typecheck imports unit serve clean help browser-deps

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

demo: $(STAMP)
	$(BIN)/personify demo

serve: $(STAMP)
	$(BIN)/personify serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

# The dashboard's end-to-end tests drive the OS Chromium (never a downloaded browser).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Chromium from the OS packages for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck imports browser-deps unit

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
