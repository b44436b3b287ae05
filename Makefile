# 一老一小 service-coverage analyzer: make targets (run `make help`).
# Real file targets chained in data-flow order; a failed step deletes its half-written target.
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REGION ?= demo
LAYERS := layers/$(REGION)
BUILD := build/$(REGION)
MAPS := maps/$(REGION)
CONFIG := $(LAYERS)/coverage.toml
# the pipeline depends on every stage module but the maps package (a maps change rebuilds only the pages)
SRC := $(filter-out coverage/maps/%,$(wildcard coverage/*.py coverage/layers/*.py))
# what the pages are made from besides build/<region>/ (the maps package, its vendored assets)
MAPS_SRC := $(wildcard coverage/maps/*.py) $(wildcard coverage/assets/*.js coverage/assets/*.css)
# input layer files of the region (the demo's are generated into layers/demo by `make demo`)
INPUTS = $(filter-out %/coverage.toml,$(shell find $(LAYERS) -type f -not -name '.*' 2>/dev/null))

.PHONY: help setup demo run check maps pages test bench lint fetch-network clean

# build/<r>/ and maps/<r>/ are written by Python as one transaction (aside, then swapped in whole): the
# targets below are files of a swapped-in folder, never half-written, so make must never delete them
# (.DELETE_ON_ERROR on a kill or failure would remove a GOOD result).
.PRECIOUS: $(BUILD)/indicators.gpkg $(MAPS)/index.html

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv and install the project into it (idempotent)

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

demo: setup layers/demo/.generated ## build the demo county's layers and run the whole pipeline on it, ending with the maps
	@$(MAKE) --no-print-directory run REGION=demo

layers/demo/.generated: coverage/demo.py | $(VENV)/.installed
	$(PY) -m coverage demo-data layers/demo
	@touch $@

run: setup $(BUILD)/indicators.gpkg ## validate, run the pipeline on layers/$(REGION)/coverage.toml and draw the maps
	@$(MAKE) --no-print-directory pages REGION=$(REGION)
	@echo "open: $(MAPS)/index.html"

check: setup ## validate every input of REGION exactly as run would, and report each layer; nothing is written
	$(PY) -m coverage check-layers --region $(REGION)

# one transaction: build/<r>/ and maps/<r>/ (a second run of the region at the same time is refused)
$(BUILD)/indicators.gpkg: $(CONFIG) $(INPUTS) $(SRC)
	$(PY) -m coverage run --region $(REGION)

maps: setup $(BUILD)/indicators.gpkg ## (re)write the overview map, PNG and every unit page of REGION
	$(PY) -m coverage maps --region $(REGION)

pages: $(MAPS)/index.html ## overview, PNG and unit pages, rewritten only when their inputs changed

# ONE Python call writes every page (no unit code ever reaches the shell); index.html is written last,
# so it is the up-to-date stamp of them all, and unit pages newer than their inputs are skipped
$(MAPS)/index.html: $(BUILD)/indicators.gpkg $(CONFIG) $(MAPS_SRC)
	$(PY) -m coverage maps --region $(REGION) --changed-only

test: setup ## run the test suite
	$(PY) -m pytest -q

bench: setup ## travel-time engine benchmark (ratios against baselines run in the same process)
	$(PY) scripts/bench.py

lint: setup ## ruff, then mypy type checking of the package
	$(PY) -m ruff check coverage tests scripts
	$(PY) -m mypy coverage

fetch-network: setup ## download a road network with osmnx: make fetch-network PLACE='...' OUT=layers/x/roads.osm (needs internet)
	$(PY) -m coverage fetch-network --place "$(PLACE)" --out "$(or $(OUT),$(LAYERS)/roads.osm)"

clean: ## remove generated outputs (build/, maps/*, generated demo layers); keeps .venv
	rm -rf build
	find maps -mindepth 1 -not -name .gitkeep -exec rm -rf {} +
	find layers/demo -mindepth 1 -not -name coverage.toml -exec rm -rf {} +
