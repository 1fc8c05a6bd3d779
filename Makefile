# Two commands on a fresh machine: `make run` (the gateway) and `make test` (the suite).
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: run test lint clean reference

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

run: $(STAMP)
	$(VENV)/bin/twistd -n --pidfile= openclaw $(ARGS)

test: $(DEVSTAMP)
	$(PY) -m twisted.trial --temp-directory=$(VENV)/_trial_temp tests

lint: $(DEVSTAMP)
	$(VENV)/bin/ruff check openclaw_tw tests twisted

reference:
	bash scripts/install-openclaw-reference.sh

clean:
	rm -rf $(VENV) build *.egg-info _trial_temp
