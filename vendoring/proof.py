"""``python -m vendoring.proof``: the core vendored into Starlette, proven by Starlette's own suite.

What a framework maintainer would do, done from scratch each run:

1. download Starlette's sdist from PyPI, pinned by version and by SHA-256 (it ships its tests),
   into ``vendoring/work/`` (ignored by git), and unpack it;
2. make a venv of its own with Starlette's test requirements (its ``dev`` dependency group and
   ``full`` extra, pinned by ``starlette-constraints.txt``) and Starlette installed editable from
   the unpacked tree;
3. run Starlette's whole suite on the unpatched tree: the baseline;
4. vendor the core into the tree (``python -m asgi_ws_deny vendor starlette --name _ws_deny``),
   check the copy, and apply ``starlette.patch``, which sends every Response that Starlette
   answers a WebSocket handshake with through ``denial_send``;
5. run the whole suite again.

Each run's failures must be exactly those ``starlette-expected-failures.json`` lists for it,
each with its reason: a test that fails unlisted, or a listed one that passes, fails the proof.
The plugin ``outcomes_plugin.py`` records each test's outcome and where ``starlette`` and its
vendored copy were imported from, so a run against the wrong tree cannot pass.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = (
    "EXPECTATIONS",
    "Expectation",
    "Run",
    "expected_failures",
    "failures",
    "load_expectations",
    "main",
    "unexpected",
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
WORK = HERE / "work"

STARLETTE = "1.10.0"
#: The sdist's digest as PyPI served it when the proof was written.
SDIST_SHA256 = "b8399098d4c1e3522734f7235dc79b1fc967f96cf139c81e0fa30479e0685f9b"
PATCH = HERE / "starlette.patch"
EXPECTATIONS = HERE / "starlette-expected-failures.json"
CONSTRAINTS = HERE / "starlette-constraints.txt"
#: The name the copy takes inside Starlette's package, as the patch imports it.
VENDORED_NAME = "_ws_deny"

Run = Literal["baseline", "patched"]
#: When a listed failure is expected: only once the patch is applied, or in both runs but only
#: when the suite runs as root (a test that assumes file permissions bind its user).
When = Literal["patched", "as-root"]
_WHEN: tuple[When, ...] = ("patched", "as-root")
#: Outcomes that fail a run (an xpassed test is one too: Starlette's xfail is strict).
_FAILING = frozenset(("failed", "error", "xpassed"))


@dataclass(frozen=True)
class Expectation:
    """One test expected to fail, and why."""

    test: str
    when: When
    reason: str


def load_expectations(path: Path = EXPECTATIONS) -> list[Expectation]:
    """Read the expectations file; raise ``ValueError`` for an entry without a reason, a
    ``when`` or a test id, or listed twice."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("starlette") != STARLETTE:
        raise ValueError(f"{path} is for Starlette {data.get('starlette')}, not {STARLETTE}")
    expectations = []
    seen = set()
    for entry in data["expected_failures"]:
        test, when, reason = entry["test"], entry["when"], entry["reason"]
        if not isinstance(test, str) or "::" not in test:
            raise ValueError(f"{path}: {test!r} is not a pytest test id")
        if when not in _WHEN:
            raise ValueError(f"{path}: {test}: when must be one of {_WHEN}, got {when!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"{path}: {test} has no reason")
        if test in seen:
            raise ValueError(f"{path}: {test} is listed twice")
        seen.add(test)
        expectations.append(Expectation(test, when, reason))
    return expectations


def expected_failures(expectations: Iterable[Expectation], run: Run, *, as_root: bool) -> set[str]:
    """The tests that must fail in ``run``."""
    return {
        e.test
        for e in expectations
        if (e.when == "patched" and run == "patched") or (e.when == "as-root" and as_root)
    }


def failures(outcomes: Mapping[str, str]) -> set[str]:
    """The tests whose outcome fails the run."""
    return {test for test, outcome in outcomes.items() if outcome in _FAILING}


def unexpected(expected: set[str], failed: set[str], ran: Iterable[str]) -> list[str]:
    """What differs between the failures expected and those seen, in either direction."""
    ran = set(ran)
    problems = [f"failed, and is not expected to: {test}" for test in sorted(failed - expected)]
    for test in sorted(expected - failed):
        if test in ran:
            problems.append(f"expected to fail, and did not: {test}")
        else:
            problems.append(f"expected to fail, and did not run: {test}")
    return problems


# The steps. Each prints what it runs; a failing command ends the proof.


def _say(text: str) -> None:
    print(f"vendoring-proof: {text}", flush=True)


def _run(
    argv: Sequence[str | Path], cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> None:
    _say(" ".join(str(arg) for arg in argv))
    subprocess.run([str(arg) for arg in argv], cwd=cwd, env=env, check=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _venv(python: str) -> tuple[Path, bool]:
    """Starlette's own venv, and whether it is new: made again when the constraints change."""
    venv = WORK / "venv"
    stamp = venv / ".proof-constraints"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == _sha256(CONSTRAINTS):
        return venv, False
    # Starlette 1.10 requires Python 3.11 (its pyproject.toml's requires-python).
    version = subprocess.run(
        [python, "-c", "import sys; print(*sys.version_info[:2], sep='.')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if tuple(map(int, version.split("."))) < (3, 11):
        raise SystemExit(f"Starlette {STARLETTE} needs Python 3.11 or later; {python} is {version}")
    shutil.rmtree(venv, ignore_errors=True)
    _run([python, "-m", "venv", venv])
    # pip 25.1 and later install a dependency group (--group); hatchling builds Starlette.
    _run([*_pip(venv), "pip", "hatchling", "editables"])
    return venv, True


def _pip(venv: Path) -> list[str | Path]:
    return [venv / "bin" / "python", "-m", "pip", "install", "--quiet", "-c", CONSTRAINTS]


def _download(venv: Path) -> Path:
    sdist = WORK / f"starlette-{STARLETTE}.tar.gz"
    if not (sdist.is_file() and _sha256(sdist) == SDIST_SHA256):
        sdist.unlink(missing_ok=True)
        _run(
            [
                venv / "bin" / "python",
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--no-build-isolation",
                f"starlette=={STARLETTE}",
                "--dest",
                WORK,
            ]
        )
    digest = _sha256(sdist)
    if digest != SDIST_SHA256:
        raise SystemExit(f"{sdist}: SHA-256 {digest}, expected {SDIST_SHA256}")
    return sdist


def _unpack(sdist: Path) -> Path:
    tree = WORK / f"starlette-{STARLETTE}"
    shutil.rmtree(tree, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(WORK, filter="data")
    return tree


def _install(venv: Path, tree: Path) -> None:
    # Editable, so the suite runs the unpacked tree (unpacked anew each run, at the same place).
    _run([*_pip(venv), "--no-build-isolation", "--no-deps", "--editable", tree])
    _run([*_pip(venv), "--group", f"{tree / 'pyproject.toml'}:dev"])
    (venv / ".proof-constraints").write_text(_sha256(CONSTRAINTS), encoding="utf-8")


def _suite(venv: Path, tree: Path, run: Run) -> dict[str, object]:
    record = WORK / f"{run}.json"
    record.unlink(missing_ok=True)
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    }
    environment.update(
        PYTHONPATH=str(HERE),
        VENDORING_PROOF_OUTCOMES=str(record),
        VENDORING_PROOF_MODULES=f"starlette,starlette.{VENDORED_NAME}",
    )
    argv = [venv / "bin" / "python", "-m", "pytest", "-p", "outcomes_plugin", "-p"]
    # One line per failure: which failures were expected is what the proof reports.
    argv += ["no:cacheprovider", "-q", "--no-header", "-rfE", "--tb=line"]
    _say(f"Starlette's suite, {run}: " + " ".join(str(arg) for arg in argv))
    # pytest exits 1 when a test fails; whether that was expected is decided below.
    status = subprocess.run([str(arg) for arg in argv], cwd=tree, env=environment, check=False)
    if status.returncode not in (0, 1) or not record.is_file():
        raise SystemExit(
            f"Starlette's suite ({run}) did not run: pytest exited {status.returncode}"
        )
    result: dict[str, object] = json.loads(record.read_text(encoding="utf-8"))
    return result


def _imported_from(result: Mapping[str, object], module: str) -> Path | None:
    modules = result["modules"]
    assert isinstance(modules, dict)
    file = modules.get(module)
    return Path(file).resolve() if isinstance(file, str) else None


def _judge(
    result: Mapping[str, object], run: Run, expectations: list[Expectation], tree: Path
) -> list[str]:
    outcomes = result["outcomes"]
    assert isinstance(outcomes, dict)
    problems = unexpected(
        expected_failures(expectations, run, as_root=os.geteuid() == 0),
        failures(outcomes),
        outcomes,
    )
    starlette = _imported_from(result, "starlette")
    if starlette != (tree / "starlette" / "__init__.py").resolve():
        problems.append(f"starlette was imported from {starlette}, not from {tree}")
    copy = _imported_from(result, f"starlette.{VENDORED_NAME}")
    if run == "patched" and copy != (tree / "starlette" / f"{VENDORED_NAME}.py").resolve():
        problems.append(f"the vendored copy was imported from {copy}, not from {tree}")
    if run == "baseline" and copy is not None:
        problems.append(f"the baseline imported a vendored copy from {copy}")
    counts = Counter(outcomes.values())
    summary = ", ".join(f"{counts[k]} {k}" for k in sorted(counts))
    _say(f"{run}: {summary}; {len(problems)} unexpected")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proof; the exit status is 1 when any result is unexpected."""
    parser = argparse.ArgumentParser(prog="python -m vendoring.proof", description=__doc__)
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter of Starlette's venv (3.11 or later; default: this one)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    expectations = load_expectations()
    WORK.mkdir(exist_ok=True)
    venv, new = _venv(args.python)
    tree = _unpack(_download(venv))
    if new:
        _install(venv, tree)
    prepared = time.monotonic()

    problems: dict[Run, list[str]] = {}
    problems["baseline"] = _judge(_suite(venv, tree, "baseline"), "baseline", expectations, tree)

    vendor: list[str | Path] = [sys.executable, "-m", "asgi_ws_deny", "vendor"]
    vendor += [tree / "starlette", "--name", VENDORED_NAME]
    _run(vendor)
    _run([*vendor, "--check"])
    # Outside any repository (this one holds WORK), git apply patches plain files, as patch(1).
    git = {**os.environ, "GIT_CEILING_DIRECTORIES": str(WORK)}
    _run(["git", "apply", "--check", "-p1", PATCH], cwd=tree, env=git)
    _run(["git", "apply", "-p1", PATCH], cwd=tree, env=git)
    problems["patched"] = _judge(_suite(venv, tree, "patched"), "patched", expectations, tree)

    finished = time.monotonic()
    _say(
        f"{finished - started:.0f} s in all: {prepared - started:.0f} s to download and install, "
        f"{finished - prepared:.0f} s for the two runs of the suite"
    )
    for run, found in problems.items():
        for problem in found:
            _say(f"{run}: {problem}")
    failed_runs = sum(1 for found in problems.values() if found)
    if not failed_runs:
        listed = len(expected_failures(expectations, "patched", as_root=os.geteuid() == 0))
        _say(f"every result as expected ({listed} expected failures, each with its reason)")
    # The closing line counts the two runs, each passed when its results were as expected.
    print(f"vendoring-proof: {2 - failed_runs} passed, {failed_runs} failed", flush=True)
    return 1 if failed_runs else 0


if __name__ == "__main__":
    sys.exit(main())
