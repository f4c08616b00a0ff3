# Berth developer tasks (GNU make).
#   make test [PYTEST_ARGS='-k sshd -x']   whole pytest suite in .venv (exit status of pytest)
#   make run | demo | bench | screenshots | clean | distclean

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

# The stamp name carries a hash of pyproject.toml: an unchanged pyproject means no pip run,
# a changed one (new dependency, new extra) reinstalls, even when mtimes lie (git checkout).
PYPROJECT_HASH := $(shell sha256sum pyproject.toml 2>/dev/null | cut -c1-16)
STAMP := $(VENV)/.installed-$(PYPROJECT_HASH)

.PHONY: all venv $(VENV) test run demo bench screenshots clean distclean
.DEFAULT_GOAL := test

all: test

venv $(VENV): $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The desktop console (needs a display; `make demo` is the headless tour).
run: $(STAMP)
	$(VENV)/bin/berth

demo: $(STAMP)
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
