"""The lab's Python runtime bootstrap: imports a handler once, then runs invocations.

The runtime copies this file into each execution environment as
``<env>/var/runtime/bootstrap.py`` (``LAMBDA_RUNTIME_DIR``) and starts it as
``python -S bootstrap.py``, behind the function's exec wrapper when it has one. It is
stdlib only and never imports ``runbook_lib``: the handler sees an interpreter holding
the standard library, the function's package, its layers and boto3, nothing else.

``sys.path`` is rebuilt as the AWS Python runtime has it: the task root, the layer
folders ``/opt/python/lib/pythonX.Y/site-packages`` and ``/opt/python``, the
``PYTHONPATH`` entries (``$LAMBDA_RUNTIME_DIR`` unless a wrapper or the function changed
it), the standard library, the runtime's boto3. ``/opt/...`` and ``/var/task/...`` paths
are mapped to this environment's folders.

Protocol with the runtime (JSON, one object per line), set out in ``lab-runtime.json``
next to this file (``reply_fd``, ``opt``, ``sdk``, ``runtime``):

- stdin, from the runtime: ``{"op": "invoke", "rid", "event", "deadline_ms", "arn", "trace_id"}``;
- the reply fd, to the runtime: first ``{"op": "ready", "init_ms"}`` or
  ``{"op": "init_error", "error"}``, then per invocation ``{"rid", "payload"}`` or
  ``{"rid", "error"}`` (Lambda's ``errorMessage/errorType/stackTrace``);
- stdout/stderr (one pipe): everything the code prints, then the marker
  :func:`end_marker` after the init and after each invocation, written before the reply.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback


def end_marker(request_id: str) -> bytes:
    """Written to the log pipe after an invocation's output (the runtime has a copy)."""
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


class LambdaLogFormatter(logging.Formatter):
    """``[LEVEL]\\t<time>\\t<request id>\\t<message>``, one log event per record as on AWS."""

    request_id = ""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record).replace("\n", "\r")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return (f"[{record.levelname}]\t{stamp}.{int(record.msecs):03d}Z\t"
                f"{self.request_id}\t{message}")


def lambda_error(error_type: str, message: str, stack: list[str] | None = None) -> dict:
    return {"errorMessage": message, "errorType": error_type, "requestId": "",
            "stackTrace": stack or []}


def exception_error(exc: BaseException) -> dict:
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # drop the bootstrap's own frame
    return lambda_error(type(exc).__name__, str(exc), traceback.format_list(frames))


def json_default(value):
    # The AWS Python runtime serialises Decimal (what DynamoDB returns) as a number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def load_handler(handler_spec: str):
    """``(handler, None)`` or ``(None, error)`` with the AWS runtime's errorType and message."""
    module_name, _, function_name = handler_spec.rpartition(".")
    if not module_name or not function_name:
        return None, lambda_error("Runtime.MalformedHandlerName",
                                  f"Bad handler '{handler_spec}': not enough values to unpack")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        return None, lambda_error("Runtime.ImportModuleError",
                                  f"Unable to import module '{module_name}': {exc}")
    except SyntaxError as exc:
        return None, lambda_error("Runtime.UserCodeSyntaxError",
                                  f"Syntax error in module '{module_name}': {exc}")
    except Exception as exc:  # module-level code raised: reported like the runtime does
        log_exception(exc)
        return None, exception_error(exc)
    handler = getattr(module, function_name, None)
    if handler is None:
        return None, lambda_error("Runtime.HandlerNotFound",
                                  f"Handler '{function_name}' missing on module '{module_name}'")
    return handler, None


def log_exception(exc: BaseException) -> None:
    lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
    text = f"[ERROR] {type(exc).__name__}: {exc}\r" + "".join(lines).replace("\n", "\r")
    sys.stdout.write(text.rstrip("\r") + "\n")


def log_init_error(error: dict) -> None:
    # what the AWS Python runtime prints for an error it raises itself during init
    sys.stdout.write(f"[ERROR] {error['errorType']}: {error['errorMessage']}\r"
                     "Traceback (most recent call last):\n")


def setup_output() -> None:
    # stdout and stderr are one pipe (the runtime set stderr=STDOUT); one line-buffered
    # stream for both keeps their order and costs one write per line.
    out = open(1, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)
    sys.stdout = sys.stderr = out
    sys.__stdout__ = sys.__stderr__ = out


def setup_logging() -> LambdaLogFormatter:
    # Like the AWS Python runtime: a root handler is already installed (so basicConfig is
    # a no-op), the root level stays WARNING until the function sets it.
    formatter = LambdaLogFormatter()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    return formatter


def lab_path(path: str, opt: str, task_root: str) -> str:
    """``/opt/x`` -> ``<env>/opt/x`` and ``/var/task/x`` -> the task root (other paths kept)."""
    for prefix, real in (("/opt", opt), ("/var/task", task_root)):
        if path == prefix or path.startswith(prefix + "/"):
            return real + path[len(prefix):]
    return path


def set_path(config: dict) -> None:
    task_root = os.environ.get("LAMBDA_TASK_ROOT", "")
    opt = config["opt"]
    version = config["runtime"].removeprefix("python")
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    # with -S, sys.path is [script folder, PYTHONPATH entries..., standard library...]
    stdlib = [p for p in sys.path[1:] if p not in entries]
    layers = [os.path.join(opt, "python", "lib", f"python{version}", "site-packages"),
              os.path.join(opt, "python")]
    sys.path[:] = [task_root, *layers, *(lab_path(p, opt, task_root) for p in entries),
                   *stdlib, config["sdk"]]
    os.chdir(task_root)
    import site  # with -S this defines exit(), quit(), help() without adding site-packages

    site.setquit()
    site.setcopyright()
    site.sethelper()


def serve(handler, formatter: LambdaLogFormatter, response) -> None:
    for line in sys.stdin.buffer:
        message = json.loads(line)
        if message.get("op") != "invoke":
            continue
        request_id = message["rid"]
        formatter.request_id = request_id
        if message.get("trace_id"):
            os.environ["_X_AMZN_TRACE_ID"] = message["trace_id"]
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        context = LambdaContext(request_id, message["deadline_ms"], message["arn"])
        reply = {"rid": request_id}
        try:
            event = json.loads(message["event"]) if message["event"] else {}
            result = handler(event, context)
            try:
                reply["payload"] = json.dumps(result, default=json_default)
            except (TypeError, ValueError) as exc:
                reply["error"] = lambda_error("Runtime.MarshalError", f"Unable to marshal response: {exc}")
        except Exception as exc:
            log_exception(exc)
            reply["error"] = exception_error(exc)
        if "error" in reply:
            reply["error"]["requestId"] = request_id
        sys.stdout.flush()
        os.write(1, end_marker(request_id))
        response.write(json.dumps(reply) + "\n")


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "lab-runtime.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    response = open(int(config["reply_fd"]), "w", encoding="utf-8", buffering=1)
    set_path(config)
    sys.argv = [os.path.abspath(__file__)]
    setup_output()
    formatter = setup_logging()

    started = time.perf_counter()
    handler, init_error = load_handler(os.environ.get("_HANDLER", ""))
    if init_error is not None and init_error["errorType"].startswith("Runtime."):
        log_init_error(init_error)
    sys.stdout.flush()
    os.write(1, end_marker("init"))
    if init_error is not None:
        response.write(json.dumps({"op": "init_error", "error": init_error}) + "\n")
        return 1
    response.write(json.dumps({"op": "ready", "init_ms": (time.perf_counter() - started) * 1000}) + "\n")
    serve(handler, formatter, response)
    return 0


if __name__ == "__main__":
    sys.exit(main())
