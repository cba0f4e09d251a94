# Quick start: `make demo` (set up, run the demo) and `make test` (set up, run the tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEMO_STAMP    := $(VENV)/.demo-installed
DEV_STAMP     := $(VENV)/.dev-installed

.PHONY: demo test lint typecheck check bench clean lock

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME_STAMP): requirements.lock pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m compileall -q pawatch scraper storage config  # start-up: no recompiling
	touch $@

# The pawatch[demo] extra (aiosmtpd: the demo's and the tests' local SMTP server).
$(DEMO_STAMP): requirements-demo.lock $(RUNTIME_STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-demo.lock
	touch $@

$(DEV_STAMP): requirements-dev.lock $(DEMO_STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.lock
	touch $@

demo: $(DEMO_STAMP)  ## set up and run the offline demo
	$(BIN)/pawatch demo

test: $(DEV_STAMP)  ## set up and run the test suite
	$(BIN)/python -m pytest -q

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy -p pawatch

check: lint typecheck test

bench: $(DEV_STAMP)
	$(BIN)/python bench/cycle.py
	$(BIN)/python bench/parsers.py

clean:
	rm -rf $(VENV) build *.egg-info demo-output

# Regenerate the pinned lock files from pyproject.toml (needs network access to PyPI).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install -q . && .lockvenv/bin/pip freeze --exclude pawatch > requirements.lock
	.lockvenv/bin/pip install -q '.[demo]' && .lockvenv/bin/pip freeze --exclude pawatch | grep -vxFf requirements.lock > requirements-demo.lock
	.lockvenv/bin/pip install -q '.[dev]' && .lockvenv/bin/pip freeze --all --exclude pawatch --exclude pip > requirements-dev.lock
	rm -rf .lockvenv
