"""Plan/apply/assert steps: the shape of every change the runbook makes.

Each :class:`Step` declares the IAM permissions it needs next to its code (so the
operator policies in ``policies/`` can be checked against them), computes a plan from
the live account and the ledger without changing anything, applies only when asked,
and then asserts the resulting state before the next step runs, like the assert step
of an AWS Systems Manager runbook.

:func:`run_steps` plans every step, and with ``apply=True`` applies them in order,
re-planning each one just before applying it so a re-run after success is a no-op and
a re-run after a failure resumes where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Sequence

from .exceptions import ChangeRefused, InputError

CREATE, UPDATE, DELETE, NONE, BLOCKED = "create", "update", "delete", "none", "blocked"
ACTIONS = (CREATE, UPDATE, DELETE, NONE, BLOCKED)


@dataclass
class PlanRow:
    """One line of a plan: what a step would do to one resource, and why."""

    step: str
    resource: str
    action: str
    reason: str
    source: str = ""  # e.g. the ledger entry a backout action comes from

    def __post_init__(self):
        if self.action not in ACTIONS:
            raise ValueError(f"plan action {self.action!r} not in {ACTIONS}")


class Step:
    """Base class: subclasses set ``name``, ``title``, ``permissions`` and implement the three verbs."""

    name: str = ""
    title: str = ""
    permissions: tuple[str, ...] = ()

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


def run_steps(steps: Sequence[Step], apply: bool,
              progress: Callable[[str], None] | None = None) -> list[StepResult]:
    """Plan (and with ``apply`` apply and verify) each step in order.

    Stops at the first failure by re-raising it: the ledger already says what exists,
    and a later re-run resumes because each step re-plans against the live account.
    """
    results = []
    for step in steps:
        started = time.monotonic()
        rows = step.plan()
        actions = {r.action for r in rows}
        if BLOCKED in actions:
            reasons = "; ".join(r.reason for r in rows if r.action == BLOCKED)
            if apply:
                raise ChangeRefused(step.name, reasons)
            results.append(StepResult(step.name, BLOCKED, "blocked", reasons, 0.0))
            continue
        if not apply:
            results.append(StepResult(step.name, ",".join(sorted(actions)) or NONE, "planned",
                                      "; ".join(r.reason for r in rows), 0.0))
            continue
        changed = actions - {NONE}
        if changed:
            if progress:
                progress(f"{step.name}: applying ({', '.join(sorted(changed))})")
            step.apply()
        detail = step.verify()
        results.append(StepResult(step.name, ",".join(sorted(changed)) or NONE,
                                  "applied" if changed else "unchanged", detail,
                                  round(time.monotonic() - started, 3)))
        if progress:
            progress(f"{step.name}: {'applied' if changed else 'unchanged'} - {detail}")
    return results


def require_ticket(apply: bool, change_ticket: str) -> None:
    """``apply=True`` needs a change ticket; checked before any change is made."""
    if apply and not str(change_ticket or "").strip():
        raise InputError("change_ticket", "apply=True needs a change ticket "
                         "(e.g. -p change_ticket CHG-1234); nothing was changed")
