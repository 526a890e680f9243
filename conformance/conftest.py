"""pytest wiring of the conformance suite: options, the cases x variants grid, the server fixture.

Each test is one case on one variant (``test_case[daphne-3.1-close-403]``), so ``-k daphne``
selects a column and ``-k 3.1`` a row. Every test of a variant carries the xdist group of that
variant: with ``--dist loadgroup`` a variant's server runs on one worker, started once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.cases import CASES
from conformance.expectations import DEFAULT_PATH, Expectations
from conformance.report import EXPECTATIONS_KEY, ConformanceReport
from conformance.runner import ServerHandle
from conformance.servers import VARIANTS, Variant

RESULTS_DIR = Path(__file__).with_name("results")
# Results, and the venv of `make conformance-latest`, live under results/: never collect there.
collect_ignore_glob = ["results/*"]
VARIANTS_KEY = pytest.StashKey[list[Variant]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "asgi-ws-deny conformance suite")
    group.addoption(
        "--server",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="add a server variant from a command line with {app}, {host} and {port} "
        "placeholders (also {python}, {app_dir}); may be given more than once",
    )
    group.addoption(
        "--variants",
        default=None,
        metavar="NAMES",
        help="comma-separated variants to run (default: every built-in one plus --server ones)",
    )
    group.addoption(
        "--expectations",
        default=str(DEFAULT_PATH),
        metavar="PATH",
        help="the expectations file (default: conformance/expectations.toml)",
    )
    group.addoption(
        "--results-dir",
        default=str(RESULTS_DIR),
        metavar="DIR",
        help="where index.json and matrix.md are written (default: conformance/results)",
    )
    group.addoption(
        "--matrix",
        action="store_true",
        default=False,
        help="print the full matrix after the summary, one block per server variant",
    )
    group.addoption(
        "--list-skips",
        action="store_true",
        default=False,
        help="list the cases that do not apply (n/a), one line each (python -m conformance -v)",
    )
    group.addoption(
        "--support-matrix",
        default=None,
        metavar="PATH",
        help="after a whole run, also write the Markdown matrix, with date and versions, to PATH "
        "and the record of its results beside it, PATH with .json (make support-matrix)",
    )


def selected_variants(config: pytest.Config) -> list[Variant]:
    """The variants of this run: built-in ones, plus --server ones, filtered by --variants."""
    variants = dict(VARIANTS)
    for spec in config.getoption("--server"):
        custom = Variant.parse(spec)
        variants[custom.name] = custom
    chosen = config.getoption("--variants")
    if chosen:
        names = [name.strip() for name in chosen.split(",") if name.strip()]
        unknown = [name for name in names if name not in variants]
        if unknown:
            raise pytest.UsageError(
                f"--variants: unknown {', '.join(unknown)}; known: {', '.join(variants)}"
            )
        return [variants[name] for name in names]
    return list(variants.values())


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "selftest: tests of the conformance suite itself")
    config.addinivalue_line(
        "markers", "contract: helper-contract cases (asgi_ws_deny's promises on real servers)"
    )
    config.addinivalue_line("markers", "matrix: a case of the conformance matrix on one variant")
    try:
        variants = selected_variants(config)
    except ValueError as exc:
        raise pytest.UsageError(f"--server: {exc}") from None
    config.stash[VARIANTS_KEY] = variants
    config.stash[EXPECTATIONS_KEY] = Expectations.load(config.getoption("--expectations"))
    if not hasattr(config, "workerinput"):
        # The controller (or a run without xdist) collects the results and writes the report.
        config.pluginmanager.register(ConformanceReport(config, variants), "conformance-report")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "server" not in metafunc.fixturenames or "case" not in metafunc.fixturenames:
        return
    # Two parametrisations, the server one session-scoped: pytest then orders the tests by
    # variant, so that each server starts once and serves every case in a row.
    variants = [
        pytest.param(v, id=v.name, marks=[pytest.mark.xdist_group(v.name), pytest.mark.matrix])
        for v in metafunc.config.stash[VARIANTS_KEY]
    ]
    cases = [
        pytest.param(case, id=case.key, marks=[pytest.mark.contract] if case.contract else [])
        for case in CASES
    ]
    metafunc.parametrize("server", variants, indirect=True, scope="session")
    metafunc.parametrize("case", cases)


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup``: a variant's cases on one worker (each shard of a long one on
    one), whatever xdist does with its marks, the slowest work of the previous run first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from conformance.scheduling import VariantScheduling, case_durations

    names = [variant.name for variant in config.stash[VARIANTS_KEY]]
    # The previous run's case times, read before this run writes its own.
    cases = case_durations(Path(config.getoption("--results-dir")) / "index.json")
    catalogue = [(case.id, case.app) for case in CASES]
    return VariantScheduling(config, log, variants=names, cases=cases, catalogue=catalogue)


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    """The variant's server, started on the first case that needs it and stopped at the end."""
    variant: Variant = request.param
    handle = ServerHandle(variant)
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def expectations(request: pytest.FixtureRequest) -> Expectations:
    """The expectations of this run (``--expectations``)."""
    return request.config.stash[EXPECTATIONS_KEY]
