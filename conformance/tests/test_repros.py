"""Each script of conformance/repros/ fails exactly where the expectations record its deviation.

A repro declares the servers it runs on (``SERVERS``) and the matrix cases it shows (``CASES``).
Run against the installed (pinned) servers, it must exit 1 on a server whose expectations list
one of its cases for the installed version, and 0 on every other server it names: so a repro
that no longer shows its bug, or a fix the expectations have not caught up with, fails here.
Every deviation the expectations list, for every variant of the matrix (HTTP/3 ones included),
must have a repro, and a page in the docs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.cases import CASES, case_by_id
from conformance.expectations import Expectations
from conformance.servers import VARIANTS

pytestmark = pytest.mark.selftest

ROOT = Path(__file__).resolve().parents[2]
REPROS = sorted(path for path in (ROOT / "conformance" / "repros").glob("[a-z]*.py"))
SERVER_BUGS = ROOT / "docs" / "server-bugs.md"
EXPECTATIONS = Expectations.load()
#: The repros start servers of their own; a few at a time keep the run short on two cores.
PARALLEL = 4


@dataclass(frozen=True)
class Repro:
    path: Path
    servers: tuple[str, ...]
    cases: tuple[str, ...]


def declared(path: Path) -> Repro:
    """The ``SERVERS`` and ``CASES`` of a repro, read from its source (not imported: it needs
    its server's packages, and the test only needs the two tuples)."""
    values = {}
    for node in ast.parse(path.read_text("utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id in ("SERVERS", "CASES"):
            assert isinstance(node, ast.Assign)
            values[target.id] = ast.literal_eval(node.value)
    return Repro(path, tuple(values["SERVERS"]), tuple(values["CASES"]))


DECLARED = [declared(path) for path in REPROS]
RUNS = [(repro, server) for repro in DECLARED for server in repro.servers]


def listed_deviations(variant: str) -> set[str]:
    """The cases the expectations list for ``variant`` at its installed version (not what a
    server offers, `Case.capability`: a fact, not a bug)."""
    version = VARIANTS[variant].version()
    return {
        case.id
        for case in CASES
        if not case.capability and EXPECTATIONS.for_case(variant, case, version).listed
    }


def deviates(repro: Repro, server: str) -> bool:
    return bool(listed_deviations(server) & set(repro.cases))


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, str], Run]:
    """Every repro on every server it names, a few at a time."""

    def run(job: tuple[Repro, str]) -> tuple[tuple[str, str], Run]:
        repro, server = job
        process = subprocess.run(
            [sys.executable, str(repro.path), "--server", server],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return (repro.path.stem, server), Run(process.returncode, process.stdout + process.stderr)

    with ThreadPoolExecutor(PARALLEL) as pool:
        return dict(pool.map(run, RUNS))


@pytest.mark.parametrize(
    ("repro", "variant"), RUNS, ids=[f"{repro.path.stem}-{variant}" for repro, variant in RUNS]
)
def test_a_repro_fails_exactly_where_its_deviation_is_expected(
    repro: Repro, variant: str, runs: dict[tuple[str, str], Run]
) -> None:
    result = runs[(repro.path.stem, variant)]
    # 2: the repro could not run (its server is missing or did not start): never a verdict.
    assert result.returncode in (0, 1), result.output
    expected = 1 if deviates(repro, variant) else 0
    assert result.returncode == expected, (
        f"{repro.path.name} --server {variant} exited {result.returncode}; the expectations "
        f"{'list' if expected else 'do not list'} one of {repro.cases} there\n{result.output}"
    )


def test_repros_name_known_servers_and_cases() -> None:
    assert DECLARED
    for repro in DECLARED:
        assert repro.servers, repro.path.name
        assert set(repro.servers) <= set(VARIANTS), repro.path.name
        for case_id in repro.cases:
            case_by_id(case_id)


def test_every_listed_deviation_has_a_repro() -> None:
    missing = [
        f"{variant} {case_id}"
        for variant in VARIANTS
        for case_id in sorted(listed_deviations(variant))
        if not any(variant in r.servers and case_id in r.cases for r in DECLARED)
    ]
    assert not missing, f"deviations without a repro in conformance/repros/: {missing}"


def test_every_repro_shows_a_deviation_somewhere() -> None:
    # A repro whose bug is fixed everywhere it runs belongs to the history, not to the suite.
    idle = [
        repro.path.name
        for repro in DECLARED
        if not any(deviates(repro, server) for server in repro.servers)
    ]
    assert not idle, idle


def test_the_docs_list_every_repro_and_every_server_with_a_deviation() -> None:
    page = SERVER_BUGS.read_text("utf-8")
    for repro in DECLARED:
        assert f"repros/{repro.path.name}" in page, repro.path.name
    for variant in VARIANTS:
        if listed_deviations(variant):
            # The heading's slug is the variant's name: other pages link server-bugs.md#<variant>.
            assert f"\n## {variant}\n" in page, f"no heading '## {variant}'"


#: The harness every repro carries, so that each file stands alone.
SHARED = ("record", "give_up", "lifespan", "main", "Server", "COMMANDS")
#: The HTTP/3 repros start their server over QUIC with a certificate of their own and talk to it
#: with an HTTP/3 client: their launcher differs, and is the same in each of them.
H3_REPROS = [
    repro.path
    for repro in DECLARED
    if all(s in VARIANTS and VARIANTS[s].protocol == "h3" for s in repro.servers)
]
OWN_LAUNCHER = {"Server", "COMMANDS"}
H3_SHARED = (
    *OWN_LAUNCHER,
    "certificate",
    "Response",
    "Recording",
    "Client",
    "exchange",
    "h3_handshake",
)


def _own_launcher(path: Path) -> set[str]:
    return OWN_LAUNCHER if path in H3_REPROS else set()


def _pieces(path: Path, names: tuple[str, ...]) -> dict[str, str]:
    """The source of each top-level definition of ``path`` named in ``names``."""
    source = path.read_text(encoding="utf-8")
    pieces = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        else:
            continue
        if name in names:
            pieces[name] = ast.get_source_segment(source, node) or ""
    return pieces


def _shared_pieces(path: Path) -> dict[str, str]:
    own = _own_launcher(path)
    return {name: text for name, text in _pieces(path, SHARED).items() if name not in own}


def test_every_repro_carries_the_same_harness() -> None:
    """The copies are on purpose (one file, one bug); a fix to one must reach them all."""
    reference = _shared_pieces(ROOT / "conformance" / "repros" / "kept_open.py")
    assert set(reference) == set(SHARED)
    for path in REPROS:
        pieces = _shared_pieces(path)
        expected = set(SHARED) - _own_launcher(path)
        assert set(pieces) == expected, path.name
        drifted = [name for name, text in pieces.items() if text != reference[name]]
        assert not drifted, f"{path.name}: {drifted} differ from kept_open.py's"


def test_every_http3_repro_carries_the_same_launcher_and_client() -> None:
    reference = _pieces(ROOT / "conformance" / "repros" / "h3_error_response.py", H3_SHARED)
    assert set(reference) == set(H3_SHARED)
    assert len(H3_REPROS) > 1  # else this compares the reference with itself
    for path in H3_REPROS:
        pieces = _pieces(path, H3_SHARED)
        assert set(pieces) == set(H3_SHARED), path.name
        drifted = [name for name, text in pieces.items() if text != reference[name]]
        assert not drifted, f"{path.name}: {drifted} differ from h3_error_response.py's"
