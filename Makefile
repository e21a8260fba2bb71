# PayOps Console — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export QT_API := pyside6

.PHONY: help system services venv demo console test lint typecheck unit faults test-topologies bench screenshots clean

help:
	@echo "make demo    set everything up and open the console on a moving demo flow"
	@echo "make test    set everything up and run lint, type checks and the test suite"
	@echo "make faults  run every fault-injection test, the slow ones too (private RabbitMQ/Redis)"
	@echo "make test-topologies  run the TLS / cluster / Sentinel tests alone (private servers)"
	@echo "make bench   run the benchmarks (prints ratios against references)"

system:
	@bash scripts/bootstrap.sh system

services:
	@bash scripts/bootstrap.sh services

$(STAMP): pyproject.toml | system
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP)

demo: $(STAMP) services
	$(VENV)/bin/payops demo

console: $(STAMP) services
	$(VENV)/bin/payops console

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP) services
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

faults: $(STAMP) services
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m '' tests/faults $(PYTEST_ARGS)

test-topologies: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m topologies tests/topologies $(PYTEST_ARGS)

bench: $(STAMP) services
	QT_QPA_PLATFORM=offscreen $(PY) -m tests.benchmarks $(BENCH_ARGS)

screenshots: $(STAMP) services
	QT_QPA_PLATFORM=offscreen $(PY) -m tests.screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
