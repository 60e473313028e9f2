"""The runtime's handle on one execution environment's process (Python or Node.js).

:class:`WorkerProcess` starts the runtime start-up command (the bootstrap, behind the
function's exec wrapper when it has one) with the function's environment as its complete
environment, then sends it invocations and collects its output. The bootstraps
(``python_bootstrap.py``, ``node_bootstrap.mjs``) speak the protocol described in
:mod:`runbook_lib.lab.python_bootstrap`: invocations as JSON lines on stdin, replies on a
pipe whose fd number the bootstrap reads from ``lab-runtime.json``, stdout and stderr as
one log pipe where :func:`end_marker` closes each invocation's output.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from collections import deque
from typing import Callable


def end_marker(request_id: str) -> bytes:
    """Written to the log pipe by a bootstrap after an invocation's output."""
    return b"\x00\x1elab-end " + request_id.encode("ascii") + b"\x1e\x00\n"


TIMEOUT, EXITED = "timeout", "exited"
MAX_LINE_BYTES = 256 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


class LogPipe:
    """The worker's stdout/stderr as timestamped lines, read as they arrive."""

    def __init__(self, fd: int):
        self.fd = fd
        self.partial = bytearray()
        self.lines: deque[tuple[int, bytes]] = deque()
        self.open = True

    def read(self) -> None:
        data = os.read(self.fd, 65536)
        stamp = now_ms()
        if not data:
            self.open = False
            if self.partial:
                self.lines.append((stamp, bytes(self.partial)))
                self.partial.clear()
            return
        self.partial += data
        while True:
            cut = self.partial.find(b"\n")
            if cut < 0:
                if len(self.partial) > MAX_LINE_BYTES:  # CloudWatch splits long events too
                    self.lines.append((stamp, bytes(self.partial)))
                    self.partial.clear()
                return
            self.lines.append((stamp, bytes(self.partial[:cut])))
            del self.partial[:cut + 1]

    def take_until(self, marker: bytes, into: list) -> bool:
        """Move lines into ``into`` up to ``marker``; True once the marker was seen."""
        marker = marker.rstrip(b"\n")
        while self.lines:
            stamp, line = self.lines.popleft()
            if line == marker:
                return True
            into.append((stamp, line))
        return False

    def take_all(self, into: list) -> None:
        into.extend(self.lines)
        self.lines.clear()


class WorkerProcess:
    """The runtime's handle on one worker: start it, send invocations, collect output.

    Parameters
    ----------
    command:
        The start-up command (``[wrapper,] interpreter, bootstrap``).
    env:
        The complete environment of the worker (nothing is inherited).
    cwd:
        The task root.
    user:
        The uid to run as (None: the lab's own).
    on_reply_fd:
        Called with the fd number the bootstrap must reply on, before the process starts.

    Raises
    ------
    OSError
        The command cannot be started (a wrapper that is missing or not executable).
    """

    def __init__(self, command: list[str], env: dict[str, str], cwd: str, user: int | None,
                 on_reply_fd: Callable[[int], None]):
        response_read, response_write = os.pipe()
        try:
            on_reply_fd(response_write)
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, pass_fds=(response_write,), start_new_session=True,
                user=user, group=user, extra_groups=[] if user is not None else None)
        except BaseException:
            os.close(response_read)
            raise
        finally:
            os.close(response_write)
        self._response_fd = response_read
        self._response_partial = bytearray()
        self._responses: deque[dict] = deque()
        self._log = LogPipe(self.process.stdout.fileno())
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._log.fd, selectors.EVENT_READ)
        self._selector.register(response_read, selectors.EVENT_READ)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout_s: float, lines: list) -> dict | str:
        """The init reply (``ready`` or ``init_error``), TIMEOUT or EXITED; output into ``lines``."""
        reply = self._await(time.monotonic() + timeout_s)
        self._collect(reply, "init", lines)
        return reply

    def invoke(self, request_id: str, event: str, invoked_arn: str, timeout_s: float,
               lines: list, trace_id: str = "") -> tuple[dict | str, float]:
        """Run one invocation (``trace_id``: its ``_X_AMZN_TRACE_ID``); returns (reply,
        TIMEOUT or EXITED; duration in ms)."""
        started = time.monotonic()
        message = {"op": "invoke", "rid": request_id, "event": event, "arn": invoked_arn,
                   "deadline_ms": now_ms() + int(timeout_s * 1000), "trace_id": trace_id}
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except OSError:  # the worker is gone
            self._collect(EXITED, request_id, lines)
            return EXITED, 0.0
        reply = self._await(started + timeout_s)
        duration = (time.monotonic() - started) * 1000
        self._collect(reply, request_id, lines)
        return reply, duration

    def exit_code(self, wait_s: float = 2.0) -> int | None:
        try:  # the response pipe closes a moment before the process can be reaped
            return self.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            return None

    def max_memory_mb(self) -> int:
        """Peak resident memory of the worker (VmHWM), 0 when unknown."""
        try:
            with open(f"/proc/{self.process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return max(1, -(-int(line.split()[1]) // 1024))
        except (OSError, ValueError):
            pass
        return 0

    def signal_kill(self) -> None:
        """SIGKILL the worker and anything it started (safe from any thread)."""
        try:
            os.killpg(self.process.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        """Kill the worker and release its pipes."""
        self.signal_kill()
        self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:  # stdin of a killed worker: nothing left to flush
                pass
        self._selector.close()
        os.close(self._response_fd)

    def _await(self, deadline: float) -> dict | str:
        while not self._responses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return TIMEOUT
            for key, _ in self._selector.select(remaining):
                if key.fd == self._log.fd:
                    self._read_log()
                    continue
                data = os.read(self._response_fd, 65536)
                if not data:
                    return EXITED
                self._response_partial += data
                while b"\n" in self._response_partial:
                    line, _, rest = bytes(self._response_partial).partition(b"\n")
                    self._response_partial = bytearray(rest)
                    self._responses.append(json.loads(line))
        return self._responses.popleft()

    def _read_log(self) -> None:
        self._log.read()
        if not self._log.open:
            self._selector.unregister(self._log.fd)

    def _collect(self, reply: dict | str, request_id: str, lines: list) -> None:
        """Move this invocation's output into ``lines``.

        After a reply the end marker is already in the pipe (written before the reply);
        after a timeout or exit, whatever the pipe holds now is all there is.
        """
        if isinstance(reply, dict):
            marker, deadline = end_marker(request_id), time.monotonic() + 2.0
            while not self._log.take_until(marker, lines):
                if not self._log.open or time.monotonic() > deadline:
                    return
                self._read_available(0.05)
            return
        limit = time.monotonic() + (1.0 if reply == EXITED else 0.0)
        while self._log.open and self._read_available(max(0.0, limit - time.monotonic())):
            pass
        self._log.take_all(lines)

    def _read_available(self, timeout: float) -> bool:
        """Read the log pipe if it has data within ``timeout``; False when it had none."""
        if not self._log.open:
            return False
        for key, _ in self._selector.select(timeout):
            if key.fd == self._log.fd:
                self._read_log()
                return True
        return False

