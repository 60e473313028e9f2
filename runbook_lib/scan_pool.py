"""A folder's files scanned on every core: batches of paths to forked worker processes, results in order.

:meth:`runbook_lib.scanning.Scanner.scan_path` walks a folder (what is skipped and why, in walk
order) and hands the entries to :func:`run_stream` as it finds them: contiguous batches of
about :data:`BATCH_BYTES` (at most :data:`BATCH_FILES` files), each scanned by a worker while
the walk goes on, the batch reports merged in the walk's order. The report is the one a
single process gives, entry for entry; only the time differs.

Workers are **forked** from the scanning process, so they start with its compiled patterns, its
fingerprint key and its allowlist: nothing is sent to them but paths, and nothing comes back
but findings (redacted previews and fingerprints), skips and counts. One process scans when
that is cheaper or safer: fewer than two files or under :data:`POOL_MIN_BYTES` in all (a
one-file scan stays instant), one core, no ``fork`` on this platform, or other threads running
in the process (a Jupyter kernel: forking a threaded process can deadlock the child).

Examples
--------
>>> batches([("a", 3), ("b", 5), ("c", 1)], max_bytes=6, max_files=10)
[['a'], ['b', 'c']]
>>> worker_count(requested=4, files=1, total_bytes=10 ** 9)  # one file: one process
1
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Callable, Iterable, Sequence

from .exceptions import RunbookError

#: Below this many bytes in all, one process scans (forking workers would cost more than it saves).
POOL_MIN_BYTES = 4 * 1024 * 1024
#: A batch holds about this many bytes, and at most :data:`BATCH_FILES` files.
BATCH_BYTES = 1024 * 1024
BATCH_FILES = 64

_TASK: Callable | None = None  # what a forked worker runs: set before the fork, inherited


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(requested: int | None, files: int, total_bytes: int) -> int:
    """How many processes scan: ``requested`` (``0``/``None``: every core) unless one is better (above)."""
    if requested == 1 or files < 2 or total_bytes < POOL_MIN_BYTES:
        return 1
    if threading.active_count() > 1 or not fork_available():
        return 1
    return max(1, min(requested or available_cores(), files))


def fork_available() -> bool:
    """Workers can be forked here (POSIX); multiprocessing is imported only for a scan that may use it."""
    import multiprocessing

    return "fork" in multiprocessing.get_all_start_methods()


class Batcher:
    """Cuts ``(item, size)`` pairs, as they come, into contiguous runs of about ``max_bytes``, ``max_files`` at most."""

    def __init__(self, max_bytes: int | None = None, max_files: int | None = None):
        self.max_bytes = BATCH_BYTES if max_bytes is None else max_bytes
        self.max_files = BATCH_FILES if max_files is None else max_files
        self._full: list[list] = []
        self._current: list = []
        self._size = 0

    def add(self, item, size: int) -> None:
        if self._current and (self._size + size > self.max_bytes or len(self._current) >= self.max_files):
            self._full.append(self._current)
            self._current, self._size = [], 0
        self._current.append(item)
        self._size += size

    def take(self) -> list[list]:
        """The batches completed since the last call (not the one being filled)."""
        full, self._full = self._full, []
        return full

    def close(self) -> list[list]:
        """Every batch not taken yet, the last, partly filled one included."""
        if self._current:
            self._full.append(self._current)
            self._current, self._size = [], 0
        return self.take()


def batches(items: Sequence[tuple[object, int]], max_bytes: int | None = None,
            max_files: int | None = None) -> list[list]:
    """``(item, size)`` pairs cut into contiguous runs of about ``max_bytes``, at most ``max_files`` each."""
    cutter = Batcher(max_bytes, max_files)
    for item, size in items:
        cutter.add(item, size)
    return cutter.close()


def _quiet_worker() -> None:
    """Ctrl-C stops the scan in the parent, which ends the workers: no traceback from each of them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(batch):
    return _TASK(batch)


def run_stream(task: Callable, items: Iterable[tuple[object, int, bool]], requested: int | None,
               meanwhile: Callable = lambda: None) -> tuple[list, object]:
    """``task`` over batches of ``items`` as they come; the results in order, and ``meanwhile()``.

    ``items`` are ``(item, size, is_a_file_to_scan)`` in walk order. Once they hold two files
    and :data:`POOL_MIN_BYTES`, and :func:`worker_count` allows it, the batches cut so far go
    to forked workers and the rest follow while the walk goes on; otherwise (``requested`` 1,
    a small folder) every batch runs here. ``meanwhile`` runs here after the walk, while the
    workers finish (the scanner reads which files belong to installed packages then).

    Raises
    ------
    RunbookError
        A worker process died (killed, out of memory): the scan is incomplete, so it fails.
    """
    items = iter(items)
    cutter = Batcher()
    workers = files = total = 0
    if requested != 1:
        for item, size, scanned in items:
            cutter.add(item, size)
            files, total = files + scanned, total + size
            if files >= 2 and total >= POOL_MIN_BYTES:
                workers = worker_count(requested, files, total)
                break
    if workers <= 1:
        for item, size, _ in items:
            cutter.add(item, size)
        return [task(batch) for batch in cutter.close()], meanwhile()
    return _pooled(task, items, cutter, workers, meanwhile)


def _pooled(task: Callable, items, cutter: Batcher, workers: int, meanwhile: Callable) -> tuple[list, object]:
    global _TASK
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    _TASK = task
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_quiet_worker) as pool:
            futures = [pool.submit(_run, batch) for batch in cutter.take()]
            for item, size, _ in items:  # the rest of the walk, while the workers scan what it found so far
                cutter.add(item, size)
                futures.extend(pool.submit(_run, batch) for batch in cutter.take())
            futures.extend(pool.submit(_run, batch) for batch in cutter.close())
            side = meanwhile()
            return [future.result() for future in futures], side
    except BrokenProcessPool:
        raise RunbookError("scan: a worker process stopped before it finished (killed or out of memory); "
                           "the scan is incomplete: run it again, or with --jobs 1") from None
    finally:
        _TASK = None
