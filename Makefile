# The two-command contract: `make conformance` and `make test` work from a fresh clone.
# Both create .venv when it is missing and reuse it afterwards.

# Prefer Python 3.12 (through pyenv where it is installed that way), else the default python3.
PYTHON ?= $(shell PYENV_VERSION=3.12.1 python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null \
	|| python3 -c 'import sys; print(sys.executable)')
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: make conformance installs only what the server matrix needs (the `conformance`
# extra); make test installs everything (`dev`, which holds `conformance` too, so it stamps both).
STAMP := $(VENV)/.installed
CONFORMANCE_STAMP := $(VENV)/.installed-conformance
CONSTRAINTS := conformance/constraints.txt

.PHONY: help install test lint typecheck pytest pythons sdist-check conformance support-matrix \
	conformance-latest bench soak docs clean vendoring-proof

help:
	@echo "make test          lint, type-check and run every test"
	@echo "make conformance   run the server matrix and print its summary"
	@echo "make support-matrix   run it and write docs/support-matrix.md and .json (tracked)"
	@echo "make conformance-latest   the same against the newest releases (own venv)"
	@echo "make lint          ruff check and ruff format --check"
	@echo "make typecheck     mypy --strict"
	@echo "make pythons       the package's own tests on Python $(OTHER_PYTHONS) too"
	@echo "make sdist-check   build the sdist, install it in a fresh venv, run its tests"
	@echo "make docs          build the documentation site into site/ (strict)"
	@echo "make bench         benchmarks: in process and on every server (bench/results.json)"
	@echo "make soak          the full soak, load and fault tests"
	@echo "make vendoring-proof   Starlette's own suite with the core vendored in (downloads it)"

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $@ $(CONFORMANCE_STAMP)

$(CONFORMANCE_STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[conformance]'
	touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict asgi_ws_deny conformance bench tests/typing vendoring --exclude '^vendoring/work/'

# The conformance suite's helper-contract cases on the servers CI must cover, and its own tests;
# then every test of the package. The package's tests run last: their summary closes the run.
CONTRACT_VARIANTS := uvicorn-sansio,uvicorn-legacy,uvicorn-wsproto,hypercorn-asyncio,hypercorn-trio,hypercorn-h2,hypercorn-h3,daphne

pytest: $(STAMP)
	$(BIN)/python -m pytest conformance -m "contract or selftest" --variants $(CONTRACT_VARIANTS) \
		-p no:cacheprovider --results-dir conformance/results/make-test
	$(BIN)/python -m pytest

# The docs site, built strictly: a broken link, anchor or API reference fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

# The package runs on every Python from 3.10: its own tests (the core, the guard, the checks, the
# harness, vendoring; no ASGI servers and no frameworks' test clients, whose quirks differ from
# one Python to the next) run on each other one through pyenv, in a venv of its own. A missing
# Python is an error, never a skip.
OTHER_PYTHONS := 3.10 3.11 3.13
UNIT_TESTS := tests/test_core_deny.py tests/test_core_denial_send.py tests/test_core_messages.py tests/test_core_properties.py \
	tests/test_core_validation.py tests/test_injection.py tests/test_robustness.py \
	tests/test_guard.py tests/test_guard_state.py tests/test_guard_properties.py \
	tests/test_denied.py tests/test_checks.py tests/test_origin.py tests/test_ratelimit.py \
	tests/test_admission.py tests/test_testing.py tests/test_package.py tests/test_vendor.py \
	tests/test_install_hints.py
UNIT_EXTRAS := pytest hypothesis trio asgiref h11 idna

.venv-%/.installed: pyproject.toml $(CONSTRAINTS)
	test -x .venv-$*/bin/python || PYENV_VERSION=$* python$* -m venv .venv-$* \
		|| { echo "Python $* is needed for make pythons (pyenv install $*)" >&2; exit 1; }
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet -c $(CONSTRAINTS) \
		-e '.[testing,ratelimit,frameworks]' $(UNIT_EXTRAS)
	touch $@

pythons: $(foreach version,$(OTHER_PYTHONS),.venv-$(version)/.installed)
	for version in $(OTHER_PYTHONS); do \
		echo "Python $$version:"; \
		.venv-$$version/bin/python -m pytest -q -p no:cacheprovider $(UNIT_TESTS) || exit 1; \
	done

# The source distribution tests itself as a user who unpacked it would: built from this tree,
# unpacked, installed with its test-suite extra in a fresh venv, then its pytest run. It carries
# the package and tests/ only; the tests that need the repository's conformance/, bench/ or
# examples/ are reported as skipped there (they all run in the pytest step above).
SDIST_DIR := build/sdist-check
sdist-check: $(STAMP)
	rm -rf $(SDIST_DIR) && mkdir -p $(SDIST_DIR)
	$(BIN)/python -m build --sdist --outdir $(SDIST_DIR) . >$(SDIST_DIR)/build.log 2>&1 \
		|| { cat $(SDIST_DIR)/build.log; exit 1; }
	! tar -tzf $(SDIST_DIR)/asgi_ws_deny-*.tar.gz | grep -E '/(conformance|bench|examples|docs|vendoring)/'
	tar -xzf $(SDIST_DIR)/asgi_ws_deny-*.tar.gz -C $(SDIST_DIR)
	cd $(SDIST_DIR)/asgi_ws_deny-*/ && $(PYTHON) -m venv .venv \
		&& .venv/bin/python -m pip install --quiet -c $(CURDIR)/$(CONSTRAINTS) '.[test-suite]' \
		&& .venv/bin/python -m pytest -q -p no:cacheprovider

# pytest runs last so that its summary is the closing line.
test: lint typecheck docs pythons sdist-check pytest

# The server matrix (conformance/README.md): pytest-xdist, a group per server variant; prints the
# progress and the summary, writes conformance/results/ only (ignored by git).
# Extra pytest options: make conformance CONFORMANCE_ARGS="--variants daphne" (or "-v --matrix").
conformance: $(CONFORMANCE_STAMP)
	$(BIN)/python -m conformance $(CONFORMANCE_ARGS)

# The tracked support matrix: the whole matrix, then docs/support-matrix.md and the record of the
# results it shows, docs/support-matrix.json (no dates or timings: its diff is what changed).
# Only this target writes them; make test fails when the page is stale against the record.
support-matrix: $(CONFORMANCE_STAMP)
	$(BIN)/python -m conformance --support-matrix docs/support-matrix.md $(CONFORMANCE_ARGS)

# The same matrix against the newest releases of every server and client, in a venv of its own
# (no constraints); unexpected results there show what changed upstream since the pins.
LATEST_VENV := conformance/results/.venv-latest
conformance-latest:
	test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[conformance]'
	$(LATEST_VENV)/bin/python -m conformance --results-dir conformance/results/latest \
		--support-matrix conformance/results/latest/support-matrix.md $(CONFORMANCE_ARGS)

# Benchmarks, never timed tests (bench/__main__.py): prints the table, writes bench/results.json,
# the chart and the figures of docs/benchmarks.md. Only these need matplotlib, installed on demand.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) -e '.[bench]'
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# The reliability tests at full size (make test runs them short): 10,000 denials per server
# variant at concurrency 100, 1,000 concurrent handshakes through the guard, the client faults.
soak: $(STAMP)
	ASGI_WS_DENY_SOAK=1 $(BIN)/python -m pytest tests/test_soak.py tests/test_load.py tests/test_faults.py

# Starlette's whole test suite, before and after the core is vendored into it and its denial path
# switched to denial_send by vendoring/starlette.patch (docs/vendoring.md). Downloads Starlette's
# sdist (pinned) and its test requirements from PyPI into vendoring/work/, a venv of its own;
# about two minutes from scratch, one with the venv kept. Kept out of make test; CI runs it.
vendoring-proof: $(STAMP)
	$(BIN)/python -m vendoring.proof

clean:
	rm -rf vendoring/work $(VENV) $(foreach version,$(OTHER_PYTHONS),.venv-$(version)) .pytest_cache .mypy_cache .ruff_cache build dist
