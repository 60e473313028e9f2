"""What every step of a change shares: clients, the function, its snapshot, the moved variables, the ledger.

One :class:`ChangeContext` is built per implementation, backout or close-out and handed to
each of its steps, so a step reads the account and the ledger the same way its siblings
do (typed records, never ``data`` keys) and no step reaches into another's internals.
Clients are created on first use from the injected :class:`~runbook_lib.session.Target`.

Examples
--------
>>> ctx = ChangeContext(target, ledger, "orders-api", change_ticket="CHG-1")   # doctest: +SKIP
>>> ctx.snapshot().version, ctx.moved_variables()                             # doctest: +SKIP
('3', ['DB_PASSWORD', 'PARTNER_API_KEY'])
"""

from __future__ import annotations

from functools import cached_property

from .. import functions, secrets_store
from ..exceptions import InputError
from ..ledger import Ledger
from ..records import Closeout, FunctionConfig, FunctionState, Record, Snapshot
from ..redaction import Fingerprinter
from ..session import Target
from ..steps import PlanRow

#: Remediations the test plan's findings carry (see runbook_lib.rules).
MOVE = "move-to-secrets-manager"
USE_ROLE = "remove-use-role"


def scanner_class():
    """The detection engine's class, or None where it is not installed."""
    try:
        from ..scanning import Scanner
    except ImportError:  # a partial install: the ledger's findings are used meanwhile
        return None
    return Scanner


class ChangeContext:
    """Clients, the function, its snapshot and the ledger, shared by the steps of one change."""

    def __init__(self, target: Target, ledger: Ledger, function_name: str, change_ticket: str = "",
                 scanner=None, fingerprinter: Fingerprinter | None = None):
        self.target, self.ledger, self.function_name = target, ledger, function_name
        self.change_ticket = change_ticket
        self.fingerprinter = fingerprinter or Fingerprinter()
        self._scanner = scanner

    # -- clients (created on first use by the target, which caches them) --------------------------
    lam = property(lambda self: self.target.client("lambda"))
    sm = property(lambda self: self.target.client("secretsmanager"))
    kms = property(lambda self: self.target.client("kms"))
    iam = property(lambda self: self.target.client("iam"))
    cf = property(lambda self: self.target.client("cloudfront", region="us-east-1"))

    @property
    def scanner(self):
        """The injected scanner, or one built with the run's fingerprinter (None if unavailable)."""
        if self._scanner is None and scanner_class() is not None:
            self._scanner = scanner_class()(fingerprinter=self.fingerprinter)
        return self._scanner

    # -- the function ----------------------------------------------------------------------------
    def live(self) -> dict:
        return functions.get_configuration(self.lam, self.function_name)

    def function_exists(self) -> bool:
        return functions.exists(self.lam, self.function_name)

    @cached_property
    def function_arn(self) -> str:
        return self.live()["FunctionArn"]

    @cached_property
    def arn_parts(self) -> dict:
        return functions.arn_parts(self.function_arn)

    @property
    def partition(self) -> str:
        return self.arn_parts["partition"]

    @property
    def region(self) -> str:
        return self.arn_parts["region"]

    @property
    def account(self) -> str:
        return self.arn_parts["account"]

    @property
    def tags(self) -> dict:
        """The tags the runbook puts on what it creates for this function."""
        return secrets_store.runbook_tags(self.function_name, self.change_ticket)

    def managed(self, tags: dict) -> bool:
        """True when ``tags`` say the runbook made the resource for this function."""
        return secrets_store.is_runbook_managed(tags, self.function_name)

    # -- the snapshot and what moved ----------------------------------------------------------------
    def snapshot(self) -> Snapshot | None:
        return self.ledger.snapshot(self.function_name)

    def snapshot_config(self) -> dict | None:
        """The snapshot version's configuration; an :class:`InputError` when it no longer exists."""
        snap = self.snapshot()
        return functions.get_configuration(self.lam, self.function_name, snap.version) if snap else None

    def moved_variables(self) -> list[str]:
        snap = self.snapshot()
        return list(snap.moved_variables) if snap else []

    def removed_variables(self) -> list[str]:
        snap = self.snapshot()
        return list(snap.removed_variables) if snap else []

    def findings(self) -> list[dict]:
        """The test plan's findings for ``$LATEST`` of this function, else a scan of its environment."""
        function_arn = self.function_arn
        baseline = [f for f in self.ledger.baseline.get("findings", []) or []
                    if f.get("version") in (None, "", "$LATEST")
                    and (f.get("function") in (None, "", self.function_name) or f.get("function_arn") == function_arn)]
        if baseline:
            return baseline
        if self.scanner is None:
            raise InputError("run_dir", "the ledger has no test plan findings and the scanner is not "
                             "available: run the test plan notebook first")
        found = []
        for finding in self.scanner.scan_environment(functions.environment(self.live())):
            row = finding.to_dict() if hasattr(finding, "to_dict") else dict(finding)
            row.setdefault("location", "environment")
            row["function"] = self.function_name
            found.append(row)
        return found

    # -- ledger helpers ---------------------------------------------------------------------------
    def run_id(self) -> str:
        """Names this run (ledger creation time, run folder, function): the seed of its tokens."""
        return f"{self.ledger.doc.get('created', '')}|{self.ledger.path.parent.name}|{self.function_name}"

    def token(self, purpose: str) -> str:
        """A deterministic idempotency token for one create or write of this run."""
        return secrets_store.request_token(self.run_id(), purpose)

    def record_function_state(self, step: str) -> FunctionState:
        """The function as the runbook left it (names and hashes): what backout's drift check compares."""
        marker = functions.state_marker(self.live())
        return self.ledger.put(FunctionState(resource=self.function_name, action="changed", step=step, **marker))

    def function_changes(self) -> list[Record]:
        """Active records of what the runbook did to the function's code and configuration."""
        kinds = (FunctionConfig, "function_code", FunctionState)
        return [r for kind in kinds for r in self.ledger.records(kind, active_only=True)
                if r.resource == self.function_name]

    def changed_fields(self) -> tuple[str, ...]:
        """The fields of the function the runbook changed, by its ledger (what backout restores and compares).

        A run that never reached the function compares what the change is about: its
        environment and code. A record from before ``changed_fields`` existed means every field.
        """
        configs = [r for r in self.ledger.records(FunctionConfig) if r.resource == self.function_name]
        if not configs:
            return ("Environment", "code")
        fields = {f for r in configs for f in (r.changed_fields or functions.CHANGEABLE_FIELDS)}
        if any(r.resource == self.function_name for r in self.ledger.records("function_code")):
            fields.add("code")
        return tuple(f for f in functions.CHANGEABLE_FIELDS if f in fields)

    def row(self, step: str, resource: str, action: str, reason: str, record: Record | None = None,
            advisory: bool = False) -> PlanRow:
        """A plan row; ``record`` names the ledger record the action comes from; ``advisory``: a
        blocked row that does not stop the change."""
        source = f"ledger {record.kind} {record.action} {record.at} ({record.step})" if record else ""
        return PlanRow(step, resource, action, reason, source, advisory)


# -- where a run stands: backed out, closed out ----------------------------------------------------
def closeout_refusal(ledger: Ledger, function_name: str) -> str:
    """Why a backout is refused once this run was closed out; empty when it was not."""
    record = ledger.latest(Closeout, function_name)
    if record is None:
        return ""
    return (f"this run was closed out at {record.at} (change ticket {record.change_ticket or '?'}): "
            f"the backout snapshot (version {record.snapshot_version or '?'}) is deleted, so there is "
            "nothing to restore the function from; restore a known configuration by hand or run a new "
            "change instead")


def backed_out(ledger: Ledger) -> bool:
    """True when the function's change was undone (and not made again since)."""
    configs = ledger.records(FunctionConfig)
    return bool(configs) and not any(r.active for r in configs)
