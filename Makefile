# flank_ops — developer entry points.
#   make demo   push examples/repo into a local FLANK_HOME, run its pipeline, build and serve the site
#   make test   run the test suite
#   make lint   ruff (lint and format check), mypy and the import-graph check (CI runs it before the tests)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME := $(CURDIR)/demo-home
DEMO_PORT ?= 8083

.PHONY: demo test lint venv bench clean-demo check-demo-deps

$(BIN)/flank: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { echo "python3 venv support is missing: sudo apt-get install -y python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

venv: $(BIN)/flank

lint: $(BIN)/flank
	$(BIN)/ruff check flank_ops tests bench
	$(BIN)/ruff format --check flank_ops tests bench
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/import_graph_test.py  # the folders import without loops
	$(BIN)/mypy

# Two test processes: the suite is mostly waiting on real processes (git, make, cron, Chromium,
# servers), so it takes about half the time on a 2-core machine. PYTEST_WORKERS=0 runs it in one.
# --dist loadgroup: tests marked xdist_group("slurm") share one worker, so one private Slurm cluster starts.
PYTEST_WORKERS ?= 2
test: $(BIN)/flank
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadgroup tests

check-demo-deps:
	@for tool in git make Rscript; do \
	  command -v $$tool >/dev/null || { \
	    case $$tool in Rscript) pkg=r-base-core;; *) pkg=$$tool;; esac; \
	    echo "make demo needs $$tool, which is not installed. Install it with:"; \
	    echo "    sudo apt-get install -y $$pkg"; exit 1; }; \
	done

demo: check-demo-deps $(BIN)/flank
	@bash examples/demo.sh "$(DEMO_HOME)" "$(BIN)" "$(DEMO_PORT)"

# Every bench/*.py (a new one runs without being added here), one after the other; each prints its
# figures as ratios against a baseline measured in the same run. push goes over ssh, as real pushes do.
bench: $(BIN)/flank
	@set -e; for b in bench/*.py; do \
	  case $$b in bench/push.py) opts=--ssh;; *) opts=;; esac; \
	  echo "== $$b $$opts"; $(BIN)/python $$b $$opts; echo; \
	done

clean-demo:
	rm -rf $(DEMO_HOME)
