"""The embedded lab in a child process: what the runner, the tests and people start.

:class:`Lab` runs ``python -m runbook_lib.lab serve`` on a free loopback port, waits for
its ready file, hands out boto3 clients as the lab's administrator and stops the child on
exit. Its settings (``enforce_iam``, ``trail_delay``, ``cloudfront_deploy_seconds``) can be
given at start and changed while it runs (``POST /_lab/config``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..exceptions import LabError
from .settings import ACCOUNT_ID, REGION

class Lab:
    """The embedded lab in a child process, as a context manager.

    Parameters
    ----------
    seed:
        Seed the insecure baseline (``runbook_lib.lab.seed``).
    enforce_iam:
        Start with resource-level IAM enforcement on.
    trail_delay:
        Seconds CloudTrail holds each event back from ``LookupEvents`` (AWS: minutes).
    cloudfront_deploy_seconds:
        Seconds a CloudFront distribution stays ``InProgress`` after a change
        (``None``: the lab's default).
    function_state_seconds:
        Seconds a function stays ``Pending`` after create and ``InProgress`` after an update
        (``None``: the lab's default).
    port:
        0 (default) picks a free loopback port.
    startup_timeout:
        Seconds to wait for the ready file.

    Examples
    --------
    >>> with Lab(seed=False) as lab:                      # doctest: +SKIP
    ...     lab.client("sts").get_caller_identity()["Arn"]
    'arn:aws:iam::123456789012:user/lab-admin'
    """

    def __init__(self, seed: bool = True, enforce_iam: bool = False, port: int = 0,
                 startup_timeout: float = 90.0, trail_delay: float = 0.0,
                 cloudfront_deploy_seconds: float | None = None, function_state_seconds: float | None = None):
        self.seed, self.enforce_iam, self.port = seed, enforce_iam, port
        self.trail_delay, self.cloudfront_deploy_seconds = trail_delay, cloudfront_deploy_seconds
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
        if self.enforce_iam:
            command.append("--enforce-iam")
        if self.trail_delay:
            command += ["--trail-delay", str(self.trail_delay)]
        if self.cloudfront_deploy_seconds is not None:
            command += ["--cloudfront-deploy-seconds", str(self.cloudfront_deploy_seconds)]
        if self.function_state_seconds is not None:
            command += ["--function-state-seconds", str(self.function_state_seconds)]
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):  # the lab must not follow a caller's target
            env.pop(name, None)
        started = time.monotonic()
        self._log_path = log_path
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
            time.sleep(0.005)  # the runner waits on this: a 20 ms poll cost 10 ms per start on average
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
        self._log_path = None
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
        """boto3 client for ``service`` pointed at the lab, as ``lab-admin``.

        Without a ``config`` it retries as the runbook's own clients do (adaptive, 10
        attempts): the lab throttles ``LookupEvents`` at AWS's two calls per second.
        """
        if "config" not in kwargs:
            from botocore.config import Config

            kwargs["config"] = Config(retries={"mode": "adaptive", "max_attempts": 10})
        return self.session().client(service, endpoint_url=self.endpoint_url, **kwargs)

    def health(self) -> dict:
        return self._request("GET", "/_lab/health")

    def set_enforce_iam(self, enabled: bool) -> None:
        """Switch resource-level IAM enforcement on or off at run time."""
        self.configure(enforce_iam=bool(enabled))

    def configure(self, **settings: Any) -> dict:
        """Change settings of the running lab (``enforce_iam``, ``trail_delay_seconds``,
        ``cloudfront_deploy_seconds``, ``function_state_seconds``); returns all of them."""
        answer = self._request("POST", "/_lab/config", settings)
        self.enforce_iam = bool(answer.get("enforce_iam", self.enforce_iam))
        self.trail_delay = float(answer.get("trail_delay_seconds", self.trail_delay))
        return answer

    def config(self) -> dict:
        return self._request("GET", "/_lab/config")

    def unevaluated(self) -> list[dict]:
        """The policy conditions the lab could not evaluate so far (``{"policy", "key"}``)."""
        return self._request("GET", "/_lab/unevaluated").get("unevaluated", [])

    def log_text(self) -> str:
        """What the lab process wrote to its log so far."""
        path = getattr(self, "_log_path", None)
        try:
            return path.read_text(errors="replace") if path else ""
        except OSError:
            return ""

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
