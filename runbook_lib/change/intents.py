"""No crash window loses a resource: intents before creates, write-ahead records, reconciliation.

A process can die (a killed kernel, a lost laptop) between an AWS call that creates
something and the ledger write that records it. Two rules close that window:

* **Intent before a create** whose identifier AWS assigns (a secret's ARN suffix, a KMS key
  id, a version number): :func:`intent` writes an :class:`~runbook_lib.records.Intent`
  naming the deterministic name and the idempotency token (Secrets Manager's
  ``ClientRequestToken``; for the others a token tag or a token in the version's
  description, beside the runbook's tags), then makes the call. The block records the
  resource and the intent is resolved. If the process dies, the intent stays pending.
* **Write-ahead record** where the identifier is known before the call (a policy
  attachment, a key's deactivation, an edge association): :func:`write_ahead` puts the
  record first. Undoing something that never happened is harmless: every undo step
  checks the live state first.

Either way, when AWS answers the call with an error (it refused: nothing was made), the
intent or record is closed at once; a transport failure (timeout, connection lost) leaves
it for reconciliation, because the call may have gone through.

:class:`ReconcileStep` runs first under every change's lock (implementation, backout,
close-out): for each pending intent it looks the resource up by token and tag
(:mod:`runbook_lib.change.finders`), records what exists and resolves the intent.

Examples
--------
>>> with intent(ledger, "secret", name, token, step="secret"):               # doctest: +SKIP
...     arn = secrets_store.create_secret(sm, name, values, None, tags, token, "...")
...     ledger.put(finders.secret_record(arn, name, "aws/secretsmanager", moved, "secret"))
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import botocore.exceptions

from ..exceptions import AwsCallError, ChangeRefused
from ..ledger import Ledger
from ..records import Intent, Record
from ..steps import ADOPT, NONE, PlanRow, Step
from . import finders

#: botocore's transport failures (as AwsCallError codes): the request may have been carried out.
_TRANSPORT = {cls.__name__ for cls in vars(botocore.exceptions).values()
              if isinstance(cls, type) and issubclass(cls, (botocore.exceptions.HTTPClientError,
                                                           botocore.exceptions.ConnectionError,
                                                           botocore.exceptions.IncompleteReadError))}
#: Words of server-side error codes after which AWS may or may not have done the work.
_SERVER_SIDE = ("Internal", "Unavailable", "Timeout", "ServiceException", "ServiceFailure")


def made_nothing(exc: BaseException) -> bool:
    """True when ``exc`` proves the call changed nothing: AWS answered it with a client error.

    Transport failures, server-side errors and anything that is not an AWS answer (a dying
    process, a stopped lab) are not proof: the resource may exist.
    """
    if not isinstance(exc, AwsCallError) or exc.code in _TRANSPORT:
        return False
    return not any(word in exc.code for word in _SERVER_SIDE)


@contextlib.contextmanager
def intent(ledger: Ledger, creates: str, name: str, token: str, step: str,
           details: dict | None = None) -> Iterator[Intent]:
    """Write down a create before making it; resolve it when the block has recorded the result."""
    pending = ledger.put(Intent(resource=f"{creates}:{token}", step=step, creates=creates, name=name,
                                token=token, details=dict(details or {})))
    try:
        yield pending
    except AwsCallError as exc:
        if made_nothing(exc):
            ledger.resolve(pending, f"nothing made: {exc.operation} refused ({exc.code})")
        raise
    ledger.resolve(pending, f"made and recorded ({creates} {name})")


@contextlib.contextmanager
def write_ahead(ledger: Ledger, record: Record) -> Iterator[Record]:
    """Record a change before making it; take the record back when AWS refuses the call.

    Taking it back puts the record it replaced (an earlier change of the same resource) back,
    or closes it when there was none.
    """
    earlier = ledger.latest(record.kind, record.resource)
    ledger.put(record)
    try:
        yield record
    except AwsCallError as exc:
        if made_nothing(exc):
            current = ledger.latest(record.kind, record.resource)
            if earlier is not None:
                ledger.put(earlier)
            elif current is not None:
                ledger.undo(current, f"not made: {exc.operation} refused ({exc.code})")
        raise


class ReconcileStep(Step):
    """First step of every change: record what interrupted creates left, resolve their intents."""

    name, title = "reconcile", "Reconcile creates a crash interrupted before their ledger write"
    permissions = finders.PERMISSIONS

    def __init__(self, ctx):
        self.ctx = ctx

    def _found(self) -> list[tuple[Intent, Record | None]]:
        return [(i, finders.find(self.ctx, i)) for i in self.ctx.ledger.pending_intents()]

    def pending(self) -> bool:
        return bool(self.ctx.ledger.pending_intents())

    def plan(self) -> list[PlanRow]:
        rows = []
        for pending, record in self._found():
            if record is None:
                rows.append(PlanRow(self.name, pending.name, NONE, f"the interrupted {pending.creates} of "
                                    f"{pending.name} made nothing: close its intent"))
            else:
                rows.append(PlanRow(self.name, record.resource, ADOPT, f"an interrupted {pending.creates} "
                                    f"made {record.resource} before its ledger write: record it"))
        return rows or [PlanRow(self.name, "-", NONE, "no interrupted create in the ledger")]

    def apply(self) -> None:
        for pending, record in self._found():
            if record is None:
                self.ctx.ledger.resolve(pending, "reconciled: nothing was made")
                continue
            self.ctx.ledger.put(record)
            self.ctx.ledger.resolve(pending, f"reconciled: found {record.resource} (token {pending.token})")

    def verify(self) -> str:
        left = self.ctx.ledger.pending_intents()
        if left:
            raise ChangeRefused(left[0].name, f"{len(left)} interrupted create(s) still unresolved")
        resolved = [i for i in self.ctx.ledger.records(Intent) if "reconciled:" in (i.undone or "")]
        return f"{len(resolved)} interrupted create(s) reconciled" if resolved else "nothing to reconcile"
