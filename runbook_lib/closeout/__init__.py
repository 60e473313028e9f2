"""Close-out: once the change is accepted, remove the residue and replace what was exposed.

:class:`Closeout` reads the run's ledger (same run folder as the implementation) and runs
its steps in :data:`STEP_ORDER` through the change engine (:mod:`runbook_lib.change.engine`,
policy ``STOP``), planned first and applied only when built with ``apply=True`` and a
change ticket, each asserted after it runs:

``rotate``
    With ``rotate_from`` (a JSON file of new values, read into memory, never printed):
    a new version of the secret. The function keeps working because the reference
    handler's cache expires (``SECRET_TTL_SECONDS``) and is refetched once when the
    partner answers 401. Without it, the plan states which values were exposed and must
    be replaced at their source.
``access-keys``
    AWS access keys hardcoded in the code: their owner (``GetAccessKeyLastUsed``,
    ``sts:GetAccessKeyInfo``), deactivated on any target.
``versions``
    Deletes the backout snapshot version and every other published version holding a
    migrated value (matched by keyed fingerprint). A version an alias points to (or a
    CloudFront distribution still runs) blocks the step, with the reason.

A ``closeout`` ledger record is written before the snapshot is deleted: backout refuses
from then on (nothing to restore from).

Examples
--------
>>> closing = Closeout(target, ledger, change_ticket="CHG-2", apply=True,
...                    rotate_from="new-values.json")       # doctest: +SKIP
>>> plan_frame(closing.plan()); closing.apply(progress=print) # doctest: +SKIP
"""

from __future__ import annotations

from .. import residue
from ..change.context import backed_out
from ..change.engine import ChangeSequence
from ..checks import FAIL, Check
from ..exceptions import InputError, RunbookError
from ..ledger import Ledger
from ..records import Closeout as CloseoutRecord
from ..redaction import Fingerprinter
from ..session import Target
from ..steps import STOP, require_ticket
from .access_keys import AccessKeyCloseStep
from .context import CloseoutContext, NewValues, read_rotation_file
from .rotate import RotateStep
from .versions import VersionsStep

NOTEBOOK = "05_closeout"
PHASE = "closeout"
#: Every step, in the order it runs.
STEP_ORDER = (RotateStep, AccessKeyCloseStep, VersionsStep)


class Closeout(ChangeSequence):
    """The close-out notebook's object: validated inputs, steps, plan, apply, checks.

    Raises :class:`InputError` (nothing changed) for a ledger without an implementation,
    a change that was backed out, ``apply=True`` without ``change_ticket``, or a bad
    ``rotate_from`` file (missing, not JSON, names a variable this run did not move);
    :meth:`apply` refuses unless built with ``apply=True``.
    """

    notebook, phase, what, policy, check_prefix = NOTEBOOK, PHASE, "close-out", STOP, "closeout-"

    def __init__(self, target: Target, ledger: Ledger, change_ticket: str = "", apply: bool = False,
                 rotate_from: str = "", function_name: str = "", scanner=None,
                 fingerprinter: Fingerprinter | None = None):
        require_ticket(apply, change_ticket)
        function_name = function_name or ledger.context.get("function_name", "")
        if not function_name:
            raise InputError("run_dir", "this run's ledger names no function: pass the run folder of the "
                             "implementation to close out")
        ledger.bind(function_name=function_name)
        snap = ledger.snapshot(function_name)
        if snap is None:
            raise InputError("run_dir", "this run's ledger records no applied implementation (no snapshot): "
                             "nothing to close out")
        if backed_out(ledger):
            raise InputError("run_dir", "this run's change was backed out: nothing to close out")
        new_values = read_rotation_file(rotate_from, list(snap.moved_variables))
        ctx = CloseoutContext(target, ledger, function_name, change_ticket, new_values, scanner,
                              fingerprinter or Fingerprinter())
        self._start(ctx, apply, change_ticket)
        self.target, self.ledger, self.function_name, self.closing = target, ledger, function_name, ctx
        self.rotate, self.access_keys, self.versions = (cls(ctx) for cls in STEP_ORDER)
        self.steps = [self.rotate, self.access_keys, self.versions]

    def permissions_by_service(self) -> dict[str, list[str]]:
        """``{service: [actions]}``: printed this way, ``secretsmanager:GetSecretValue`` is not
        mistaken for a ``key: value`` assignment by the artifact leak guard."""
        out: dict[str, list[str]] = {}
        for permission in self.permissions():
            service, _, action = permission.partition(":")
            out.setdefault(service, []).append(action)
        return out

    # -- what the notebook shows -----------------------------------------------------------------
    def sweep(self) -> residue.Sweep:
        return self.closing.sweep()

    def exposure(self) -> list[dict]:
        """One row per exposed credential: what it is, where it was exposed, whether it was replaced."""
        c = self.closing
        rows = residue.exposure(self.ledger, self.function_name, c.lam, c.sm, c.iam, c.fingerprinter)
        ledgered = {r["item"] for r in rows}
        for who in self.access_keys.owners():
            label = f"{who['user']}/{who['access_key'].split(' ', 1)[1]}"
            if label not in ledgered:
                rows.append({"item": label, "kind": "AWS access key hardcoded in the code",
                             "exposed in": "the deployment package of the snapshot and older versions",
                             "rotated": who["status"] == "Inactive", "how": f"key is {who['status']}"})
        return rows

    def exposure_statements(self) -> list[str]:
        """What the owner must know: each migrated value was exposed and must be replaced at its source."""
        lines = []
        for row in self.exposure():
            state = "replaced" if row["rotated"] else "NOT yet replaced"
            lines.append(f"{row['item']} ({row['kind']}) was exposed in {row['exposed in']}: {state} - {row['how']}")
        return lines

    def exposure_frame(self):
        import pandas as pd
        return pd.DataFrame(self.exposure(), columns=["item", "kind", "exposed in", "rotated", "how"])

    def owners_frame(self):
        import pandas as pd
        return pd.DataFrame(self.access_keys.owners(),
                            columns=["access_key", "status", "user", "account", "last_used", "last_service"])

    def checks(self) -> list[Check]:
        """Phase ``closeout``: each step's assertion (when applied), ``no-secret-residue``,
        ``exposed-credentials-rotated``."""
        applied = self.ledger.latest(CloseoutRecord, self.function_name) is not None
        out = self.assertions(applied=applied)
        try:
            out.append(residue.residue_check(self.sweep(), PHASE, NOTEBOOK))
        except RunbookError as exc:
            out.append(residue.residue_check(None, PHASE, NOTEBOOK, unavailable=f"could not be evaluated: {exc}"))
        try:
            out.append(residue.rotation_check(self.exposure(), PHASE, NOTEBOOK))
        except RunbookError as exc:
            out.append(residue.rotation_check(None, PHASE, NOTEBOOK, unavailable=f"could not be evaluated: {exc}"))
        return out


__all__ = ["Closeout", "CloseoutContext", "NewValues", "read_rotation_file", "NOTEBOOK", "PHASE", "STEP_ORDER"]
