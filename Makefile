# 一老一小 service-coverage analyzer: make targets (run `make help`).
# The only file targets are the venv and the demo's generated layers (a failed step deletes its
# half-written target); the region's stages decide in Python what is stale (see below).
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
.PHONY: help setup demo run check maps pages plan scenario test bench bench-plan lint fetch-network clean

# No file of a region ever appears in this Makefile: a municipal file name (or a unit code) read into a
# rule line is a shell word, and `a;cmd.csv` would run `cmd`. Whether a region's results are older
# than its inputs is decided in Python (`coverage run --if-changed`, `coverage maps --changed-only`),
# which also writes build/<r>/ and maps/<r>/ as one transaction (aside, then swapped in whole).

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

run: setup ## validate, run the pipeline on layers/$(REGION)/coverage.toml and draw the maps (skipped when no input changed; WORKERS=n / SCHEDULER=tcp://host:port for tiled runs, TILES=tiled|untiled to force the choice)
	$(PY) -m coverage run --region $(REGION) --if-changed $(if $(WORKERS),--workers "$(WORKERS)") $(if $(SCHEDULER),--scheduler "$(SCHEDULER)") $(if $(TILES),--tiles "$(TILES)")
	@echo "open: $(MAPS)/index.html"

check: setup ## validate every input of REGION exactly as run would, and report each layer; nothing is written but the OSM cache (build/.cache/osm)
	$(PY) -m coverage check-layers --region $(REGION)

SERVICE ?= elderly
SITES ?=
BUDGET ?=
plan: setup ## recommend new sites: make plan REGION=r SERVICE=elderly SITES=N (or BUDGET=x); runs the baseline first when stale
	$(PY) -m coverage plan --region "$(REGION)" --service "$(SERVICE)" --sites "$(SITES)" --budget "$(BUDGET)"

scenario: setup ## a what-if of [scenarios.<name>]: make scenario REGION=r SCENARIO=name
	$(PY) -m coverage scenario --region "$(REGION)" --scenario "$(SCENARIO)"

maps: setup ## (re)write the overview map, PNG and every unit page of REGION
	$(PY) -m coverage maps --region $(REGION)

pages: ## bring the overview, PNG and unit pages up to date (one Python call; pages newer than their inputs are kept)
	$(PY) -m coverage maps --region $(REGION) --changed-only

test: setup ## run the test suite
	$(PY) -m pytest -q

bench: setup ## travel-time engine benchmark (ratios against baselines run in the same process)
	$(PY) scripts/bench.py

bench-plan: setup ## site-planning solver benchmark (100k cells x 5k candidates; spopt's MCLP side by side)
	$(PY) scripts/bench_plan.py

.PHONY: bench-city
bench-city: setup ## a whole run (no maps) of a generated prefecture-sized region written as real files: stage times and peak memory (SIDE_KM=100, WORKERS=0|n)
	$(PY) scripts/bench_city.py $(if $(SIDE_KM),--side-km "$(SIDE_KM)") $(if $(WORKERS),--workers "$(WORKERS)")

.PHONY: bench-scale
bench-scale: setup ## tiled runs on a local dask cluster: a generated province-like region at three sizes, untiled side by side (SIZES=..., WORKERS=n)
	$(PY) scripts/bench_scale.py $(if $(SIZES),--sizes "$(SIZES)") $(if $(WORKERS),--workers "$(WORKERS)")

lint: setup ## ruff, then mypy type checking of the package
	$(PY) -m ruff check coverage tests scripts
	$(PY) -m mypy coverage

fetch-network: setup ## download a road network with osmnx: make fetch-network PLACE='...' OUT=layers/x/roads.osm (needs internet)
	$(PY) -m coverage fetch-network --place "$(PLACE)" --out "$(or $(OUT),$(LAYERS)/roads.osm)"

clean: ## remove generated outputs (build/, maps/*, generated demo layers); keeps .venv
	rm -rf build
	find maps -mindepth 1 -not -name .gitkeep -exec rm -rf {} +
	find layers/demo -mindepth 1 -not -name coverage.toml -exec rm -rf {} +
