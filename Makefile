# Carinho Integrações — every entry point a developer or CI needs.
SHELL := /bin/bash
# The interpreter the virtualenv is built with: the distribution's optimized build when it has one
# (deploy/local/python.sh says why); CARINHO_PYTHON=... or PY=... chooses another.
# Set once (`?=` would run the script again at every use of $(PY)).
ifeq ($(origin PY),undefined)
PY := $(shell deploy/local/python.sh)
endif
VENV := .venv
BIN := $(VENV)/bin
# One stamp per interpreter: choosing another one builds the virtualenv again.
STAMP := $(VENV)/.installed-$(subst /,_,$(PY))

.PHONY: help venv up down status test test-unit test-integration test-chaos lint bench kafka-fetch clean

help:
	@echo "make up | down | status | test | test-chaos | lint | bench"

# The project's virtualenv, rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	@deploy/local/python.sh venv $(VENV) $(PY)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,bench]'
	@rm -f $(VENV)/.installed*
	@touch $(STAMP)

venv: $(STAMP)

kafka-fetch: $(STAMP)
	deploy/local/kafka.sh fetch

up: $(STAMP)
	deploy/local/hub.sh up

down:
	deploy/local/hub.sh down

status:
	deploy/local/hub.sh status

# The default suite: unit + integration (real Kafka started by tests/conftest.py) + chaos.
test: $(STAMP) kafka-fetch
	deploy/ci/install-test-tools.sh
	$(BIN)/pytest -q

test-unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test-integration: $(STAMP) kafka-fetch
	$(BIN)/pytest -q tests/integration

test-chaos: $(STAMP) kafka-fetch
	$(BIN)/pytest -q tests/chaos

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP) kafka-fetch
	deploy/ci/install-test-tools.sh
	$(BIN)/python -m bench.run_all

clean:
	rm -rf .run build *.egg-info .pytest_cache .mypy_cache .ruff_cache
