"""Backout: undo exactly what the ledger says the implementation did, in reverse order.

:class:`Backout` reads the run's ledger and, through the change engine
(:mod:`runbook_lib.change.engine`, policy ``CONTINUE``), runs one step per kind of resource,
in :data:`STEP_ORDER`: ``edge`` (remove or restore the viewer-request association; the
version and its replicas stay), ``access-keys`` (re-activate only when asked), ``function``
(the fields the runbook changed, back from the snapshot version: this reinstates the secrets
in the environment, and the function's own layers and wrapper), ``wrapper-layer`` (the
function's wrapper layer version, deleted once the function no longer uses it), ``grant`` (the runbook's
statements off the secret's resource policy), ``policy`` (an older run's identity policy:
detach, delete), ``role`` (a dedicated role the runbook made), ``secret`` (scheduled
deletion with a recovery window), ``kms-key`` (scheduled deletion) and, with
``mode="remove"``, ``remove`` (functions the runbook created).

Before them, a create a crash interrupted before its ledger write is reconciled by token
and tag, so backout removes it too. Ownership: a delete happens only when the resource
still carries the runbook's tags for this function and is the ARN the ledger recorded; a
function changed since the implementation is left alone with the reason. Each resource is
marked undone once its state is verified, so a second backout plans nothing and a partial
one resumes.
"""

from __future__ import annotations

from .. import catalog
from ..catalog import backout_checks
from ..change.context import ChangeContext, closeout_refusal
from ..change.engine import ChangeSequence
from ..checks import Check
from ..exceptions import ChangeRefused, InputError, RunbookError
from ..ledger import Ledger
from ..records import ADOPTED, CREATED
from ..session import Target
from ..steps import CONTINUE, PlanRow, StepResult, require_ticket
from . import states
from .access_keys import AccessKeyUndo
from .edge_trigger import EdgeUndo
from .function import FunctionRestore
from .grant import GrantUndo
from .kms_key import KmsKeyUndo
from .policy import PolicyUndo
from .remove import FunctionRemove
from .role import RoleUndo
from .secret import SecretUndo
from .undo import UndoOptions
from .wrapper_layer import WrapperLayerUndo

NOTEBOOK = "04_backout"
MODES = ("restore", "remove")
#: Every step, in the order it runs (the implementation's, reversed); ``remove`` only with mode=remove.
STEP_ORDER = (EdgeUndo, AccessKeyUndo, FunctionRestore, WrapperLayerUndo, GrantUndo, PolicyUndo, RoleUndo, SecretUndo,
              KmsKeyUndo, FunctionRemove)
#: Ledger kinds a backout leaves in place on purpose (they are reported, not orphans).
KEPT_KINDS = ("snapshot", "edge_version")


class Backout(ChangeSequence):
    """The backout notebook's object: validated inputs, steps, plan, apply, before/after, checks.

    Raises :class:`InputError` (nothing changed) for a bad ``mode``, a recovery window
    outside 7-30 (or 0 without ``force``), ``apply=True`` without ``change_ticket``, a
    ledger without a function or bound to another one; :class:`ChangeRefused` after a
    close-out; :meth:`apply` refuses unless built with ``apply=True``.
    """

    notebook, phase, what, policy = NOTEBOOK, "backout", "backout", CONTINUE

    def __init__(self, target: Target, ledger: Ledger, function_name: str = "", mode: str = "restore",
                 secret_recovery_days: int = 7, force: bool = False, change_ticket: str = "",
                 reactivate_access_keys: bool = False, apply: bool = False):
        if mode not in MODES:
            raise InputError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
        days = int(secret_recovery_days)
        if days == 0 and not force:
            raise InputError("secret_recovery_days", "0 deletes the secret without recovery: also pass force=True")
        if days != 0 and not 7 <= days <= 30:
            raise InputError("secret_recovery_days", f"{days} is outside Secrets Manager's 7-30 days (or 0 with force)")
        require_ticket(apply, change_ticket)
        ctx = self._context(target, ledger, function_name, change_ticket)
        self._start(ctx, apply, change_ticket)
        self.target, self.ledger, self.mode = target, ledger, mode
        self.options = UndoOptions(recovery_days=days, reactivate_access_keys=bool(reactivate_access_keys))
        if ledger.snapshot(ctx.function_name):
            ctx.snapshot_config()  # the snapshot version must still exist (close-out deletes it)
        self.steps = [cls(ctx, self.options) for cls in STEP_ORDER if cls is not FunctionRemove or mode == "remove"]
        self.before = states.states(ctx)
        self.refused: list[PlanRow] = []

    @staticmethod
    def _context(target: Target, ledger: Ledger, function_name: str, change_ticket: str) -> ChangeContext:
        function_name = function_name or ledger.context.get("function_name", "")
        if not function_name:
            raise InputError("run_dir", "this run's ledger names no function: pass function_name or the run folder "
                             "of the implementation")
        ledger.bind(function_name=function_name)
        refused = closeout_refusal(ledger, function_name)
        if refused:
            raise ChangeRefused(function_name, "backout refused: " + refused)
        return ChangeContext(target, ledger, function_name, change_ticket)

    def _journal_note(self) -> str:
        return f", mode {self.mode}"

    def apply(self, progress=None, raise_on_blocked: bool = False) -> list[StepResult]:
        """Undo step by step; a blocked resource is left alone, the other resources still run.

        What was left alone, and why, is in the results (status ``blocked``), in
        :attr:`refused` and in the ``backout-complete`` check (FAIL); with
        ``raise_on_blocked`` a :class:`ChangeRefused` naming it is raised at the end.
        """
        results = super().apply(progress)
        self.refused = [row for result in results for row in result.refused]
        if self.refused:
            left = "; ".join(f"{r.resource}: {r.reason}" for r in self.refused)
            self.ledger.log(NOTEBOOK, "left alone: " + left)
            if raise_on_blocked:
                raise ChangeRefused(self.refused[0].resource, "left alone: " + left)
        return results

    # -- evidence ---------------------------------------------------------------------------------
    def states(self) -> dict:
        """One line of state per ledger resource, for the before/after table."""
        return states.states(self.ctx)

    def before_after(self):
        """pandas DataFrame: kind, resource, before (at construction), after (now)."""
        import pandas as pd
        after = self.states()
        rows = [{"kind": k, "resource": r, "before": self.before.get((k, r), "-"), "after": after.get((k, r), "-")}
                for (k, r) in sorted(set(self.before) | set(after))]
        return pd.DataFrame(rows, columns=["kind", "resource", "before", "after"])

    def checks(self, invoke: bool | None = None) -> list[Check]:
        """``backout-complete``, ``function-restored`` and ``no-orphans`` (phase ``backout``).

        ``invoke``: call the function once and compare its response shape with the test
        plan's baseline; default: when the ledger holds a baseline shape.
        """
        verdicts = {"backout-complete": self._complete(), "function-restored": self._restored(invoke),
                    "no-orphans": self._orphans()}
        return [catalog.make_check(cid, self.phase, v, notebook=self.notebook) for cid, v in verdicts.items()]

    def _kept(self, record) -> bool:
        return record.kind in KEPT_KINDS or (record.kind == "access_key" and not self.options.reactivate_access_keys)

    def _complete(self) -> catalog.Verdict:
        records = self.ledger.records()
        active = [r for r in records if r.active]
        evidence = {"undone": [f"{r.kind} {r.resource}: {r.undone}" for r in records if r.undone and r.kind != "intent"],
                    "kept_on_purpose": [f"{r.kind} {r.resource}" for r in active if self._kept(r)]}
        left = [f"{r.kind} {r.resource}" for r in active if not self._kept(r)]
        refused = [f"{r.resource}: {r.reason}" for r in self.refused]
        return backout_checks.backout_complete(sum(r.kind != "intent" for r in records), left, refused, evidence)

    def _restored(self, invoke: bool | None) -> catalog.Verdict:
        snap = self.ctx.snapshot()
        if snap is None:
            return backout_checks.function_restored(None, [], [])
        compared = list(self.ctx.changed_fields())
        differences = FunctionRestore(self.ctx).differences()
        shape = self.ledger.baseline.get("response_shape")
        if differences or not (shape is not None if invoke is None else invoke):
            return backout_checks.function_restored(snap.version, differences, compared)
        return backout_checks.function_restored(snap.version, differences, compared, self._invocation(shape))

    def _invocation(self, baseline_shape) -> dict:
        from ..evidence import invocation_failures, invoke_function
        try:
            invocation = invoke_function(self.ctx.lam, self.ctx.function_name, {}, 1)[0]
        except RunbookError as exc:
            return {"failure": f"invocation failed: {exc.message}", "status": {}}
        failures = invocation_failures([invocation])
        status = {k: invocation.get(k) for k in ("status_code", "function_error", "http_status")}
        if not failures and baseline_shape is not None and invocation["response_shape"] != baseline_shape:
            failures = ["response shape differs from the baseline"]
        return {"failure": "; ".join(failures), "status": status}

    def _orphans(self) -> catalog.Verdict:
        remaining, windows = [], []
        for record in self.ledger.records():
            if record.action not in (CREATED, ADOPTED) or record.kind in KEPT_KINDS + ("access_key", "intent"):
                continue
            state = states.describe(self.ctx, record)
            if state in ("gone", "detached"):
                continue
            if state.startswith("scheduled for deletion") or state.startswith("PendingDeletion"):
                windows.append(f"{record.kind} {record.resource}: {state}")
            else:
                remaining.append(f"{record.kind} {record.resource}: {state}")
        remaining += [f"interrupted {i.creates} of {i.name}: not reconciled" for i in self.ledger.pending_intents()]
        return backout_checks.no_orphans(remaining + states.unrecorded(self.ctx), windows)


__all__ = ["Backout", "NOTEBOOK", "MODES", "STEP_ORDER", "KEPT_KINDS"]
