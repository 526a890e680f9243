# The two-command contract: `make conformance` and `make test` work from a fresh clone.
# Both create .venv when it is missing and reuse it afterwards.

# Prefer Python 3.12 (through pyenv where it is installed that way), else the default python3.
PYTHON ?= $(shell PYENV_VERSION=3.12.1 python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null \
	|| python3 -c 'import sys; print(sys.executable)')
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONSTRAINTS := conformance/constraints.txt

.PHONY: help install test lint typecheck pytest conformance conformance-latest bench soak docs clean

help:
	@echo "make test          lint, type-check and run every test"
	@echo "make conformance   run the server matrix and print it"
	@echo "make lint          ruff check and ruff format --check"
	@echo "make typecheck     mypy --strict"
	@echo "make docs          build the documentation site into site/ (strict)"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict asgi_ws_deny tests/typing

pytest: $(STAMP)
	$(BIN)/python -m pytest

# The docs site, built strictly: a broken link, anchor or API reference fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# pytest runs last so that its summary is the closing line.
test: lint typecheck docs pytest

conformance: $(STAMP)
	$(BIN)/python -m conformance

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
