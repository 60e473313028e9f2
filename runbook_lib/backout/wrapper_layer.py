"""Backout step ``wrapper-layer``: delete the runbook's layer version once no function uses it.

The function's own layers are put back by the ``function`` step before this one runs. Another
function migrated with the same build still uses the version: it is left in place, said so,
and deleted by the backout of the last function that uses it.
"""

from __future__ import annotations

from .. import wrapper
from ..exceptions import ChangeRefused
from ..records import WrapperLayer
from ..steps import BLOCKED, DELETE, NONE
from .function import FunctionRestore
from .undo import RecordUndo


class WrapperLayerUndo(RecordUndo):
    name = "wrapper-layer"
    permissions = ("lambda:GetLayerVersion", "lambda:ListFunctions", "lambda:DeleteLayerVersion")
    kinds = (WrapperLayer,)
    none_reason = "no wrapper layer in the ledger"

    def _users(self, record) -> list[str]:
        return wrapper.functions_using(self.c.lam, record.resource)

    def check(self, record):
        live = wrapper.get_version(self.c.lam, record.resource)
        if live is None:
            return NONE, "already deleted"
        if not wrapper.is_runbook_layer(record.resource) or \
                not str(live.get("Description", "")).startswith(wrapper.DESCRIPTION_PREFIX):
            return BLOCKED, "not a version of the runbook's layer (name or description): not deleting it"
        users = self._users(record)
        mine = f"{self.c.function_name}:$LATEST"
        if mine in users:
            restore = FunctionRestore(self.c)
            if not self.c.function_changes() or restore.drift():
                return BLOCKED, "the function still uses it (its restore did not happen): left in place"
            users.remove(mine)  # the function step, before this one, puts the function's own layers back
            if not users:
                return DELETE, "delete the layer version once the function step has put its own layers back"
        if users:
            return NONE, f"left in place: still used by {', '.join(users)}"
        return DELETE, "delete the layer version: no function uses it"

    def undo(self, record):
        wrapper.delete_version(self.c.lam, record.resource)

    def confirm(self, record):
        if wrapper.get_version(self.c.lam, record.resource) is None:
            return "deleted", True
        users = self._users(record)
        if users and f"{self.c.function_name}:$LATEST" not in users:
            return f"left in place: still used by {', '.join(users)} (their backout deletes it)", True
        raise ChangeRefused(record.resource, "layer version still exists")
