"""Timing whole programs the way a user runs them, for the side-by-side benchmarks.

Every side is a separate process started with :func:`run_process`, so interpreter
start-up, imports and pattern compilation count for the runbook exactly as a native
binary's start-up counts for a peer. Sides run alternated (A B A B ...), so drift in the
load of the shared machine falls on both, and the figures are the median and the range
of the runs, never the best one.

Peak memory and CPU time are the ``ru_maxrss`` and ``ru_utime + ru_stime`` that
``os.wait4`` reports for the child (its own, children it waited for included). ``ru_maxrss`` is the largest
resident set of the process (or of the biggest descendant it waited for), in KiB on Linux.

Example
-------
>>> order = alternation(["runbook", "kingfisher"], 2)
>>> [side for side, _ in order]
['runbook', 'kingfisher', 'runbook', 'kingfisher']
>>> describe([1.0, 3.0, 2.0])
'median 2.00 s (range 1.00-3.00 s, 3 runs)'
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Timing:
    """One whole-process run: wall seconds, peak RSS in KiB, exit code, CPU seconds (user + system)."""

    seconds: float
    peak_rss_kib: int
    returncode: int
    cpu_seconds: float = 0.0


def run_process(cmd: list[str], *, cwd: Path | None = None, env: dict | None = None,
                stdout_path: Path | None = None, timeout: float = 1800) -> Timing:
    """Run ``cmd`` to completion; stdout goes to ``stdout_path`` (or nowhere), stderr is dropped.

    Output goes to a file, not a pipe, so the parent never slows the child down by
    reading; peers' outputs hold values and are parsed by the caller, never printed.
    """
    sink = open(stdout_path, "wb") if stdout_path else open(os.devnull, "wb")
    try:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=sink, stderr=subprocess.DEVNULL)
        deadline = started + timeout
        while True:  # os.wait4 gives this child's own rusage (RUSAGE_CHILDREN would sum every child)
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it was reaped
    finally:
        sink.close()
    return Timing(seconds, int(usage.ru_maxrss), proc.returncode, usage.ru_utime + usage.ru_stime)


def alternation(sides: list[str], runs: int) -> list[tuple[str, int]]:
    """The run order: every side once per round, ``runs`` rounds; (side, round index)."""
    return [(side, i) for i in range(runs) for side in sides]


def run_alternated(commands: dict, runs: int, before_each=None) -> dict[str, list[Timing]]:
    """Run each ``commands[side]()`` (a callable returning a :class:`Timing`) alternated.

    ``before_each(side)`` runs untimed before every run (e.g. evicting the page cache).
    """
    results: dict[str, list[Timing]] = {side: [] for side in commands}
    for side, _ in alternation(list(commands), runs):
        if before_each is not None:
            before_each(side)
        results[side].append(commands[side]())
    return results


def describe(seconds: list[float]) -> str:
    """``median M s (range LO-HI s, N runs)``."""
    return (f"median {statistics.median(seconds):.2f} s (range {min(seconds):.2f}-{max(seconds):.2f} s, "
            f"{len(seconds)} runs)")


def describe_rss(timings: list[Timing]) -> str:
    """Median and largest peak RSS in MB (10^6 bytes)."""
    values = [t.peak_rss_kib * 1024 / 1e6 for t in timings]
    return f"peak RSS median {statistics.median(values):.0f} MB (max {max(values):.0f} MB)"


def describe_cpu(timings: list[Timing]) -> str:
    """Median CPU seconds (user + system): what the run cost, less sensitive to a busy machine."""
    return f"CPU median {statistics.median(t.cpu_seconds for t in timings):.2f} s"


def ratio(slower: list[float], faster: list[float]) -> str:
    """Ratio of medians, ``slower / faster``, e.g. ``2.2x``."""
    return f"{statistics.median(slower) / statistics.median(faster):.2f}x"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def failed(timings: list[Timing], allowed: tuple[int, ...] = (0,)) -> list[int]:
    """Exit codes of runs that did not end in one of ``allowed``."""
    return [t.returncode for t in timings if t.returncode not in allowed]
