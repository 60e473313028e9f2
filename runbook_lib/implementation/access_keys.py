"""Step ``access-keys``: hardcoded AWS access keys found in the code; the function uses its role now.

Deactivated in the lab; on AWS listed for their owner (close-out deactivates them there).
"""

from __future__ import annotations

from ..change import access_keys
from ..exceptions import ChangeRefused
from ..records import AccessKey
from ..steps import NONE, UPDATE, Step


class AccessKeyStep(Step):
    name = "access-keys"
    permissions = access_keys.FIND_PERMISSIONS + ("iam:UpdateAccessKey",)

    def __init__(self, ctx):
        self.c = ctx
        self._keys: list[dict] | None = None
        self.evidence: list[str] = []

    def keys(self) -> list[dict]:
        if self._keys is None:
            self._keys = access_keys.find_keys(self.c)
        return self._keys

    def plan(self):
        self._keys = None  # re-read: the account may have changed since the last plan
        if not self.keys():
            return [self.c.row(self.name, self.c.function_name, NONE, "no hardcoded AWS access key of an IAM user "
                               "of this account found in the code")]
        rows = []
        for key in self.keys():
            if key["status"] == "Inactive":
                rows.append(self.c.row(self.name, access_keys.label(key), NONE, "hardcoded key already inactive"))
            elif not self.c.strategy.changes_code:
                rows.append(self.c.row(self.name, access_keys.label(key), NONE, "left active: the code still uses "
                                       f"this key (strategy {self.c.strategy.name} changes no code); deactivate it "
                                       "once the code change that removes it is deployed"))
            elif self.c.target.name == "lab":
                rows.append(self.c.row(self.name, access_keys.label(key), UPDATE, "deactivate the hardcoded key (lab)"))
            else:
                rows.append(self.c.row(self.name, access_keys.label(key), NONE, "owner must deactivate this hardcoded "
                                       "key (the function no longer uses it)"))
        return rows

    def deactivates(self) -> bool:
        """Keys are deactivated here only in the lab, and only when the new code no longer holds them."""
        return self.c.target.name == "lab" and self.c.strategy.changes_code

    def apply(self):
        for key in self.keys():
            if key["status"] == "Active" and self.deactivates():
                self.evidence.append(access_keys.deactivate(self.c, key, self.name))
        self._keys = None

    def verify(self):
        keys = self.keys()
        if self.deactivates():
            active = [k for k in keys if k["status"] != "Inactive"]
            if active:
                raise ChangeRefused(self.c.function_name, f"{len(active)} hardcoded key(s) still active")
        if not keys:
            return "no hardcoded access key to deactivate"
        lines = self.evidence or [r.evidence for r in self.c.ledger.records(AccessKey, active_only=True)]
        return "; ".join(line for line in lines if line) or ", ".join(
            f"{access_keys.label(k)} {k['status']}" for k in keys)
