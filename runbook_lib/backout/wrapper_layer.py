"""Backout step ``wrapper-layer``: delete the function's wrapper layer version once the function no longer uses it.

The function's own layers are put back by the ``function`` step before this one runs. The layer
is this function's alone (``lambda-secrets-runbook-wrapper-<function>``), so whether anything
still uses it is read from the function's own configuration, not from a listing of the region's
functions. Published versions of the function that reference it keep working: Lambda keeps a
deleted layer version's content for the functions that use it.
"""

from __future__ import annotations

from .. import functions, wrapper
from ..exceptions import ChangeRefused
from ..records import WrapperLayer
from ..steps import BLOCKED, DELETE, NONE
from .function import FunctionRestore
from .undo import RecordUndo


class WrapperLayerUndo(RecordUndo):
    name = "wrapper-layer"
    permissions = ("lambda:GetLayerVersion", "lambda:GetFunctionConfiguration", "lambda:DeleteLayerVersion")
    kinds = (WrapperLayer,)
    none_reason = "no wrapper layer in the ledger"

    def _in_use(self, record) -> bool:
        return wrapper.function_uses(functions.get_configuration(self.c.lam, self.c.function_name) or {},
                                     record.resource)

    def check(self, record):
        live = wrapper.get_version(self.c.lam, record.resource)
        if live is None:
            return NONE, "already deleted"
        if not wrapper.is_runbook_layer(record.resource) or \
                not str(live.get("Description", "")).startswith(wrapper.DESCRIPTION_PREFIX):
            return BLOCKED, "not a version of the runbook's layer (name or description): not deleting it"
        if self._in_use(record):
            restore = FunctionRestore(self.c)
            if not self.c.function_changes() or restore.drift():
                return BLOCKED, "the function still uses it (its restore did not happen): left in place"
            return DELETE, "delete the layer version once the function step has put its own layers back"
        return DELETE, "delete the layer version: the function no longer uses it"

    def undo(self, record):
        if self._in_use(record):
            raise ChangeRefused(record.resource, "the function still uses the layer version after its restore")
        wrapper.delete_version(self.c.lam, record.resource)

    def confirm(self, record):
        if wrapper.get_version(self.c.lam, record.resource) is None:
            return "deleted", True
        raise ChangeRefused(record.resource, "layer version still exists")
