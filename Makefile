# shiftboard developer commands. `make help` lists them.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help setup demo up down test test-fast lint typecheck structure protos check-protos env-example bench clean

help:  ## List the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/shiftboard: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Error: $(PYTHON) not found: install Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

setup: $(BIN)/shiftboard  ## Create .venv and install shiftboard with its pinned dependencies

demo: setup  ## The main job: start the embedded stack and run the demo on it
	$(BIN)/shiftboard demo

up: setup  ## Start the embedded stack (object store, Triton, Prefect, gateway, leaderboard)
	$(BIN)/shiftboard up

down:  ## Stop the embedded stack
	$(BIN)/shiftboard down

test: setup  ## Run every test against real servers
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: setup  ## Run only the tests that start no server
	$(BIN)/pytest -m "not stack" $(PYTEST_ARGS)

lint: setup  ## ruff, and mypy over every module (see typecheck)
	$(BIN)/ruff check .
	$(BIN)/python -m tests.tools.typecheck

typecheck: setup  ## mypy over every module, each under the name it is installed as
	$(BIN)/python -m tests.tools.typecheck

structure: setup  ## Long modules and functions, repeated blocks, type errors: the figures of docs/architecture.md
	$(BIN)/python -m tests.tools.structure

protos: setup  ## Regenerate the gRPC stubs next to the .proto files
	$(BIN)/python protos/generate.py

check-protos: setup  ## Fail when the committed stubs differ from freshly generated ones
	$(BIN)/python protos/generate.py
	git diff --exit-code -- protos/

env-example: setup  ## Rewrite deploy/.env.example from the settings module
	$(BIN)/python -m shiftboard.settings > deploy/.env.example

bench: setup  ## Benchmarks: throughput and overhead figures, measured side by side
	$(BIN)/python -m bench

clean:  ## Remove build leftovers (not the state directory)
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
