# Berth developer tasks (GNU make).
#   make test [PYTEST_ARGS='-k sshd -x'] [PYTEST_WORKERS=0]   whole pytest suite in .venv (exit status of pytest)
#   make run | demo | bench | screenshots | clean | distclean
#   make package | package-test | install-desktop | uninstall-desktop   (docs/packaging.md)

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

.PHONY: all venv $(VENV) test run demo bench screenshots clean distclean package package-test \
	install-desktop uninstall-desktop
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

# Two pytest-xdist workers by default (the suite waits on sshd's, runners and venvs more than it
# computes); PYTEST_WORKERS=0 runs it in this one process. tests/conftest.py: a file's tests in one
# worker; the files that use what a machine has once (Unix users, a container engine) take turns.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

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

# The packaged app (PyInstaller, one folder + its .tar.gz) in dist/, from its own venv in build/ (the
# `package` extra, never the developer's .venv); the commit's time is SOURCE_DATE_EPOCH, so the same
# commit gives the same file list (docs/packaging.md says what still differs).
PKG_VENV := build/package-venv
PKG_STAMP := $(PKG_VENV)/.installed-$(PYPROJECT_HASH)
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -1)
EPOCH := $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
PKG_TAR := dist/berth-$(VERSION)-linux-x86_64.tar.gz

$(PKG_STAMP): pyproject.toml
	@test -x $(PKG_VENV)/bin/python || $(PYTHON) -m venv $(PKG_VENV)
	$(PKG_VENV)/bin/pip install --disable-pip-version-check -q '.[package]'
	@touch $@

package: $(PKG_STAMP)
	rm -rf dist/berth $(PKG_TAR)
	SOURCE_DATE_EPOCH=$(EPOCH) PYTHONHASHSEED=0 $(PKG_VENV)/bin/pyinstaller --noconfirm --clean --log-level WARN \
		--distpath dist --workpath build/pyinstaller packaging/berth.spec
	SOURCE_DATE_EPOCH=$(EPOCH) $(PKG_VENV)/bin/python packaging/make_tar.py dist/berth $(PKG_TAR)
	@du -sh dist/berth $(PKG_TAR)

# The built folder's --self-test with nothing of the checkout: an empty environment (the system's
# PATH for python3, which serves the `local` server), run from a temporary folder.
package-test:
	@test -x dist/berth/berth || { echo "no dist/berth/berth: run make package first"; exit 1; }
	cd "$$(mktemp -d)" && env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$$HOME" LANG=C.UTF-8 \
		$(CURDIR)/dist/berth/berth --self-test

# The .desktop entry, metainfo and icons for the current user (XDG_DATA_HOME, else ~/.local/share);
# the entry starts $$BERTH_EXEC (read by desktop.py from the environment, so any path survives),
# else dist/berth/berth, else `berth` on PATH.
install-desktop:
	$(PYTHON) packaging/linux/desktop.py install

uninstall-desktop:
	$(PYTHON) packaging/linux/desktop.py uninstall

# Build outputs and caches; keeps .venv (others may be using it). `make distclean` removes it too.
clean:
	rm -rf build dist tmp/ci .pytest_cache *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
