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
# packages whose metadata pins what this repository cannot install (e.g. an old torch): installed with --no-deps
NODEPS_REQS := $(wildcard projects/*/requirements-nodeps.txt)
# Debian packages holding real data that some paper reads (README.md, "Where data comes from"): Fashion-MNIST, and the
# CMU / boxing BVH motion capture of assimp-testmodels (hpgan), the pedestrian video vtest.avi of opencv-doc (stgt).
DEB_DATA := dataset-fashion-mnist assimp-testmodels opencv-doc
DEB_CHECK := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz /usr/share/assimp/models/BVH/01_01.bvh /usr/share/doc/opencv-doc/examples/data/vtest.avi
PYTEST_FLAGS ?= -q

.DEFAULT_GOAL := help
.PHONY: help install data test test-fast lint reproduce render-results gpu-check clean \
	$(addprefix test-,$(PAPERS)) $(addprefix reproduce-,$(PAPERS)) $(addprefix bench-,$(PAPERS))

help: ## list the targets
	@grep -hE '^[^#[:space:]].*:.*## ' $(MAKEFILE_LIST) \
	  | sed -E 's/\$$\(addprefix ([a-z]+-),\$$\(PAPERS\)\)/\1<paper>/; s/:.*## /\t/' | expand -t 24
	@echo "papers: $(PAPERS)  (test-<paper>, reproduce-<paper>, bench-<paper>)"

install: $(STAMP) data ## create .venv with pip and install every requirement (idempotent)

$(STAMP): requirements.txt constraints.txt $(PAPER_REQS) $(NODEPS_REQS) pyproject.toml
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q -r requirements.txt $(addprefix -r ,$(PAPER_REQS)) -c constraints.txt
	$(if $(NODEPS_REQS),$(PY) -m pip install -q --no-deps $(addprefix -r ,$(NODEPS_REQS)))
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	@touch $@

data: ## install the Debian data packages (Fashion-MNIST, BVH motion capture, vtest.avi) when missing
	@if ! ls $(DEB_CHECK) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q $(DEB_DATA) >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $(DEB_DATA); }; \
	  else \
	    echo "Data packages are missing and this user cannot install them: run 'sudo apt-get install $(DEB_DATA)'," \
	      "or set REPRO_ZOO_FASHION_MNIST to a folder holding Fashion-MNIST's four IDX files and REPRO_ZOO_BVH" \
	      "to a folder of .bvh files, REPRO_ZOO_VTEST to OpenCV's vtest.avi (the tests that need them are skipped" \
	      "otherwise)." >&2; \
	    if [ ! -f $(word 1,$(DEB_CHECK)) ] && [ -z "$$REPRO_ZOO_FASHION_MNIST" ]; then exit 1; fi; \
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

reproduce: install ## rerun every paper's claim (a failure does not stop the others), then render the table
	@failed=""; summary=""; \
	for p in $(PAPERS); do \
	  echo "== reproduce $$p"; start=$$(date +%s); \
	  if $(PY) -m projects.$$p.claim; then status=ok; else status=FAILED; failed="$$failed $$p"; fi; \
	  summary="$$summary$$(printf '%-16s %-7s %5d s' $$p $$status $$(( $$(date +%s) - start )))\n"; \
	done; \
	$(PY) -m shared.results; \
	printf "\n== time per paper\n$$summary"; \
	if [ -n "$$failed" ]; then echo "claims that failed to run:$$failed (rerun one with make reproduce-<paper>)" >&2; exit 1; fi

render-results: install ## re-render RESULTS.md and the README table from results/*.json
	$(PY) -m shared.results

$(addprefix bench-,$(PAPERS)): bench-%: install ## benchmark one paper, e.g. make bench-dcd
	$(PY) -m projects.$*.bench

gpu-check: install ## on a CUDA machine: gpu-marked tests + each paper's bf16 paper-scale step -> results/bench/gpu.json
	$(PY) -m shared.gpu_check

lint: install ## ruff
	$(PY) -m ruff check shared projects

clean: ## remove logs, caches and the virtual environment
	rm -rf $(VENV) logs lightning_logs .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
