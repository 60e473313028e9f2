"""Backout step ``remove`` (``mode="remove"``): delete the functions the runbook created, when tagged."""

from __future__ import annotations

from .. import functions
from ..exceptions import ChangeRefused
from ..ledger import MANAGED_BY_TAG
from ..records import FunctionCreated
from ..steps import BLOCKED, DELETE, NONE
from .undo import RecordUndo


class FunctionRemove(RecordUndo):
    name = "remove"
    permissions = ("lambda:GetFunction", "lambda:ListTags", "lambda:DeleteFunction")
    kinds = (FunctionCreated,)

    @staticmethod
    def _name(record: FunctionCreated) -> str:
        return record.name or record.resource.split(":")[-1]

    def active(self):
        return [r for r in super().active() if r.action == "created"]

    def check(self, record):
        name = self._name(record)
        if not functions.exists(self.c.lam, name):
            return NONE, "already deleted"
        config = functions.get_configuration(self.c.lam, name)
        if config["FunctionArn"] != record.resource and name != record.resource:
            return BLOCKED, "function ARN differs from the ledger's: not deleting it"
        tags = functions.function_tags(self.c.lam, config["FunctionArn"])
        if tags.get(MANAGED_BY_TAG[0]) != MANAGED_BY_TAG[1]:
            return BLOCKED, "function lacks the runbook's managed-by tag: not deleting it"
        return DELETE, "delete the function the runbook created (seed backout plan)"

    def plan(self):
        rows = [self.c.row(self.name, r.resource, *self.check(r), r) for r in self.active()]
        if self.c.ledger.latest(FunctionCreated, self.c.function_name) is None:
            rows.append(self.c.row(self.name, self.c.function_name, NONE, "not created by the runbook: restored, "
                                   "never deleted"))
        return rows

    def undo(self, record):
        functions.delete_function(self.c.lam, self._name(record))

    def confirm(self, record):
        if functions.exists(self.c.lam, self._name(record)):
            raise ChangeRefused(record.resource, "function still exists")
        return "deleted", True
