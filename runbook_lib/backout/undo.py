"""The shape of a backout step over ledger records: check each, undo what needs it, confirm, mark undone.

A resource is undone only when its check says the runbook may (its tags for this
function, the ledger's ARN, no change since); a blocked one is left alone with the reason
and the other resources still go (the engine's ``CONTINUE`` policy). Each record is
marked undone once its state is confirmed, so a second backout plans nothing and a
partial one resumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import ChangeRefused
from ..records import Record
from ..steps import BLOCKED, DELETE, NONE, UPDATE, Step


@dataclass(frozen=True)
class UndoOptions:
    """The backout's own parameters, shared by its steps."""

    recovery_days: int = 7
    reactivate_access_keys: bool = False


class RecordUndo(Step):
    """A backout step over the active ledger records of ``kinds``; subclasses check, undo and confirm one."""

    kinds: tuple = ()
    none_reason = "nothing in the ledger"

    def __init__(self, ctx, options: UndoOptions):
        self.c, self.o = ctx, options

    def active(self) -> list[Record]:
        return [r for kind in self.kinds for r in self.c.ledger.records(kind, active_only=True)]

    def pending(self) -> list[Record]:
        """Active records this run may act on (what the plan blocked is in ``skip``)."""
        return [r for r in self.active() if r.resource not in self.skip
                and getattr(r, "policy_arn", None) not in self.skip]

    def check(self, record: Record) -> tuple[str, str]:
        """(plan action, reason) for one record, from the live account."""
        raise NotImplementedError

    def undo(self, record: Record) -> None:
        raise NotImplementedError

    def confirm(self, record: Record) -> tuple[str, bool]:
        """(what the account shows now, whether the record is undone); raise when it is not as it should be."""
        raise NotImplementedError

    def plan(self):
        rows = [self.c.row(self.name, r.resource, *self.check(r), r) for r in self.active()]
        return rows or [self.c.row(self.name, "-", NONE, self.none_reason)]

    def apply(self):
        for record in self.pending():
            if self.check(record)[0] in (DELETE, UPDATE):
                self.undo(record)

    def verify(self):
        lines = []
        for record in self.pending():
            how, undone = self.confirm(record)
            if undone:
                self.c.ledger.undo(record, how)
            lines.append(f"{record.resource}: {how}")
        return "; ".join(lines) or "nothing to undo"


class ScheduledDeletion(RecordUndo):
    """An undo that schedules the resource's deletion with a recovery window (secrets, keys).

    Subclasses say how to read the resource (:meth:`live`), when it is scheduled to go
    (:meth:`scheduled`), whether the runbook may prove it owns it (:meth:`owned`), and how to
    schedule it (:meth:`undo`).
    """

    what = "resource"

    def live(self, record: Record) -> dict | None:
        raise NotImplementedError

    def scheduled(self, live: dict) -> str:
        """When the resource goes ("" while it is not scheduled)."""
        raise NotImplementedError

    def owned(self, record: Record, live: dict) -> bool:
        raise NotImplementedError

    def delete_reason(self) -> str:
        raise NotImplementedError

    def check(self, record):
        live = self.live(record)
        if live is None:
            return NONE, "already deleted"
        if self.scheduled(live):
            return NONE, f"already scheduled for deletion ({self.scheduled(live)})"
        if not self.owned(record, live):
            return BLOCKED, f"{self.what} lacks the runbook's tags for this function: not deleting it"
        return DELETE, self.delete_reason()

    def confirm(self, record):
        live = self.live(record)
        if live is not None and not self.scheduled(live):
            raise ChangeRefused(record.resource, f"{self.what} not scheduled for deletion")
        return f"deletion scheduled ({self.scheduled(live) if live else 'deleted'})", True
