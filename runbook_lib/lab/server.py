"""Start and stop the embedded lab.

- :class:`LabServer` runs in the lab process: moto wrapped by :class:`~.app.LabApp`,
  served by werkzeug's threaded server on 127.0.0.1, plus the CloudTrail event store,
  the run-time settings (:mod:`.settings`), the partner API and the Lambda runtime.
- :class:`~.process.Lab` (re-exported here) is what the runner, the notebooks' tests and
  people use: the lab in a child process.
- :func:`serve` is ``runbook lab`` / ``python -m runbook_lib.lab serve``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .function_states import DEFAULT_SECONDS as FUNCTION_STATE_SECONDS
from .function_states import seconds_argument
from .process import Lab
from .settings import ACCOUNT_ID, ADMIN_USER, REGION, LabSettings

__all__ = ["ACCOUNT_ID", "ADMIN_USER", "REGION", "FAULT_KINDS", "Lab", "LabServer", "serve", "add_arguments",
           "main", "load_managed_policies_in_aws_partition_only"]
#: Faults the lab can inject into AWS calls (``POST /_lab/faults``).
FAULT_KINDS = ("throttle", "deny")
#: Seconds between the serving loop's looks at its shutdown flag (what :meth:`LabServer.stop` waits).
SHUTDOWN_POLL = 0.05
_ADMIN_POLICY = json.dumps({"Version": "2012-10-17",
                            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})


def load_managed_policies_in_aws_partition_only() -> None:
    """Load AWS managed policies only in the ``aws`` partition.

    moto resolves every access key through the IAM backend of each of its five
    partitions, and each one parses and builds ~1,600 managed policies (about 1.2 s on
    the first request of the lab). The lab has one account in the ``aws`` partition.
    """
    from moto.iam import models as iam_models

    original = iam_models.IAMBackend._init_aws_policies
    if getattr(original, "_lab_patched", False):
        return

    def init_aws_policies(backend):
        return original(backend) if backend.region_name == "aws" else []

    init_aws_policies._lab_patched = True
    iam_models.IAMBackend._init_aws_policies = init_aws_policies


class LabServer:
    """The lab, in this process.

    Parameters
    ----------
    port:
        TCP port on ``host``; 0 picks a free one.
    enforce_iam:
        Start with resource-level IAM enforcement on (switchable later).
    trail_delay, cloudfront_deploy_seconds, function_state_seconds:
        Start values of those settings (:class:`~.settings.LabSettings`); None: the default.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", enforce_iam: bool = False,
                 account_id: str = ACCOUNT_ID, region: str = REGION, quiet: bool = True,
                 trail_delay: float = 0.0, cloudfront_deploy_seconds: float | None = None,
                 function_state_seconds: float | None = None):
        from . import cloudfront
        from .cloudtrail import EventStore, LookupThrottle

        self.host, self.port = host, port
        self.account_id, self.region = account_id, region
        self.quiet = quiet
        self.settings = LabSettings()
        self.events = EventStore()
        self.lookup_throttle = LookupThrottle()
        self.runtime: Any = None
        self.configure({"enforce_iam": bool(enforce_iam), "trail_delay_seconds": float(trail_delay),
                        "cloudfront_deploy_seconds": cloudfront.DEFAULT_DEPLOY_SECONDS
                        if cloudfront_deploy_seconds is None else float(cloudfront_deploy_seconds),
                        **({} if function_state_seconds is None
                           else {"function_state_seconds": float(function_state_seconds)})})
        self.code_token = secrets.token_urlsafe(12)
        self.endpoint_url = ""
        self.admin_env: dict[str, str] = {}
        self.runtime_error = "not started"
        self.partner: Any = None
        self.partner_error = "not started"
        self.faults: dict[str, dict] = {}
        self._fault_lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life cycle
    def start(self) -> "LabServer":
        """Bind, serve in a background thread, create ``lab-admin``, build the hooks."""
        # AWS managed policies (AWSLambdaBasicExecutionRole...) exist in every account;
        # moto loads them only when asked (about 0.3 s).
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        load_managed_policies_in_aws_partition_only()
        from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        from . import cloudfront, moto_speed
        from .app import LabApp

        moto_speed.install()
        cloudfront.install()
        moto_app = moto_speed.LabDispatcher(create_backend_app)
        handler = _quiet_handler() if self.quiet else MotoRequestHandler
        self._server = make_server(self.host, self.port, LabApp(self, moto_app), threaded=True,
                                   request_handler=handler)
        self.port = self._server.server_port
        self.endpoint_url = f"http://{self.host}:{self.port}"
        # stop() waits for the serving loop to look at its shutdown flag: every 0.05 s, not socketserver's 0.5 s
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": SHUTDOWN_POLL},
                                        name="lab-server", daemon=True)
        self._thread.start()
        self.admin_env = self.create_admin()
        self.partner, self.partner_error = _build("partner", lambda m: m.PartnerApi())
        self.runtime, self.runtime_error = _build("runtime", lambda m: m.LambdaRuntime(
            endpoint_url=self.endpoint_url, hook_moto=True, state_seconds=self.settings.function_state_seconds))
        return self

    def stop(self) -> None:
        """Stop the runtime's workers and the HTTP server."""
        runtime, self.runtime = self.runtime, None
        if runtime is not None and hasattr(runtime, "shutdown"):
            try:
                runtime.shutdown()
            except Exception as exc:  # stopping must go on; say why workers may linger
                print(f"runbook lab: runtime shutdown failed: {type(exc).__name__}", file=sys.stderr)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "LabServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ admin and config
    def create_admin(self) -> dict[str, str]:
        """Create IAM user ``lab-admin`` (inline ``*``/``*`` policy) and return its env."""
        from moto.iam.models import iam_backends

        backend = iam_backends[self.account_id]["aws"]
        if ADMIN_USER not in backend.users:
            backend.create_user(self.region, ADMIN_USER)
            backend.put_user_policy(ADMIN_USER, "AdministratorAccess", _ADMIN_POLICY)
        key = backend.create_access_key(ADMIN_USER)
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "AWS_ACCESS_KEY_ID": key.access_key_id,
                "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
                "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region}

    @property
    def enforce_iam(self) -> bool:
        return self.settings.enforce_iam

    def config(self) -> dict:
        return self.settings.to_dict()

    def configure(self, update: dict) -> dict:
        """Apply validated settings (:class:`~.settings.LabSettings`); unknown keys are refused."""
        from . import cloudfront

        self.settings.update(update)
        self.events.delay_seconds = self.settings.trail_delay_seconds
        cloudfront.set_deploy_seconds(self.settings.cloudfront_deploy_seconds)
        if self.runtime is not None:
            self.runtime.states.seconds = self.settings.function_state_seconds
        return self.config()

    # ------------------------------------------------------------------ fault injection
    def set_faults(self, update: dict) -> dict:
        """Replace the injected faults: ``{"throttle": {"operation": "GetFunction", "every": 3},
        "deny": {"operation": "AttachRolePolicy"}}``; ``{}`` clears them. Unknown kinds are refused."""
        faults = {}
        for kind, spec in (update or {}).items():
            if kind not in FAULT_KINDS:
                raise KeyError(f"unknown fault {kind!r}: use {', '.join(FAULT_KINDS)}")
            if not isinstance(spec, dict) or not isinstance(spec.get("operation"), str) or not spec["operation"]:
                raise TypeError(f"{kind} needs an operation name")
            every = spec.get("every", 1)
            if not isinstance(every, int) or isinstance(every, bool) or every < 1:
                raise TypeError(f"{kind}.every must be a positive integer")
            faults[kind] = {"operation": spec["operation"], "every": every, "seen": 0, "injected": 0}
        with self._fault_lock:
            self.faults = faults
        return self.fault_report()

    def fault_report(self) -> dict:
        with self._fault_lock:
            return {kind: dict(spec) for kind, spec in self.faults.items()}

    def fault_for(self, operation: str) -> str | None:
        """The fault kind to answer this call with, if one matches (counts every matching call)."""
        with self._fault_lock:
            for kind, spec in self.faults.items():
                if spec["operation"] == operation:
                    spec["seen"] += 1
                    if spec["seen"] % spec["every"] == 0:
                        spec["injected"] += 1
                        return kind
        return None

    def health(self) -> dict:
        return {"status": "ok", "endpoint_url": self.endpoint_url, "account_id": self.account_id,
                "region": self.region, **self.config(), "events": len(self.events),
                "runtime": "ready" if self.runtime is not None else f"missing: {self.runtime_error}",
                "partner": "ready" if self.partner is not None else f"missing: {self.partner_error}"}


def _build(module: str, factory) -> tuple[Any, str]:
    import importlib

    try:
        mod = importlib.import_module(f"runbook_lib.lab.{module}")
    except ModuleNotFoundError as exc:
        return None, f"runbook_lib.lab.{module} is not installed ({exc.name})"
    try:
        return factory(mod), ""
    except Exception as exc:  # a broken hook must not stop the rest of the lab
        return None, f"runbook_lib.lab.{module} failed to start: {type(exc).__name__}: {exc}"


def _quiet_handler():
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    return QuietHandler


# ---------------------------------------------------------------------- foreground serve

def serve(args: Any) -> int:
    """Run the lab in the foreground until interrupted (``runbook lab``)."""
    started = time.monotonic()
    lab = LabServer(port=args.port, host=args.host, enforce_iam=args.enforce_iam,
                    quiet=not getattr(args, "verbose", False), trail_delay=getattr(args, "trail_delay", 0.0),
                    cloudfront_deploy_seconds=getattr(args, "cloudfront_deploy_seconds", None),
                    function_state_seconds=getattr(args, "function_state_seconds", None))
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        lab.start()
    except OSError as exc:
        print(f"runbook lab: cannot serve on {args.host}:{args.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 2
    try:
        seed_info: dict = {}
        if args.seed:
            try:
                from . import seed
            except ModuleNotFoundError as exc:
                print(f"runbook lab: --seed needs runbook_lib.lab.seed, which is not installed "
                      f"({exc.name}); use --no-seed", file=sys.stderr)
                return 2
            seed_info = seed.seed_lab(lab.endpoint_url, dict(lab.admin_env), lab.partner) or {}
        ready = {"endpoint_url": lab.endpoint_url, "region": lab.region, "account_id": lab.account_id,
                 "env": lab.admin_env, "seed_info": seed_info, "pid": os.getpid(),
                 "settings": lab.config(), "runtime": lab.health()["runtime"],
                 "start_seconds": round(time.monotonic() - started, 3)}
        if args.ready_file:
            _write_ready(Path(args.ready_file), ready)
        from . import moto_speed

        moto_speed.warm_in_background()  # while the runner starts its first kernel
        if getattr(args, "parent_pid", None):
            _exit_with_parent(args.parent_pid)
        if not args.ready_file:
            _print_banner(lab, seed_info)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # seeding failed: the lab is not in the state asked for
        print(f"runbook lab: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 2
    finally:
        lab.stop()


def _print_banner(lab: LabServer, seed_info: dict) -> None:
    env = lab.admin_env
    print(f"runbook lab: serving at {lab.endpoint_url} (account {lab.account_id}, region {lab.region},"
          f" IAM enforcement {'on' if lab.enforce_iam else 'off'}); Ctrl-C stops it")
    if lab.runtime is None:
        print(f"runbook lab: Lambda Invoke unavailable: {lab.runtime_error}")
    if seed_info:
        print(f"runbook lab: seeded: {', '.join(sorted(seed_info))}")
    print(f"export AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']} AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']} "
          f"AWS_SECRET_ACCESS_KEY={env['AWS_SECRET_ACCESS_KEY']} AWS_DEFAULT_REGION={env['AWS_DEFAULT_REGION']}",
          flush=True)


def _write_ready(path: Path, ready: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(ready, handle)
    os.replace(tmp, path)


def _exit_with_parent(parent_pid: int) -> None:
    def watch() -> None:
        while True:
            time.sleep(1)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="lab-parent-watch", daemon=True).start()


def add_arguments(parser) -> None:
    """Options of ``runbook lab`` and ``python -m runbook_lib.lab serve``."""
    import argparse

    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--seed", dest="seed", action="store_true", default=True,
                        help="create the insecure baseline the runbook fixes (default)")
    parser.add_argument("--no-seed", dest="seed", action="store_false", help="start empty")
    parser.add_argument("--enforce-iam", action="store_true",
                        help="evaluate identity, resource, boundary, session and KMS key policies")
    parser.add_argument("--trail-delay", type=_seconds("--trail-delay"), default=0.0, metavar="SECONDS",
                        help="hold CloudTrail events back from LookupEvents this long, as AWS's delivery "
                             "delay (default 0)")
    parser.add_argument("--cloudfront-deploy-seconds", type=_seconds("--cloudfront-deploy-seconds"),
                        default=None, metavar="SECONDS",
                        help="a CloudFront distribution is InProgress this long after a change (default 1)")
    parser.add_argument("--function-state-seconds", type=seconds_argument, default=None, metavar="SECONDS",
                        help="a function is Pending after CreateFunction and InProgress after an update this "
                             f"long (0-60, default {FUNCTION_STATE_SECONDS})")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--ready-file", default="", help=argparse.SUPPRESS)
    parser.add_argument("--parent-pid", type=int, default=0, help=argparse.SUPPRESS)


def _seconds(option: str):
    import argparse

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{option} takes a number of seconds, not {text!r}") from None
        if not 0 <= value <= 3600:
            raise argparse.ArgumentTypeError(f"{option} takes 0 to 3600 seconds, not {text}")
        return value

    return parse


def main(args) -> int:
    """Entry point for ``runbook lab``: serve in the foreground, return the exit code."""
    return serve(args)
