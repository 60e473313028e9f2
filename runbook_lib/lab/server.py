"""Start and stop the embedded lab.

- :class:`LabServer` runs in the lab process: moto wrapped by :class:`~.app.LabApp`,
  served by werkzeug's threaded server on 127.0.0.1, plus the CloudTrail event store,
  the run-time config, the partner API and the Lambda runtime.
- :class:`Lab` is what the runner, the notebooks' tests and people use: a context
  manager that starts ``python -m runbook_lib.lab serve`` as a child process, waits
  for its ready file and stops it on exit.
- :func:`serve` is ``runbook lab`` / ``python -m runbook_lib.lab serve``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from ..exceptions import LabError
from .function_states import validate_seconds

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ADMIN_USER = "lab-admin"
#: Faults the lab can inject into AWS calls (``POST /_lab/faults``).
FAULT_KINDS = ("throttle", "deny")
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
    function_state_seconds:
        How long functions stay Pending/InProgress after create/update (None: the default).
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", enforce_iam: bool = False,
                 account_id: str = ACCOUNT_ID, region: str = REGION, quiet: bool = True,
                 function_state_seconds: float | None = None):
        from .cloudtrail import EventStore

        self.host, self.port = host, port
        self.account_id, self.region = account_id, region
        self.enforce_iam = bool(enforce_iam)
        self.quiet = quiet
        self.events = EventStore()
        self.code_token = secrets.token_urlsafe(12)
        self.endpoint_url = ""
        self.admin_env: dict[str, str] = {}
        self.runtime: Any = None
        self.runtime_error = "not started"
        self.partner: Any = None
        self.partner_error = "not started"
        self.faults: dict[str, dict] = {}
        self.function_state_seconds = function_state_seconds
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
        from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                                   create_backend_app)
        from werkzeug.serving import make_server

        from . import cloudfront
        from .app import LabApp

        cloudfront.install()
        moto_app = DomainDispatcherApplication(create_backend_app)
        handler = _quiet_handler() if self.quiet else MotoRequestHandler
        self._server = make_server(self.host, self.port, LabApp(self, moto_app), threaded=True,
                                   request_handler=handler)
        self.port = self._server.server_port
        self.endpoint_url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="lab-server",
                                        daemon=True)
        self._thread.start()
        self.admin_env = self.create_admin()
        self.partner, self.partner_error = _build("partner", lambda m: m.PartnerApi())
        self.runtime, self.runtime_error = _build("runtime", lambda m: m.LambdaRuntime(
            endpoint_url=self.endpoint_url, hook_moto=True, state_seconds=self.function_state_seconds))
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

    def config(self) -> dict:
        states = getattr(self.runtime, "states", None)
        return {"enforce_iam": self.enforce_iam,
                "function_state_seconds": states.seconds if states is not None else None}

    def configure(self, update: dict) -> dict:
        """Apply ``{"enforce_iam": bool, "function_state_seconds": s}``; unknown keys are refused."""
        unknown = set(update) - {"enforce_iam", "function_state_seconds"}
        if unknown:
            raise KeyError(f"unknown lab setting(s): {', '.join(sorted(unknown))}")
        if "enforce_iam" in update and not isinstance(update["enforce_iam"], bool):
            raise TypeError("enforce_iam must be true or false")
        if "function_state_seconds" in update:
            seconds = validate_seconds(update["function_state_seconds"])
            if self.runtime is not None:
                self.runtime.states.seconds = seconds
        self.enforce_iam = update.get("enforce_iam", self.enforce_iam)
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
                "region": self.region, "enforce_iam": self.enforce_iam, "events": len(self.events),
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
                    quiet=not getattr(args, "verbose", False),
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
                 "enforce_iam": lab.enforce_iam, "runtime": lab.health()["runtime"],
                 "start_seconds": round(time.monotonic() - started, 3)}
        if args.ready_file:
            _write_ready(Path(args.ready_file), ready)
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


# ---------------------------------------------------------------------- child-process lab

class Lab:
    """The embedded lab in a child process, as a context manager.

    Parameters
    ----------
    seed:
        Seed the insecure baseline (``runbook_lib.lab.seed``).
    enforce_iam:
        Start with resource-level IAM enforcement on.
    port:
        0 (default) picks a free loopback port.
    startup_timeout:
        Seconds to wait for the ready file.
    function_state_seconds:
        How long functions stay Pending/InProgress after create/update (None: the lab's default).

    Examples
    --------
    >>> with Lab(seed=False) as lab:                      # doctest: +SKIP
    ...     lab.client("sts").get_caller_identity()["Arn"]
    'arn:aws:iam::123456789012:user/lab-admin'
    """

    def __init__(self, seed: bool = True, enforce_iam: bool = False, port: int = 0,
                 startup_timeout: float = 90.0, function_state_seconds: float | None = None):
        self.seed, self.enforce_iam, self.port = seed, enforce_iam, port
        self.function_state_seconds = function_state_seconds
        self.startup_timeout = startup_timeout
        self.endpoint_url = ""
        self.region, self.account_id = REGION, ACCOUNT_ID
        self.env: dict[str, str] = {}
        self.seed_info: dict = {}
        self.start_seconds: float | None = None
        self._process: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None
        self._session: Any = None

    def start(self) -> "Lab":
        """Start the child and wait until it is ready; raise :class:`LabError` if it is not."""
        if self._process is not None:
            return self
        self._workdir = tempfile.TemporaryDirectory(prefix="runbook-lab-")
        ready_file = Path(self._workdir.name) / "ready.json"
        log_path = Path(self._workdir.name) / "lab.log"
        command = [sys.executable, "-m", "runbook_lib.lab", "serve", "--port", str(self.port),
                   "--ready-file", str(ready_file), "--parent-pid", str(os.getpid()),
                   "--seed" if self.seed else "--no-seed"]
        command += ["--enforce-iam"] if self.enforce_iam else []
        if self.function_state_seconds is not None:
            command += ["--function-state-seconds", str(self.function_state_seconds)]
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):  # the lab must not follow a caller's target
            env.pop(name, None)
        started = time.monotonic()
        self._log = open(log_path, "wb")
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, env=env)
        while not ready_file.exists():
            if self._process.poll() is not None:
                reason = _last_line(log_path) or f"exit code {self._process.returncode}"
                self._cleanup()
                raise LabError(f"the lab stopped while starting: {reason}")
            if time.monotonic() - started > self.startup_timeout:
                self.stop()
                raise LabError(f"the lab was not ready after {self.startup_timeout:.0f} s "
                               f"(log: {_last_line(log_path) or 'empty'})")
            time.sleep(0.02)
        ready = json.loads(ready_file.read_text())
        ready_file.unlink()  # it holds the admin's secret key; the attributes keep it
        self.start_seconds = time.monotonic() - started
        self.endpoint_url = ready["endpoint_url"]
        self.region, self.account_id = ready["region"], ready["account_id"]
        self.env, self.seed_info = dict(ready["env"]), dict(ready.get("seed_info") or {})
        return self

    def stop(self) -> None:
        """Stop the child (SIGTERM, then SIGKILL after 10 s)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        self._process = None

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def check(self) -> None:
        """Raise :class:`LabError` when the lab died or does not answer ``/_lab/health``."""
        if not self.running:
            raise LabError("the lab is not running (it stopped or was never started)")
        try:
            self._request("GET", "/_lab/health")
        except OSError as exc:
            raise LabError(f"the lab at {self.endpoint_url} does not answer: {exc}") from None

    def session(self):
        """boto3 Session with ``lab-admin``'s credentials."""
        import boto3

        if self._session is None:
            self._session = boto3.Session(aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                                          aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
                                          region_name=self.region)
        return self._session

    def client(self, service: str, **kwargs: Any):
        """boto3 client for ``service`` pointed at the lab, as ``lab-admin``."""
        return self.session().client(service, endpoint_url=self.endpoint_url, **kwargs)

    def health(self) -> dict:
        return self._request("GET", "/_lab/health")

    def set_enforce_iam(self, enabled: bool) -> None:
        """Switch resource-level IAM enforcement on or off at run time."""
        self.configure(enforce_iam=bool(enabled))
        self.enforce_iam = bool(enabled)

    def configure(self, **settings: Any) -> dict:
        """Change run-time settings (``enforce_iam``, ``function_state_seconds``); returns them all."""
        return self._request("POST", "/_lab/config", settings)

    def inject_faults(self, **faults: dict) -> dict:
        """Make the lab answer some calls with errors, until :meth:`clear_faults`.

        ``throttle={"operation": "GetFunction", "every": 3}`` answers every third
        GetFunction with the protocol's throttling error; ``deny={"operation": "AttachRolePolicy"}``
        answers AccessDenied. Returns the faults with their ``seen``/``injected`` counters.
        """
        return self._request("POST", "/_lab/faults", faults)

    def clear_faults(self) -> dict:
        """Remove every injected fault; returns the counters they had."""
        report = self.faults()
        self._request("POST", "/_lab/faults", {})
        return report

    def faults(self) -> dict:
        """The injected faults and how many calls each has seen and answered."""
        return self._request("GET", "/_lab/faults")

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        if not self.endpoint_url:
            raise LabError("the lab is not started")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.endpoint_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise LabError(f"{method} {path} on the lab failed: HTTP {exc.code}") from None
        except OSError as exc:
            if not self.running:
                raise LabError("the lab is not running (it stopped)") from None
            raise LabError(f"the lab at {self.endpoint_url} does not answer: {exc}") from None


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""

