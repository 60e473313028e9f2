"""Functional validation: prove the migrated function works, who fetched its secret, that nothing leaked.

:class:`Validation` is the notebook's one entry point, in three steps. :meth:`~Validation.invoke`
invokes the function N times on a warm environment; :meth:`~Validation.collect` reads
everything that left behind into one :class:`~runbook_lib.validation_evidence.ValidationEvidence`
(every AWS call of validation happens there: :mod:`runbook_lib.validation_collect`,
:mod:`runbook_lib.validation_access`); :meth:`~Validation.run_checks` judges it with the
catalog's checks (:data:`CHECKS`), pure functions over the evidence. Evidence files land in
the run folder: ``invocations.json``, ``cloudtrail_events.json``, ``log_excerpt.json``
(redacted), ``iam_analysis.json`` and the PNG chart; none holds a secret value.

The same code runs against the lab and AWS. Where AWS itself differs it is a parameter,
not a branch: CloudTrail's delivery delay (``trail_wait_seconds``: -1 means 0 on the lab,
900 on AWS). The live probe follows the role's trust policy on every target.

Examples
--------
>>> v = Validation(target, ledger, run_dir, "orders-api", invocations=5)   # doctest: +SKIP
>>> v.invoke(); v.collect()                                                 # doctest: +SKIP
>>> checks = v.run_checks()                                                 # doctest: +SKIP
>>> print(v.summary())                                                      # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import evidence
from .catalog import (audit_logging, cloudtrail_attribution, edge_association, exposed_credentials_rotated,
                      function_invokes, functional_parity, least_privilege, make_check, no_secret_in_logs,
                      no_secret_residue, no_secrets_in_code, no_secrets_in_environment, secret_cached,
                      secret_encrypted, secret_retrieved_at_runtime)
from .checks import FAIL, PASS, SKIP, WARN, Check
from .evidence import response_shape, utc
from .exceptions import InputError
from .redaction import Fingerprinter
from .validation_access import read_exposure, read_residue
from .validation_collect import Collection, collect, new_evidence, run_sources
from .validation_evidence import ValidationEvidence
from .waits import DEFAULT_TRAIL_WAIT

NOTEBOOK = "03_functional_validation"
PHASE = "validation"
#: Default CloudTrail wait per target: the lab records events at once, AWS delivers them late.
#: The function's own cache TTL, when it declares one (the reference handler does).
TTL_VARIABLE = "SECRET_TTL_SECONDS"
#: The checks validation judges, in the order they are shown: (catalog module, its judge).
CHECKS = (
    (function_invokes, function_invokes.judge),
    (functional_parity, functional_parity.judge),
    (no_secrets_in_environment, no_secrets_in_environment.judge_validation),
    (no_secrets_in_code, no_secrets_in_code.judge_validation),
    (secret_retrieved_at_runtime, secret_retrieved_at_runtime.judge),
    (no_secret_in_logs, no_secret_in_logs.judge),
    (cloudtrail_attribution, cloudtrail_attribution.judge),
    (secret_cached, secret_cached.judge),
    (least_privilege, least_privilege.judge),
    (secret_encrypted, secret_encrypted.judge),
    (audit_logging, audit_logging.judge),
    (edge_association, edge_association.judge),
)
#: The residue checks: judged with the others, and alone by :meth:`Validation.residue_checks`.
RESIDUE_CHECKS = (
    (no_secret_residue, lambda ev: no_secret_residue.judge(ev.sweep, residue_gap(ev, "residue"))),
    (exposed_credentials_rotated, lambda ev: exposed_credentials_rotated.judge(ev.exposure,
                                                                                residue_gap(ev, "exposure"))),
)
CHECKS += RESIDUE_CHECKS
CHECK_IDS = tuple(module.SPEC.id for module, _ in CHECKS)


def residue_gap(ev: ValidationEvidence, source: str) -> str:
    return f"could not be evaluated: {ev.errors[source]}" if source in ev.errors else ""


@dataclass
class Summary:
    target: str
    function_name: str
    window_start: str
    window_end: str
    counts: dict

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def __str__(self) -> str:
        label = ("embedded LAB - simulated account, NOT production evidence" if self.target == "lab"
                 else "AWS account")
        c = self.counts
        return (f"Functional validation of {self.function_name} on target {self.target} ({label})\n"
                f"invocation window: {self.window_start} .. {self.window_end}\n"
                f"checks: {c.get(PASS, 0)} passed, {c.get(FAIL, 0)} failed, {c.get(WARN, 0)} warned, "
                f"{c.get(SKIP, 0)} skipped")


class Validation:
    """The validation of one migrated function: invoke, collect, judge.

    Parameters
    ----------
    target:
        :class:`~runbook_lib.session.Target` (lab or aws).
    ledger:
        The run's :class:`~runbook_lib.ledger.Ledger` (what the implementation did).
    run_dir:
        Run folder for the evidence files.
    function_name:
        The migrated function; empty means the ledger's ``function_name``.
    invocations:
        Invocations on a warm execution environment.
    payload:
        Event sent to the function (JSON text or a dict).
    trail_wait_seconds:
        How long to poll CloudTrail for the function's GetSecretValue; -1: target default.
    scanner:
        A :class:`runbook_lib.scanning.Scanner`; default one built with the run's fingerprinter
        and ``allowlist_path`` (a committed allowlist file; ``runbook run --allowlist``).
    fingerprinter:
        Default: the run's (``RUNBOOK_FINGERPRINT_KEY``).
    live_probe:
        Assume the role and read the secret and a decoy as it; ``None``: when the role's
        trust policy names the operator (on every target).
    retrieval_log_pattern:
        A regular expression for the function's own "fetched the secret" log line: extra
        evidence when given; never required (CloudTrail proves the fetch).
    cache_ttl_seconds:
        The function's secret cache TTL; -1: its ``SECRET_TTL_SECONDS`` variable, else none
        (one fetch per execution environment over the window).
    """

    def __init__(self, target, ledger, run_dir, function_name: str = "", invocations: int = 5,
                 payload: Any = "{}", trail_wait_seconds: float = -1, scanner=None,
                 fingerprinter: Fingerprinter | None = None, live_probe: bool | None = None,
                 poll_seconds: float = 30, progress: Callable | None = None, retrieval_log_pattern: str = "",
                 cache_ttl_seconds: float = -1, allowlist_path: str = ""):
        self.target, self.ledger, self.run_dir = target, ledger, Path(run_dir)
        self.function_name = function_name or ledger.context.get("function_name", "")
        if not self.function_name:
            raise InputError("function_name", "no function given and none in the run's ledger: "
                             "pass the migrated function's name")
        if int(invocations) < 1:
            raise InputError("invocations", "must be at least 1")
        self.count = int(invocations)
        self.payload = parse_payload(payload)
        self.retrieval_log_pattern = check_pattern(retrieval_log_pattern)
        self.cache_ttl_seconds = float(cache_ttl_seconds)
        wait = float(trail_wait_seconds)
        self.trail_wait_seconds = DEFAULT_TRAIL_WAIT.get(target.name, 900) if wait < 0 else wait
        self.fingerprinter = fingerprinter or Fingerprinter()
        self._scanner, self.allowlist_path = scanner, allowlist_path
        self.live_probe, self.poll_seconds, self.progress = live_probe, poll_seconds, progress
        self.invocations: list[dict] = []
        self.window: tuple = ()
        self.evidence: ValidationEvidence | None = None
        self.checks: list[Check] = []

    @property
    def scanner(self):
        if self._scanner is None:
            from .scanning import Scanner
            self._scanner = Scanner(fingerprinter=self.fingerprinter, allowlist=self.allowlist_path or None)
        return self._scanner

    def collection(self) -> Collection:
        return Collection(self.target, self.ledger, self.scanner, self.fingerprinter, run_dir=self.run_dir,
                          trail_wait_seconds=self.trail_wait_seconds, poll_seconds=self.poll_seconds,
                          live_probe=self.live_probe)

    def _write(self, name: str, doc: dict) -> None:
        evidence.write_evidence(self.run_dir, name, {"target": self.target.name, "function_name": self.function_name,
                                                     **doc})

    # -- 1. invoke ---------------------------------------------------------------------------
    def invoke(self):
        """Invoke the function N times, record the window, write ``invocations.json``.

        Returns
        -------
        pandas.DataFrame
            One row per invocation (no response values: their shape only).
        """
        import pandas as pd

        start = utc()
        self.invocations = evidence.invoke_function(self.target.client("lambda"), self.function_name,
                                                    self.payload, self.count, progress=self.progress)
        self.window = (start, utc())
        self._write("invocations.json", {"window": {"start": evidence.iso(start), "end": evidence.iso(self.window[1])},
                                         "count": self.count, "payload_shape": response_shape(self.payload),
                                         "invocations": self.invocations})
        columns = ["index", "start", "duration_ms", "status_code", "function_error", "http_status",
                   "executed_version"]
        return pd.DataFrame([{c: i[c] for c in columns} for i in self.invocations], columns=columns)

    # -- 2. collect --------------------------------------------------------------------------
    def collect(self) -> dict:
        """Read every source into :attr:`evidence`; write the evidence files.

        Returns
        -------
        dict
            What was read (counts) and what could not be read, per source.
        """
        if not self.invocations:
            raise InputError("invocations", "call invoke() before collect()")
        c = self.collection()
        ev = new_evidence(c, self.function_name, self.invocations, *self.window,
                          retrieval_log_pattern=self.retrieval_log_pattern, cache_ttl_seconds=0)
        self.evidence = collect(c, ev)
        ev.cache_ttl_seconds = self._ttl(ev)
        return {"log_events": len(ev.log_events), "cloudtrail_events": len(ev.trail_rows), "role": ev.role_name,
                "secret": ev.secret_arn, "errors": dict(ev.errors)}

    def _ttl(self, ev: ValidationEvidence) -> float:
        if self.cache_ttl_seconds >= 0:
            return self.cache_ttl_seconds
        try:
            return max(float(ev.environment.get(TTL_VARIABLE) or 0), 0.0)
        except ValueError:
            return 0.0

    # -- 3. checks ------------------------------------------------------------------------------
    def run_checks(self) -> list[Check]:
        """Every check of :data:`CHECKS` on the collected evidence; invokes and collects first if not done."""
        if not self.invocations:
            self.invoke()
        if self.evidence is None:
            self.collect()
        self.checks = [self._judge(module, judge) for module, judge in CHECKS]
        return self.checks

    def check(self, check_id: str) -> Check:
        """One check of :data:`CHECKS` on the collected evidence (``collect()`` first)."""
        if self.evidence is None:
            raise InputError("check", "call invoke() and collect() before judging a check")
        for module, judge in CHECKS:
            if module.SPEC.id == check_id:
                return self._judge(module, judge)
        raise InputError("check", f"{check_id!r} is not a validation check ({', '.join(CHECK_IDS)})")

    def _judge(self, module, judge) -> Check:
        return make_check(module.SPEC.id, PHASE, judge(self.evidence), notebook=NOTEBOOK,
                          evidence={"target": self.target.name})

    def residue_checks(self) -> list[Check]:
        """``no-secret-residue`` and ``exposed-credentials-rotated`` on a fresh sweep (no invocation needed).

        Every published version's environment is read again (one paged
        ListVersionsByFunction), so a later call sees what close-out deleted.
        """
        c = self.collection()
        now = utc()
        ev = new_evidence(c, self.function_name, [], now, now)
        run_sources(ev, (("residue", lambda: read_residue(c, ev)), ("exposure", lambda: read_exposure(c, ev))))
        return [make_check(module.SPEC.id, PHASE, judge(ev), notebook=NOTEBOOK, evidence={"target": self.target.name})
                for module, judge in RESIDUE_CHECKS]

    # -- 4. summary, tables, chart ----------------------------------------------------------------
    def summary(self) -> Summary:
        """Passed/failed/warned/skipped, the invocation window and the target, for the notebook's top."""
        counts = {s: sum(1 for c in self.checks if c.status == s) for s in (PASS, FAIL, WARN, SKIP)}
        start, end = (evidence.iso(t) for t in self.window) if self.window else ("", "")
        return Summary(self.target.name, self.function_name, start, end, counts)

    def log_table(self):
        """The redacted log lines since the deployment as a DataFrame (time, stream, message)."""
        import pandas as pd

        from .validation_collect import EXCERPT_LINES

        rows = self.evidence.excerpt[-EXCERPT_LINES:] if self.evidence else []
        return pd.DataFrame(rows, columns=["time", "stream", "message"])

    def cloudtrail_table(self):
        """GetSecretValue events on the secret as a DataFrame (who, from where, when)."""
        rows = self.evidence.trail_rows if self.evidence else []
        frame = evidence.cloudtrail_frame(rows)
        frame["by the function"] = [self.evidence.attributed(r) for r in rows]
        return frame

    def cache_chart(self, path: str | Path | None = None):
        """PNG of invocations vs the function's GetSecretValue calls (written to the run folder)."""
        from .charts import cache_chart

        path = Path(path) if path else self.run_dir / "secret_cache.png"
        rows = self.evidence.fetches_in_window() if self.evidence else []
        return cache_chart(self.invocations, rows, path,
                           title=f"{self.function_name}: invocations vs GetSecretValue ({self.target.name})")


def parse_payload(payload: Any) -> Any:
    if isinstance(payload, (str, bytes)):
        try:
            return json.loads(payload or "{}")
        except ValueError as exc:
            raise InputError("payload", f"not valid JSON ({exc.__class__.__name__})") from None
    return payload


def check_pattern(pattern: str) -> str:
    """``retrieval_log_pattern``: a regular expression, or empty."""
    try:
        re.compile(pattern or "")
    except re.error as exc:
        raise InputError("retrieval_log_pattern", f"not a regular expression ({exc.msg})") from None
    return pattern or ""
