"""What functional validation collected: one object, every source, and what could not be read.

:class:`ValidationEvidence` is filled by collection (:mod:`runbook_lib.validation_collect`,
:mod:`runbook_lib.validation_access`), where every AWS call happens, and read by the checks
of the catalog (:mod:`runbook_lib.catalog`), which are pure functions over it. A source that
could not be read is a line in ``errors`` (``{"logs": "FilterLogEvents on ... failed: ..."}``),
so a check can say which of its records is missing instead of passing without it.

Log messages and the secret's values are held in memory only, for the checks that search
them; ``repr`` shows neither (:class:`SecretValues`, ``repr=False``).

Examples
--------
>>> window = Window(parse_time("2026-01-01T10:00:00Z"), parse_time("2026-01-01T10:00:05Z"),
...                 parse_time("2026-01-01T09:59:00Z"))
>>> window.contains("2026-01-01T10:00:06Z"), window.contains("2026-01-01T10:00:08Z")
(True, False)
>>> window.since_deployment("2026-01-01T09:59:30Z")
True
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

from .evidence import execution_environments, from_lambda, iso, parse_time

#: Clock and CloudTrail's one-second event times: a call is "in the window" within this slack.
WINDOW_SLACK = _dt.timedelta(seconds=2)
#: How far before the invocations logs and CloudTrail are read when the new code was
#: deployed earlier (an environment warmed up by the implementation fetched the secret then).
MAX_LOOKBACK = _dt.timedelta(hours=1)


class SecretValues:
    """The secret's leaf values, in memory only; nothing about it prints them."""

    __slots__ = ("items",)

    def __init__(self, items: list[str] | None = None):
        self.items = list(items or [])

    def __repr__(self) -> str:
        return f"<{len(self.items)} secret values hidden>"


@dataclass(frozen=True)
class Window:
    """The invocation window, and where reading starts (the deployment of the new code)."""

    start: _dt.datetime
    end: _dt.datetime
    read_from: _dt.datetime

    def contains(self, when: Any) -> bool:
        """Whether ``when`` falls inside the invocation window (within :data:`WINDOW_SLACK`)."""
        moment = parse_time(when)
        return self.start - WINDOW_SLACK <= moment <= self.end + WINDOW_SLACK

    def since_deployment(self, when: Any) -> bool:
        """Whether ``when`` is at or after the deployment (the start of the reads), up to the window's end."""
        moment = parse_time(when)
        return self.read_from - WINDOW_SLACK <= moment <= self.end + WINDOW_SLACK

    @property
    def seconds(self) -> float:
        return max((self.end - self.start).total_seconds(), 0.0)

    def to_dict(self) -> dict:
        return {"start": iso(self.start), "end": iso(self.end), "read_from": iso(self.read_from)}


def read_start(window_start: _dt.datetime, deployed: _dt.datetime | None) -> _dt.datetime:
    """Where log and CloudTrail reads start: the deployment, at most :data:`MAX_LOOKBACK` back."""
    if deployed is None or deployed >= window_start:
        return window_start
    return max(deployed, window_start - MAX_LOOKBACK)


@dataclass(repr=False)
class ValidationEvidence:
    """Everything one validation collected; the checks read only this.

    ``errors`` maps a source (``function``, ``code``, ``secret``, ``secret_policy``, ``key``,
    ``logs``, ``cloudtrail``, ``log_values``, ``role``, ``functions``, ``probe``, ``trails``,
    ``edge``, ``residue``, ``exposure``) to the one-line reason it could not be read.
    """

    target: str
    function_name: str
    region: str
    window: Window
    invocations: list = field(default_factory=list)
    retrieval_log_pattern: str = ""
    cache_ttl_seconds: float = 0.0
    errors: dict = field(default_factory=dict)
    # the function (GetFunction), its baseline and what the implementation moved
    config: dict = field(default_factory=dict)
    baseline: dict = field(default_factory=dict)
    moved_variables: list = field(default_factory=list)
    snapshot_code_sha256: str = ""
    environment_findings: list = field(default_factory=list)
    code: dict | None = None          # the package scan; None: not scanned (container image)
    layers: list = field(default_factory=list)
    # the secret (DescribeSecret, GetResourcePolicy) and its key
    secret: dict = field(default_factory=dict)
    secret_policy: dict | None = None
    ledger_kms_key: str = ""
    key: dict = field(default_factory=dict)
    # CloudWatch Logs (messages in memory only) and the value scan
    log_events: list = field(default_factory=list)
    logs_truncated: bool = False
    value_scan: dict = field(default_factory=dict)
    excerpt: list = field(default_factory=list)         # the log lines redacted, as they may be shown
    # CloudTrail GetSecretValue on the secret
    trail_rows: list = field(default_factory=list)
    trail_polling: dict = field(default_factory=dict)
    # who can read the secret (validation_access)
    role: Any = None                  # iam_analysis.RoleAnalysis of the function's role
    simulation: dict = field(default_factory=dict)
    probe: dict = field(default_factory=dict)
    functions: list = field(default_factory=list)       # {"function", "role"} of every function in the region
    role_analyses: dict = field(default_factory=dict)   # role ARN -> RoleAnalysis (other functions' roles)
    role_errors: dict = field(default_factory=dict)     # role ARN -> why its policies could not be read
    # audit logging, edge, residue
    trails: list = field(default_factory=list)
    edge: dict | None = None          # None: the ledger records no Lambda@Edge association
    sweep: Any = None                 # residue.Sweep
    exposure: list | None = None

    def __repr__(self) -> str:
        return (f"<ValidationEvidence {self.function_name} on {self.target}: {len(self.invocations)} invocations, "
                f"{len(self.log_events)} log events, {len(self.trail_rows)} CloudTrail events, "
                f"unavailable: {sorted(self.errors) or 'none'}>")

    # -- the function ------------------------------------------------------------------------
    @property
    def function_arn(self) -> str:
        return self.config.get("FunctionArn", "")

    @property
    def account(self) -> str:
        arn = self.function_arn
        return arn.split(":")[4] if arn.count(":") >= 5 else ""

    @property
    def partition(self) -> str:
        return (self.function_arn or "arn:aws:").split(":")[1] or "aws"

    @property
    def role_arn(self) -> str:
        return self.config.get("Role", "")

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def environment(self) -> dict:
        return dict((self.config.get("Environment") or {}).get("Variables") or {})

    # -- the secret and CloudTrail ---------------------------------------------------------
    @property
    def secret_arn(self) -> str:
        return self.secret.get("ARN", "")

    @property
    def expected_session_arn(self) -> str:
        """``assumed-role/<role>/<function>``: Lambda names the role session after the function."""
        return f"arn:{self.partition}:sts::{self.account}:assumed-role/{self.role_name}/{self.function_name}"

    def by_the_function(self, row: dict) -> bool:
        """A call made by the function's own role session, from Lambda (successful or not)."""
        return row.get("ARN") == self.expected_session_arn and from_lambda(row)

    def attributed(self, row: dict) -> bool:
        """A successful GetSecretValue by the function: its role session, from Lambda, no errorCode."""
        return self.by_the_function(row) and not row.get("errorCode")

    def fetches_since_deployment(self) -> list[dict]:
        return [r for r in self.trail_rows if self.attributed(r) and r.get("eventTime")
                and self.window.since_deployment(r["eventTime"])]

    def fetches_in_window(self) -> list[dict]:
        return [r for r in self.fetches_since_deployment() if self.window.contains(r["eventTime"])]

    # -- logs ----------------------------------------------------------------------------------
    def window_events(self) -> list[dict]:
        return [e for e in self.log_events if self.window.contains(e["timestamp"])]

    def environments_in_window(self) -> list[str]:
        """Log streams with a START line of one of the invocations (one stream per execution environment)."""
        return execution_environments(self.window_events(), [i.get("request_id", "") for i in self.invocations])

    def fetch_allowance(self, environments: int) -> int:
        """Fetches the window may hold: one per environment, one more per TTL the window spans."""
        per_environment = 1
        if self.cache_ttl_seconds > 0:
            per_environment += math.floor(self.window.seconds / self.cache_ttl_seconds)
        return environments * per_environment
