# Berth developer tasks (GNU make).
#   make test [PYTEST_ARGS='-k sshd -x']   whole pytest suite in .venv (exit status of pytest)
#   make run | demo | bench | screenshots | clean | distclean

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

# The stamp names carry a hash of pyproject.toml: an unchanged pyproject means no pip run, a changed
# one (new dependency, new extra) reinstalls, even when mtimes lie (git checkout). `make run` installs
# what the console needs; `make test` adds the test extras.
PYPROJECT_HASH := $(shell sha256sum pyproject.toml 2>/dev/null | cut -c1-16)
STAMP := $(VENV)/.installed-test-$(PYPROJECT_HASH)
RUN_STAMP := $(VENV)/.installed-run-$(PYPROJECT_HASH)

.PHONY: all venv $(VENV) test run demo bench screenshots clean distclean
.DEFAULT_GOAL := test

all: test

venv $(VENV): $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -e '.[test]'
	@find $(VENV) -maxdepth 1 -name '.installed-*' ! -name '*-$(PYPROJECT_HASH)' -delete
	@touch $@ $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -e .
	@find $(VENV) -maxdepth 1 -name '.installed-*' ! -name '*-$(PYPROJECT_HASH)' -delete
	@touch $@

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The desktop console (needs a display; `make demo` is the headless tour).
run: $(RUN_STAMP)
	$(VENV)/bin/berth

demo: $(RUN_STAMP)
	$(VENV)/bin/berth demo

bench: $(STAMP)
	$(VENV)/bin/pip install --disable-pip-version-check -q -e '.[test,bench]'
	$(PY) bench/deploy.py
	$(PY) bench/gui_start.py
	$(PY) bench/runner_overhead.py
	$(PY) bench/sampler_cost.py
	$(PY) bench/monitor_store.py
	QT_QPA_PLATFORM=offscreen $(PY) bench/monitor_gui.py

# Renders the main views from a real session against `local` into docs/screenshots/.
screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) docs/make_screenshots.py

# Build outputs and caches; keeps .venv (others may be using it). `make distclean` removes it too.
clean:
	rm -rf build dist tmp/ci .pytest_cache *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
