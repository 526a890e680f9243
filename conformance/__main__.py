"""``python -m conformance [pytest options]``: the whole matrix, as ``make conformance`` runs it.

It is pytest with the suite's defaults: the matrix only (not the suite's own tests), spread over
pytest-xdist workers with ``--dist loadgroup`` (each variant's cases on one worker, so its
server starts once), plain asserts (the matrix uses none, and rewriting the plugins' modules in
every worker costs seconds). It writes to ``conformance/results/`` only, which git ignores; the
tracked ``docs/support-matrix.md`` is written by ``make support-matrix`` alone (which adds
``--support-matrix docs/support-matrix.md``; see `conformance.support_matrix`).
The terminal shows the conformance summary only (`conformance.terminal`): no pytest header,
letters, tracebacks or skip list (``-v`` lists the skipped cases; the details of every result
are in ``conformance/results/``). ``--matrix`` prints the full matrix too.
Any further argument goes to pytest, for example ``--server 'mine=mine {app} --port {port}'``,
``--variants daphne,granian``, ``-k 2.3``, ``-n 0`` or ``--tb=short``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def default_workers() -> int:
    """Three workers per CPU, at least six: the cases mostly wait on sockets, not the CPU (on
    two cores, six workers with a long variant cut into shards end the matrix a fifth sooner
    than four)."""
    return max(6, 3 * (os.cpu_count() or 1))


#: pytest's verbosity options, which list the skipped cases here rather than every test.
VERBOSE = frozenset({"-v", "-vv", "-vvv", "--verbose"})


def arguments(argv: list[str]) -> list[str]:
    """pytest's arguments for ``python -m conformance`` followed by ``argv``."""
    verbose = any(arg in VERBOSE for arg in argv)
    argv = [arg for arg in argv if arg not in VERBOSE]
    args = [
        str(ROOT / "conformance"),
        "-m",
        "not selftest",
        "--assert=plain",
        "-p",
        "no:cacheprovider",
        "-q",
        # The summary lists the unexpected results and index.json holds their details: no
        # tracebacks, no pytest short summary (-ra lists every skip), no percentage column.
        "--tb=no",
        "-rN",
        "-o",
        "console_output_style=classic",
        "--dist",
        "loadgroup",
    ]
    if verbose:
        args.append("--list-skips")
    if not any(arg == "-n" or arg.startswith(("-n", "--numprocesses")) for arg in argv):
        args += ["-n", str(default_workers())]
    return [*args, *argv]


def main(argv: list[str]) -> int:
    """Run the matrix; the exit status is pytest's (1 when a result is unexpected)."""
    return int(pytest.main(arguments(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
