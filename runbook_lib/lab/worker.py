"""One warm Lambda execution environment: imports a handler once, then runs invocations.

Both ends of one pipe protocol live here: :func:`main` is the worker (the child), and
:class:`WorkerProcess` is the runtime's handle on it. :class:`WorkerProcess` starts
``python <this file> --response-fd N --task-root DIR --opt-dir DIR`` with the
function's environment as the complete ``os.environ``. It is run by path rather than with ``-m`` so that importing it does
not import ``runbook_lib`` (and, through the lab package, moto): the handler sees an
interpreter as clean as Lambda's, and a cold start costs only the handler's imports.
Stdlib only.

Protocol (JSON, one object per line):

- stdin, from the runtime: ``{"op": "invoke", "rid", "event", "deadline_ms", "arn"}``
  where ``event`` is the raw JSON text of the payload;
- response fd, to the runtime: first ``{"op": "ready", "init_ms"}`` or
  ``{"op": "init_error", "error"}``, then per invocation ``{"rid", "payload"}`` or
  ``{"rid", "error"}`` (``error`` is Lambda's ``errorMessage/errorType/stackTrace``);
- stdout/stderr (one pipe): everything the module and handler print, then, after
  the init and after each invocation, the marker :func:`end_marker` (written before
  the reply) so the runtime knows where that output ends.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import selectors
import subprocess
import sys
import time
import traceback
from collections import deque


def end_marker(request_id: str) -> bytes:
    """Written to the log pipe after an invocation's output (shared with the runtime)."""
    return b"\x00\x1elab-end " + request_id.encode("ascii") + b"\x1e\x00\n"


class LambdaContext:
    """The ``context`` argument, with the attributes of the AWS Python runtime's."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str):
        env = os.environ
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def __repr__(self) -> str:
        return (f"LambdaContext(function_name={self.function_name!r}, "
                f"aws_request_id={self.aws_request_id!r})")


class _LambdaLogFormatter(logging.Formatter):
    """``[LEVEL]\\t<time>\\t<request id>\\t<message>``, one log event per record as on AWS."""

    request_id = ""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record).replace("\n", "\r")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return (f"[{record.levelname}]\t{stamp}.{int(record.msecs):03d}Z\t"
                f"{self.request_id}\t{message}")


def _error(error_type: str, message: str, stack: list[str] | None = None) -> dict:
    return {"errorMessage": message, "errorType": error_type, "requestId": "",
            "stackTrace": stack or []}


def _exception_error(exc: BaseException) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # drop the worker's own frame
    stack = [line for line in traceback.format_list(frames)]
    return _error(type(exc).__name__, str(exc), stack)


def _json_default(value):
    # The AWS Python runtime serialises Decimal (what DynamoDB returns) as a number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _load_handler(handler_spec: str):
    module_name, _, function_name = handler_spec.rpartition(".")
    if not module_name or not function_name:
        return None, _error("Runtime.MalformedHandlerName",
                            f"Bad handler '{handler_spec}': not enough values to unpack")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        return None, _error("Runtime.ImportModuleError",
                            f"Unable to import module '{module_name}': {exc}")
    except SyntaxError as exc:
        return None, _error("Runtime.UserCodeSyntaxError",
                            f"Syntax error in module '{module_name}': {exc}")
    except Exception as exc:  # module-level code raised: reported like the runtime does
        _log_error(exc)
        return None, _exception_error(exc)
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, _error("Runtime.HandlerNotFound",
                            f"Handler '{function_name}' missing on module '{module_name}'")
    return handler, None


def _log_error(exc: BaseException) -> None:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = f"[ERROR] {type(exc).__name__}: {exc}\r" + "".join(lines).replace("\n", "\r")
    sys.stdout.write(text.rstrip("\r") + "\n")


def _setup_output() -> None:
    # stdout and stderr are one pipe (the runtime set stderr=STDOUT); one line-buffered
    # stream for both keeps their order and costs one write per line.
    out = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1,
               closefd=False)
    sys.stdout = sys.stderr = out
    sys.__stdout__ = sys.__stderr__ = out


def _setup_logging() -> _LambdaLogFormatter:
    # Like the AWS Python runtime: a root handler is already installed (so basicConfig is
    # a no-op), the root level stays WARNING until the function sets it.
    formatter = _LambdaLogFormatter()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    return formatter


def _parse_args(argv: list[str]) -> dict:
    args = {}
    for flag, value in zip(argv[::2], argv[1::2]):
        args[flag.lstrip("-").replace("-", "_")] = value
    return args


def _set_path(task_root: str, opt_dir: str) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    layer_paths = [os.path.join(opt_dir, "python", "lib", version, "site-packages"),
                   os.path.join(opt_dir, "python")]
    sys.path[:0] = [task_root] + layer_paths
    os.chdir(task_root)


def main(argv: list[str]) -> int:
    args = _parse_args(argv)
    response = open(int(args["response_fd"]), "w", encoding="utf-8", buffering=1)
    _set_path(args["task_root"], args["opt_dir"])
    sys.argv = [os.path.abspath(__file__)]
    _setup_output()
    formatter = _setup_logging()

    started = time.perf_counter()
    handler, init_error = _load_handler(os.environ.get("_HANDLER", ""))
    sys.stdout.flush()
    if init_error is not None:
        os.write(1, end_marker("init"))
        response.write(json.dumps({"op": "init_error", "error": init_error}) + "\n")
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    os.write(1, end_marker("init"))
    response.write(json.dumps({"op": "ready", "init_ms": init_ms}) + "\n")

    for line in sys.stdin.buffer:
        message = json.loads(line)
        if message.get("op") != "invoke":
            continue
        request_id = message["rid"]
        formatter.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = message.get("trace_id", "")
        context = LambdaContext(request_id, message["deadline_ms"], message["arn"])
        reply = {"rid": request_id}
        try:
            event = json.loads(message["event"]) if message["event"] else {}
            result = handler(event, context)
            try:
                reply["payload"] = json.dumps(result, default=_json_default)
            except (TypeError, ValueError) as exc:
                reply["error"] = _error("Runtime.MarshalError",
                                        f"Unable to marshal response: {exc}")
        except Exception as exc:
            _log_error(exc)
            reply["error"] = _exception_error(exc)
        if "error" in reply:
            reply["error"]["requestId"] = request_id
        sys.stdout.flush()
        os.write(1, end_marker(request_id))
        response.write(json.dumps(reply) + "\n")
    return 0


# ----------------------------------------------------------------------- runtime side
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
    env:
        The complete environment of the worker (nothing is inherited).
    task_root, opt_dir:
        The unpacked function code and layers.
    """

    def __init__(self, env: dict[str, str], task_root: str, opt_dir: str):
        response_read, response_write = os.pipe()
        try:
            self.process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--response-fd", str(response_write),
                 "--task-root", task_root, "--opt-dir", opt_dir],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                env=env, cwd=task_root, pass_fds=(response_write,), start_new_session=True)
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
               lines: list) -> tuple[dict | str, float]:
        """Run one invocation; returns (reply, TIMEOUT or EXITED; duration in ms)."""
        started = time.monotonic()
        message = {"op": "invoke", "rid": request_id, "event": event, "arn": invoked_arn,
                   "deadline_ms": now_ms() + int(timeout_s * 1000)}
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
