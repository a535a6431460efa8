# The two commands: `make run` and `make test`. Both set everything up first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean browser-deps

install: $(STAMP)

$(STAMP): setup.cfg requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed"; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -m ensurepip --version >/dev/null 2>&1 || { \
		echo "installing python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.txt -e '.[test,dev-redis,dev-stt]'
	touch $(STAMP)

run: install
	$(BIN)/telemed dev

# System packages the tests use: Debian's Chromium for the browser tests
# (Playwright's own download does not work offline); espeak-ng speaks the test
# sentences; fonts render Korean and Chinese pages and captions; coturn is the
# real TURN server of the relay tests. Each missing one is installed.
TEST_DEPS := chromium fonts-liberation espeak-ng fonts-nanum fonts-noto-cjk coturn
browser-deps:
	@missing=$$(for p in $(TEST_DEPS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing" $$missing; apt-get update -qq && apt-get install -y -qq $$missing; fi

test: install browser-deps
	$(BIN)/python -m pytest

# ruff, mypy strict, and the layers (import-linter contracts in setup.cfg).
lint: install
	$(BIN)/ruff check telemed signaling media tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python -m bench.waiting_room --patients 2000 --seconds 60
	$(BIN)/python -m bench.recording --streams 8 --seconds 20 --uvloop

clean:
	rm -rf $(VENV) var .pytest_cache
