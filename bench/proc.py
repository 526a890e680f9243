"""What a server process costs, read from ``/proc``: CPU time, memory and open descriptors.

A server started by `conformance.servers.run_server` leads a session of its own, so its pid is
also its process group id and every worker it forks (gunicorn, granian) is in that group: the
figures here add up the whole group.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = (
    "Memory",
    "cpu_seconds",
    "group_pids",
    "memory",
    "open_fds",
    "wait_seconds",
    "wait_until",
)

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    return text[text.rindex(")") + 2 :].split()


def group_pids(pgid: int) -> list[int]:
    """Every live process of process group ``pgid``, the leader first."""
    pids = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        # After the name: state, ppid, pgrp, ...
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry.name))
    return sorted(pids, key=lambda pid: (pid != pgid, pid))


def _schedstat(pid: int) -> tuple[int, int] | None:
    """Nanoseconds on a CPU and waiting for one, over every thread of ``pid``."""
    on_cpu = waiting = 0
    try:
        tasks = os.listdir(_PROC / str(pid) / "task")
    except (FileNotFoundError, ProcessLookupError):
        return None
    for tid in tasks:
        try:
            fields = (_PROC / str(pid) / "task" / tid / "schedstat").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        on_cpu += int(fields[0])
        waiting += int(fields[1])
    return on_cpu, waiting


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time of ``pids`` in seconds, from the scheduler's nanosecond counters of every
    thread (``/proc/<pid>/task/<tid>/schedstat``); the 10 ms ticks of ``stat`` would blur a
    run of a second by a percent or more. Processes that exited count zero."""
    total = 0.0
    for pid in pids:
        stats = _schedstat(pid)
        if stats is not None:
            total += stats[0] / 1e9
            continue
        fields = _stat_fields(pid)
        if fields is not None:
            # utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def wait_seconds(pids: Iterable[int]) -> float:
    """How long the threads of ``pids`` were runnable but waiting for a CPU, in seconds: the
    share of a run the machine's other work took from the server."""
    total = 0.0
    for pid in pids:
        stats = _schedstat(pid)
        if stats is not None:
            total += stats[1] / 1e9
    return total


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process group, in KiB: the peak (VmHWM) and the current (VmRSS)."""

    peak_kib: int
    rss_kib: int


def memory(pids: Iterable[int]) -> Memory:
    """The summed VmHWM and VmRSS of ``pids`` (``/proc/<pid>/status``)."""
    peak = rss = 0
    for pid in pids:
        try:
            lines = (_PROC / str(pid) / "status").read_text().splitlines()
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in lines:
            if line.startswith("VmHWM:"):
                peak += int(line.split()[1])
            elif line.startswith("VmRSS:"):
                rss += int(line.split()[1])
    return Memory(peak, rss)


def open_fds(pids: Iterable[int]) -> int:
    """How many file descriptors ``pids`` hold open."""
    count = 0
    for pid in pids:
        try:
            count += len(os.listdir(_PROC / str(pid) / "fd"))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return count


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held.

    For state that only ``/proc`` shows (a server closing its sockets), which no event announces.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return condition()
        time.sleep(interval)
    return True
