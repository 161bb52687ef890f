# flank_ops — developer entry points.
#   make demo   push examples/repo into a local FLANK_HOME, run its pipeline, build and serve the site
#   make test   run the test suite
#   make test-fast  the tests not marked slow (no browser, servers, cluster or R; under a minute)
#   make lint   ruff (lint and format check), mypy and the import-graph check (CI runs it before the tests)
#   make docs   regenerate the reference pages from the code and build the docs site (mkdocs --strict)
#
# make demo and make test install the Debian packages they need themselves (apt-get, as root or with
# passwordless sudo); otherwise they print the one command to run and stop. The lists below are the only
# place those packages are named (.ci/run just calls make lint and make test).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_HOME := $(CURDIR)/demo-home
DEMO_PORT ?= 8083

# git, make: the deploy and the DAG; python3-venv: make's venv; gcc, libc6-dev: flank's task launcher
# (musl-tools: built against musl, it starts ~10x faster on a VM: task/launcher.py);
# r-base-core: the example pipeline; graphviz: dot lays out the site's task graphs.
DEMO_PACKAGES := git make python3 python3-venv python3-pip gcc libc6-dev musl-tools r-base-core graphviz ca-certificates
# cron: real crontabs; chromium: the site in a browser; openssl: the SMTP tests' certificate; nginx: the
# README's nginx recipe; openssh-server/client: the private sshd of `flank remote` and push over ssh;
# slurm-wlm, munge: the private one-node Slurm cluster of the executor tests; r-base-dev, r-cran-*: the R
# package r/flank (R CMD check, its testthat tests against a real sshd).
TEST_PACKAGES := $(DEMO_PACKAGES) cron chromium openssl nginx openssh-server openssh-client slurm-wlm munge \
  r-base-dev r-cran-jsonlite r-cran-testthat r-cran-rstudioapi r-cran-askpass

.PHONY: demo test test-fast lint venv bench docs clean-demo system-packages-demo system-packages-test

$(BIN)/flank: pyproject.toml | system-packages-demo
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,docs]'
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
test: system-packages-test $(BIN)/flank
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadgroup tests

# The quick check while working: every test not marked slow (pyproject.toml's `slow` marker: Chromium, nginx,
# sshd, Slurm, moto, R, or more than about a second). `make test` still runs everything. Which new test to mark:
# .venv/bin/python -m pytest -q -n 2 -m "not slow" --durations=15 tests
test-fast: system-packages-test $(BIN)/flank
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadgroup -m "not slow" tests

# Installs what is missing of a package list, or says the one command that would and stops.
define install_packages
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo"; \
	  else echo "$(2) needs Debian packages that are not installed. Install them with:"; \
	       echo "    sudo apt-get install -y --no-install-recommends" $$missing; exit 1; fi; \
	  echo "installing for $(2):" $$missing; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

system-packages-demo:
	$(call install_packages,$(DEMO_PACKAGES),make demo)

system-packages-test:
	$(call install_packages,$(TEST_PACKAGES),make test)

demo: system-packages-demo $(BIN)/flank
	@bash examples/demo.sh "$(DEMO_HOME)" "$(BIN)" "$(DEMO_PORT)"

# The reference pages are written from the code (flank_ops/reference.py); tests/docs_test.py fails when the
# committed ones differ. --strict: a broken link, anchor or a page left out of mkdocs.yml's nav fails the build.
docs: $(BIN)/flank
	$(BIN)/python -m flank_ops.reference docs/reference
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "docs built in .docs-build/ (open .docs-build/index.html)"

# Every bench/*.py (a new one runs without being added here), one after the other; each prints its
# figures as ratios against a baseline measured in the same run. push goes over ssh, as real pushes do.
bench: $(BIN)/flank
	@set -e; for b in bench/*.py; do \
	  case $$b in bench/push.py) opts=--ssh;; *) opts=;; esac; \
	  echo "== $$b $$opts"; $(BIN)/python $$b $$opts; echo; \
	done

clean-demo:
	rm -rf $(DEMO_HOME)
