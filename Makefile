# Two commands on a fresh machine: `make run` (the gateway) and `make test` (the suite).
# `make test-fast`: the in-memory unit tier alone (tests/unit, about half a minute).
# `make fuzz [FUZZ_EXAMPLES=400]`: the fuzz tier's long run (>100k inputs: WebSocket methods
# and frames, HTTP requests; `make test` runs it at its CI budget) and its summary: inputs,
# findings, HTTP statuses, RSS.
# `make bench [ARGS=--quick]`: ours vs the real gateway, side by side (bench/README.md).
PYTHON ?= python3.11
# trial workers for `make test`: most of the real-client tiers wait on child processes, so two
# workers halve the wall time on 2 cores (TEST_JOBS=1: one process, in order)
TEST_JOBS ?= 2
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
BENCHSTAMP := $(VENV)/.installed-bench

.PHONY: run test test-fast fuzz lint clean reference bench

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# A non-editable install: a default editable install hides the twistd plugin from twistd.
$(STAMP): $(VENV)/bin/python setup.cfg pyproject.toml $(shell find openclaw_tw twisted -name '*.py' -o -name '*.json')
	$(PIP) install -q .
	$(PY) -c "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))"
	touch $@

$(DEVSTAMP): $(STAMP)
	$(PIP) install -q ".[dev]"
	touch $@

$(BENCHSTAMP): $(STAMP)
	$(PIP) install -q ".[bench]"
	touch $@

run: $(STAMP)
	$(VENV)/bin/twistd -n --pidfile= openclaw $(ARGS)

test: $(DEVSTAMP)
	$(PY) -m twisted.trial -j $(TEST_JOBS) --temp-directory=$(VENV)/_trial_temp tests

test-fast: $(DEVSTAMP)
	$(PY) -m twisted.trial -j $(TEST_JOBS) --temp-directory=$(VENV)/_trial_temp tests.unit

FUZZ_EXAMPLES ?= 400
fuzz: $(DEVSTAMP)
	rm -f $(VENV)/fuzz-report.jsonl
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_REPORT=$(CURDIR)/$(VENV)/fuzz-report.jsonl \
		$(PY) -m twisted.trial --temp-directory=$(VENV)/_trial_temp_fuzz tests.fuzz; \
		rc=$$?; $(PY) -m tests.fuzz.report $(VENV)/fuzz-report.jsonl; exit $$rc

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check openclaw_tw tests twisted bench

reference:
	bash scripts/install-openclaw-reference.sh

# Installs the reference gateway if needed, then runs every scenario against both gateways
# (several minutes; ARGS=--quick for a short smoke run). Results: bench/results/.
bench: $(BENCHSTAMP)
	bash scripts/install-openclaw-reference.sh
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info _trial_temp
