"""The change engine: one gate, one lock, one journal and one step runner for every change.

Implementation, backout and close-out are each a :class:`ChangeSequence`: a shared
:class:`~runbook_lib.change.context.ChangeContext`, ordered steps, and a run policy
(:data:`~runbook_lib.steps.STOP` or :data:`~runbook_lib.steps.CONTINUE`). The sequence
answers the notebook's verbs the same way for all three:

``plan()``
    every step's plan (no change), after the reconciliation rows when a crash left an
    interrupted create in the ledger.
``apply(progress)``
    refuses in one line, before any change, unless the object was built with
    ``apply=True`` and a change ticket (the library is the gate, not the notebook); under
    ``STOP`` also when any step's plan is blocked. Then it holds both locks
    (:mod:`~runbook_lib.change.locks`), journals start and end in the ledger, reconciles
    pending intents (:class:`~runbook_lib.change.intents.ReconcileStep`) and runs the steps.
``assertions()``
    each step's assertion (its ``verify``) as a catalog check ``<prefix><step>``.

Examples
--------
>>> impl = Implementation(target, ledger, "orders-api")          # doctest: +SKIP
>>> impl.apply()                                                   # doctest: +SKIP
Traceback (most recent call last):
InputError: apply: this Implementation was built with apply=False (plan only): ...
"""

from __future__ import annotations

from typing import Callable

from .. import catalog
from ..catalog import step_assertion
from ..checks import Check
from ..exceptions import ChangeRefused, InputError, RunbookError
from ..steps import STOP, PlanRow, RunPolicy, Step, StepResult, StepSequence, blocked_rows, require_ticket, run_steps
from . import locks
from .context import ChangeContext
from .intents import ReconcileStep


class ChangeSequence(StepSequence):
    """Base of :class:`Implementation`, :class:`Backout` and :class:`Closeout`.

    Subclasses set ``notebook``, ``phase``, ``what`` (the journal's word for the change),
    ``policy`` and ``check_prefix``, call :meth:`_start` with their context, then fill ``steps``.
    """

    notebook: str = ""
    phase: str = ""
    what: str = "change"
    policy: RunPolicy = STOP
    check_prefix: str = ""

    def _start(self, ctx: ChangeContext, apply: bool, change_ticket: str) -> None:
        require_ticket(apply, change_ticket)
        self.ctx = ctx
        self.may_apply = bool(apply)
        self.change_ticket = change_ticket
        self.reconcile = ReconcileStep(ctx)
        self.steps: list[Step] = []
        self.results: list[StepResult] = []

    # -- the verbs ------------------------------------------------------------------------------
    def permissions(self) -> list[str]:
        """Every IAM action the steps, the reconciliation and the locks need."""
        needed = {p for step in [self.reconcile, *self.steps] for p in step.permissions}
        return sorted(needed | set(locks.PERMISSIONS))

    def plan(self) -> list[PlanRow]:
        rows = self.reconcile.plan() if self.reconcile.pending() else []
        return rows + [row for step in self.steps for row in step.plan()]

    def apply(self, progress: Callable[[str], None] | None = None) -> list[StepResult]:
        """Apply every step in order under both locks, asserting each (see the module docstring)."""
        self._gate()
        if not self.policy.continue_past_blocked:
            blocked = blocked_rows(self.steps)
            if blocked:
                raise ChangeRefused(blocked[0].resource, "; ".join(r.reason for r in blocked)
                                    + "; nothing was changed")
        ledger = self.ctx.ledger
        with locks.holding(self.ctx, self.what):
            ledger.log(self.notebook, f"{self.what} started (change ticket {self.change_ticket}"
                       f"{self._journal_note()})")
            try:
                if self.reconcile.pending():
                    self._reconcile(progress)
                self.results = run_steps(self.steps, apply=True, progress=progress, policy=self.policy)
            except RunbookError as exc:
                ledger.log(self.notebook, f"{self.what} stopped: {exc.message}")
                raise
            ledger.log(self.notebook, f"{self.what} finished: "
                       + ", ".join(f"{r.step}={r.status}" for r in self.results))
        return self.results

    def _reconcile(self, progress: Callable[[str], None] | None) -> None:
        """Resolve every pending intent, also those whose create made nothing.

        Not through :func:`run_steps`: closing an intent changes only the ledger, so its plan row
        says ``none``, and ``run_steps`` applies a step only when its plan changes something.
        """
        self.reconcile.apply()
        detail = self.reconcile.verify()
        if progress:
            progress(f"{self.reconcile.name}: {detail}")

    def _journal_note(self) -> str:
        """More for the journal's start line (backout: its mode)."""
        return ""

    def _gate(self) -> None:
        if not self.may_apply:
            raise InputError("apply", f"this {type(self).__name__} was built with apply=False (plan only): "
                             "build it with apply=True and a change_ticket to make the change; nothing was changed")
        require_ticket(True, self.change_ticket)

    # -- the assertions as checks -------------------------------------------------------------------
    def assertions(self, applied: bool, warn: Callable[[Step], str] | None = None) -> list[Check]:
        """``<prefix><step>`` per step: SKIP while nothing was applied, else its ``verify`` judged."""
        out = []
        for step in self.steps:
            check_id = f"{self.check_prefix}{step.name}"
            if not applied:
                verdict = catalog.Verdict(catalog.SKIP, "plan only: nothing was applied")
            else:
                verdict = step_assertion.judge(*_asserted(step), warning=warn(step) if warn else "")
            out.append(catalog.make_check(check_id, self.phase, verdict, notebook=self.notebook))
        return out


def _asserted(step: Step) -> tuple[str, str]:
    """(evidence line, failure) of one step's assertion; exactly one of them is set."""
    try:
        return step.verify(), ""
    except RunbookError as exc:
        return "", exc.message
