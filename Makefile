# repro-zoo: every target derives its list of papers from the folders under projects/.
# `make help` lists the targets. Two commands set up everything on a fresh machine:
#   make reproduce   # every paper's small-scale claim -> results/*.json, RESULTS.md, README table
#   make test        # all tests (unit, CLI smoke, resume, DDP on 2 CPU processes)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PAPERS := $(sort $(patsubst projects/%/__init__.py,%,$(wildcard projects/*/__init__.py)))
PAPER_REQS := $(wildcard projects/*/requirements.txt)
# Debian packages holding real data that some paper reads (see ../shared/DATA.md).
DEB_DATA := dataset-fashion-mnist
DEB_CHECK := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
PYTEST_FLAGS ?= -q

.DEFAULT_GOAL := help
.PHONY: help install data test test-fast lint reproduce render-results clean \
	$(addprefix test-,$(PAPERS)) $(addprefix reproduce-,$(PAPERS)) $(addprefix bench-,$(PAPERS))

help: ## list the targets
	@grep -hE '^[^#[:space:]].*:.*## ' $(MAKEFILE_LIST) \
	  | sed -E 's/\$$\(addprefix ([a-z]+-),\$$\(PAPERS\)\)/\1<paper>/; s/:.*## /\t/' | expand -t 24
	@echo "papers: $(PAPERS)  (test-<paper>, reproduce-<paper>, bench-<paper>)"

install: $(STAMP) data ## create .venv with pip and install every requirement (idempotent)

$(STAMP): requirements.txt constraints.txt $(PAPER_REQS) pyproject.toml
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q -r requirements.txt $(addprefix -r ,$(PAPER_REQS)) -c constraints.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

data: ## install the Debian data packages (Fashion-MNIST) when missing
	@if [ ! -f $(DEB_CHECK) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q $(DEB_DATA) >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $(DEB_DATA); }; \
	  elif [ -z "$$REPRO_ZOO_FASHION_MNIST" ]; then \
	    echo "Fashion-MNIST is missing and this user cannot install it: run 'sudo apt-get install $(DEB_DATA)'," \
	      "or set REPRO_ZOO_FASHION_MNIST to a folder holding its four IDX files." >&2; exit 1; \
	  fi; \
	fi

test: install ## run all tests except those needing a GPU
	$(PY) -m pytest $(PYTEST_FLAGS) -m "not gpu"

test-fast: install ## run the tests without the slow tier
	$(PY) -m pytest $(PYTEST_FLAGS) -m "not gpu and not slow"

$(addprefix test-,$(PAPERS)): test-%: install ## run one paper's tests, e.g. make test-dcd
	$(PY) -m pytest $(PYTEST_FLAGS) -m "not gpu" projects/$*/tests

$(addprefix reproduce-,$(PAPERS)): reproduce-%: install ## rerun one paper's claim, e.g. make reproduce-dcd
	$(PY) -m projects.$*.claim
	$(PY) -m shared.results

reproduce: install ## rerun every paper's claim, then print and render the results table
	@set -e; for p in $(PAPERS); do echo "== reproduce $$p"; $(PY) -m projects.$$p.claim; done
	$(PY) -m shared.results

render-results: install ## re-render RESULTS.md and the README table from results/*.json
	$(PY) -m shared.results

$(addprefix bench-,$(PAPERS)): bench-%: install ## benchmark one paper, e.g. make bench-dcd
	$(PY) -m projects.$*.bench

lint: install ## ruff
	$(PY) -m ruff check shared projects

clean: ## remove logs, caches and the virtual environment
	rm -rf $(VENV) logs lightning_logs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
