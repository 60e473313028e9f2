"""The close-out's step assertions: ``closeout-rotate``, ``closeout-access-keys``, ``closeout-versions``.

Judged by :func:`runbook_lib.catalog.step_assertion.judge` from each step's read-back of AWS
(see :mod:`runbook_lib.closeout`); SKIP while only a plan was made.
"""

from __future__ import annotations

from . import CheckSpec

SPECS = (
    CheckSpec(id="closeout-rotate", title="Put the values replaced at their source in a new secret version",
              proves="GetSecretValue of AWSCURRENT (compared in memory, never shown) holds every value of the "
                     "rotate_from file; without one, the PASS only says nothing was rotated (its evidence names "
                     "the values still exposed).",
              controls=("IA-5(1)", "IA-5"), phases=("closeout",),
              permissions=("secretsmanager:GetSecretValue",)),
    CheckSpec(id="closeout-access-keys", title="Hardcoded AWS access keys: show the owner, deactivate",
              proves="ListAccessKeys shows every hardcoded key of an IAM user of this account Inactive.",
              controls=("IA-5(7)", "IA-5"), phases=("closeout",),
              permissions=("iam:ListUsers", "iam:ListAccessKeys")),
    CheckSpec(id="closeout-versions", title="Delete the backout snapshot and every version holding a migrated value",
              proves="ListVersionsByFunction shows no published version whose environment holds a migrated "
                     "value (matched by keyed fingerprint) and no snapshot version.",
              controls=("IA-5(7)", "SC-28"), phases=("closeout",),
              permissions=("lambda:ListVersionsByFunction",)),
)
