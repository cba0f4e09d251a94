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
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -e .
	$(BIN)/python -m compileall -q pawatch scraper storage config  # start-up: no recompiling
	touch $@

# The pawatch[demo] extra (aiosmtpd: the demo's and the tests' local SMTP server).
$(DEMO_STAMP): requirements-demo.lock $(RUNTIME_STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements-demo.lock
	touch $@

$(DEV_STAMP): requirements-dev.lock $(DEMO_STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements-dev.lock
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
	$(BIN)/python -m compileall -q pawatch scraper storage config  # edited since install
	$(BIN)/python bench/cycle.py
	$(BIN)/python bench/parsers.py

clean:
	rm -rf $(VENV) build *.egg-info demo-output

# Regenerate the lock files, with every file's hash, from pyproject.toml (needs PyPI): the
# pinned versions are kept unless pyproject.toml needs others (`make lock UPGRADE=1` upgrades).
# Runtime; the [demo] extra's additions; everything for development (tests, linters), less
# pip (already in the venv) and pawatch itself (installed editable).
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" .lockvenv/bin/pip-compile -q --generate-hashes \
	--strip-extras --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade)
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install -q --disable-pip-version-check pip-tools==7.6.2
	$(PIP_COMPILE) -o requirements.lock pyproject.toml
	$(PYTHON) -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["demo"]))' \
		| $(PIP_COMPILE) -c requirements.lock -o requirements-demo.lock -
	$(PIP_COMPILE) --extra dev --unsafe-package pip --unsafe-package pawatch -o requirements-dev.lock pyproject.toml
	rm -rf .lockvenv
