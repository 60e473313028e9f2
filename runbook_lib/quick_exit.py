"""Ending a command without Python's teardown of every module it imported.

A ``runbook run`` or ``audit`` process holds about 1,200 modules (boto3, papermill, nbconvert,
jupyter_client...). After its last line is printed, the interpreter's own finalization
(clearing each module, collecting what remains) took 0.5–2 s here, on every command, with
nothing left to do. :func:`exit_now` does what an orderly exit does that matters here (the
``atexit`` handlers: logging's flush, ``weakref.finalize`` clean-ups, temporary folders),
flushes the standard streams and ends the process with ``os._exit``.

It only does so when no other non-daemon thread is alive: a thread still working would be
waited for by a normal exit, so then the normal exit is taken.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading


def other_threads_working() -> bool:
    """True while a non-daemon thread besides the main one is alive (a normal exit would wait for it)."""
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def exit_now(code: int) -> None:
    """End the process with ``code``: ``atexit`` handlers, streams flushed, no module teardown.

    Falls back to ``sys.exit(code)`` when another non-daemon thread is still alive.

    >>> exit_now(0)  # doctest: +SKIP
    """
    if other_threads_working():
        sys.exit(code)
    # atexit has no public "run the handlers now"; _run_exitfuncs is what the interpreter calls itself
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (| head) must not turn the code into 1
            stream.flush()
    os._exit(code)


def console_main() -> None:
    """The ``runbook`` console script: :func:`runbook_lib.cli.main`, then :func:`exit_now`."""
    from .cli import main

    exit_now(main())
