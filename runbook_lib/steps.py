"""Plan/apply/assert steps: the shape of every change the runbook makes.

Each :class:`Step` declares the IAM permissions it needs next to its code (so the
operator policies in ``policies/`` can be checked against them), computes a plan from
the live account and the ledger without changing anything, applies only when asked,
and then asserts the resulting state before the next step runs, like the assert step
of an AWS Systems Manager runbook (or a cloud-custodian dry run: everything runs but the
mutation).

:func:`run_steps` plans every step, and with ``apply=True`` applies them in order,
re-planning each one just before applying it so a re-run after success is a no-op and
a re-run after a failure resumes. Its :class:`RunPolicy` says what a blocked resource
does: :data:`STOP` (implementation, close-out) refuses the change, :data:`CONTINUE`
(backout) leaves that resource alone and carries on with the others.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Sequence

from .exceptions import ChangeRefused, InputError

CREATE, UPDATE, DELETE, NONE, BLOCKED = "create", "update", "delete", "none", "blocked"
#: Record in this run's ledger a resource the runbook made (an earlier run, or a create a crash
#: interrupted before its ledger write): no AWS change, but backout then knows to remove it.
ADOPT = "adopt"
ACTIONS = (CREATE, UPDATE, DELETE, ADOPT, NONE, BLOCKED)


@dataclass
class PlanRow:
    """One line of a plan: what a step would do to one resource, and why."""

    step: str
    resource: str
    action: str
    reason: str
    source: str = ""  # e.g. the ledger entry a backout action comes from
    #: A ``blocked`` row that does not stop the change: something only its owner can do (a secret
    #: hard-coded in code the strategy leaves alone); the step's check WARNs with it.
    advisory: bool = False

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"plan action {self.action!r} not in {ACTIONS}")


class Step:
    """Base class: subclasses set ``name``, ``title``, ``permissions`` and implement the three verbs.

    ``skip`` holds the resources the runner found blocked in this run (backout's policy):
    apply and verify leave them alone.
    """

    name: str = ""
    title: str = ""
    permissions: tuple[str, ...] = ()
    skip: frozenset = frozenset()

    def plan(self) -> list[PlanRow]:
        raise NotImplementedError

    def apply(self) -> None:
        raise NotImplementedError

    def verify(self) -> str:
        """Assert the state this step should have produced; return a one-line evidence text.

        Raise :class:`~runbook_lib.exceptions.ChangeRefused` (or another RunbookError)
        when the state is not as expected.
        """
        raise NotImplementedError


class StepSequence:
    """A change made of ordered steps (implementation, backout, close-out): the two verbs
    every such change answers the same way. Subclasses set ``self.steps``."""

    steps: list

    def permissions(self) -> list[str]:
        """Every IAM action the steps need (the operator policies in ``policies/`` cover them)."""
        return required_permissions(self.steps)

    def plan(self) -> list[PlanRow]:
        """What each step would do, from the live account and the ledger; changes nothing."""
        return [row for step in self.steps for row in step.plan()]


@dataclass
class StepResult:
    step: str
    action: str
    status: str  # applied / unchanged / blocked / failed / planned
    detail: str
    seconds: float
    refused: list = field(default_factory=list)  # PlanRows left alone (backout's policy)


@dataclass(frozen=True)
class RunPolicy:
    """What :func:`run_steps` does with a step whose plan has a blocked row."""

    name: str
    continue_past_blocked: bool


STOP = RunPolicy("stop at the first failure", continue_past_blocked=False)
CONTINUE = RunPolicy("leave blocked resources alone, continue with the rest", continue_past_blocked=True)


def plan_frame(rows: Iterable[PlanRow]):
    """A plan as a pandas DataFrame with the columns step, resource, action, reason (, source)."""
    import pandas as pd

    rows = [asdict(r) for r in rows]
    columns = ["step", "resource", "action", "reason", "source"]
    frame = pd.DataFrame(rows, columns=columns)
    if not frame["source"].astype(bool).any():
        frame = frame.drop(columns=["source"])
    return frame


def required_permissions(steps: Sequence[Step]) -> list[str]:
    return sorted({p for s in steps for p in s.permissions})


def stops(row: PlanRow) -> bool:
    """True for a blocked row that stops the change (an advisory one does not)."""
    return row.action == BLOCKED and not row.advisory


def blocked_rows(steps: Sequence[Step]) -> list[PlanRow]:
    return [row for step in steps for row in step.plan() if stops(row)]


def run_steps(steps: Sequence[Step], apply: bool, progress: Callable[[str], None] | None = None,
              policy: RunPolicy = STOP) -> list[StepResult]:
    """Plan (and with ``apply`` apply and verify) each step in order.

    Under :data:`STOP` a blocked step raises :class:`ChangeRefused` and the first failure is
    re-raised: the ledger already says what exists, and a re-run resumes because each step
    re-plans against the live account. Under :data:`CONTINUE` a blocked resource is left
    alone (the step's ``skip``) and reported in its result; a step blocked entirely is skipped.
    """
    results = []
    for step in steps:
        started = time.monotonic()
        rows = step.plan()
        blocked = [r for r in rows if stops(r)]
        changed = sorted({r.action for r in rows} - {NONE, BLOCKED})
        reasons = "; ".join(f"{r.resource}: {r.reason}" if policy.continue_past_blocked else r.reason for r in blocked)
        if blocked and (not apply or not policy.continue_past_blocked or not changed):
            if apply and not policy.continue_past_blocked:
                raise ChangeRefused(step.name, reasons)
            results.append(StepResult(step.name, BLOCKED, "blocked", reasons, 0.0, blocked))
            _say(progress, apply, f"{step.name}: blocked - {reasons}")
            continue
        if not apply:
            results.append(StepResult(step.name, ",".join(sorted({r.action for r in rows})) or NONE, "planned",
                                      "; ".join(r.reason for r in rows), 0.0))
            continue
        step.skip = frozenset(r.resource for r in blocked)
        if changed:
            _say(progress, True, f"{step.name}: applying ({', '.join(changed)})")
            step.apply()
        detail = step.verify() + (f"; left alone: {reasons}" if blocked else "")
        status = "applied" if changed else "unchanged"
        results.append(StepResult(step.name, ",".join(changed) or NONE, status, detail,
                                  round(time.monotonic() - started, 3), blocked))
        _say(progress, True, f"{step.name}: {status} - {detail}")
    return results


def _say(progress: Callable[[str], None] | None, apply: bool, line: str) -> None:
    if progress and apply:
        progress(line)


def require_ticket(apply: bool, change_ticket: str) -> None:
    """``apply=True`` needs a change ticket; checked before any change is made."""
    if apply and not str(change_ticket or "").strip():
        raise InputError("change_ticket", "apply=True needs a change ticket "
                         "(e.g. -p change_ticket CHG-1234); nothing was changed")
