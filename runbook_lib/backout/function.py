"""Backout step ``function``: put back, from the snapshot version, exactly the fields the runbook changed.

Which fields: the ledger's ``function_config`` records say (``changed_fields``; the code when
a ``function_code`` record exists). A function changed outside the runbook since (its state
differs from every state the runbook recorded or intended) is left alone, with the reason.
"""

from __future__ import annotations

from .. import functions
from ..exceptions import ChangeRefused
from ..records import FunctionState
from ..steps import BLOCKED, NONE, UPDATE, Step


class FunctionRestore(Step):
    name = "function"
    permissions = ("lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
                   "lambda:UpdateFunctionConfiguration", "iam:PassRole")

    def __init__(self, ctx, options=None):
        self.c = ctx

    def differences(self) -> list[str]:
        """The changed fields in which the live function differs from the snapshot version."""
        return functions.config_differences(self.c.live(), self.c.snapshot_config(), self.c.changed_fields())

    def drift(self) -> str:
        """Why the live function is not what the runbook left (empty: it is)."""
        live = functions.state_marker(self.c.live())
        known = [dict(r.data) for r in self.c.ledger.records(FunctionState, active_only=True)
                 if r.resource == self.c.function_name]
        known += [i.details for i in self.c.ledger.pending_intents() if i.creates == "function_state"]
        if not known:
            return "the function differs from the snapshot but the runbook never changed it"
        if any(all(not value or live.get(key) == value for key, value in state.items()) for state in known):
            return ""
        changed = sorted({k for state in known for k, v in state.items() if v and live.get(k) != v})
        return (f"the function was changed outside the runbook after the implementation ({', '.join(changed)} "
                "differ from the ledger): left alone; restore by hand or re-run the implementation first")

    def plan(self):
        snap = self.c.snapshot()
        if not snap or not self.c.function_changes():
            return [self.c.row(self.name, self.c.function_name, NONE, "nothing of the function to restore", snap)]
        diffs = self.differences()
        if not diffs:
            return [self.c.row(self.name, self.c.function_name, NONE,
                               f"already equal to snapshot version {snap.version}", snap)]
        why = self.drift()
        if why:
            return [self.c.row(self.name, self.c.function_name, BLOCKED, why, snap)]
        return [self.c.row(self.name, self.c.function_name, UPDATE, f"restore {', '.join(diffs)} from version "
                           f"{snap.version}; WARNING: this puts {', '.join(snap.moved_variables)} back in the "
                           "environment variables (the test plan's finding returns)", snap)]

    def apply(self):
        if self.differences():
            why = self.drift()
            if why:
                raise ChangeRefused(self.c.function_name, why)
            functions.restore_version(self.c.lam, self.c.function_name, self.c.snapshot().version,
                                      self.c.changed_fields())

    def verify(self):
        snap = self.c.snapshot()
        if not snap:
            return "nothing to undo"
        diffs = self.differences()
        pending = [r for r in self.c.function_changes() if r.resource not in self.skip]
        if diffs:
            if not pending:
                return "nothing to undo"
            raise ChangeRefused(self.c.function_name, f"still differs from the snapshot: {', '.join(diffs)}")
        for record in pending:
            self.c.ledger.undo(record, f"restored from version {snap.version}")
        live = self.c.live()
        return (f"{', '.join(self.c.changed_fields())} equal version {snap.version} (CodeSha256 "
                f"{live['CodeSha256']}, {len(functions.environment(live))} variables)")
