"""Close-out step ``access-keys``: the hardcoded keys' owners, and their deactivation on any target."""

from __future__ import annotations

from ..change import access_keys
from ..exceptions import ChangeRefused
from ..steps import NONE, UPDATE, Step


class AccessKeyCloseStep(Step):
    name = "access-keys"
    permissions = access_keys.FIND_PERMISSIONS + access_keys.OWNER_PERMISSIONS + ("iam:UpdateAccessKey",)

    def __init__(self, ctx):
        self.c = ctx
        self.evidence: list[str] = []

    def owners(self) -> list[dict]:
        return [access_keys.owner(self.c, k) for k in access_keys.find_keys(self.c)]

    def plan(self):
        keys = access_keys.find_keys(self.c)
        if not keys:
            return [self.c.row(self.name, self.c.function_name, NONE, "no hardcoded AWS access key of an IAM user "
                               "of this account found in the code")]
        rows = []
        for key in keys:
            who = access_keys.owner(self.c, key)
            about = f"owner {who['user']} (account {who['account'] or '?'}), last used {who['last_used'] or '?'}"
            if key["status"] == "Inactive":
                rows.append(self.c.row(self.name, who["access_key"], NONE, f"already inactive; {about}; delete it "
                                       "once nothing else uses it"))
            else:
                rows.append(self.c.row(self.name, who["access_key"], UPDATE, f"deactivate: it was exposed in the "
                                       f"code; {about}"))
        return rows

    def apply(self):
        for key in access_keys.find_keys(self.c):
            if key["status"] == "Active":
                self.evidence.append(access_keys.deactivate(self.c, key, self.name))

    def verify(self):
        keys = access_keys.find_keys(self.c)
        active = [k for k in keys if k["status"] != "Inactive"]
        if active:
            raise ChangeRefused(self.c.function_name, f"{len(active)} hardcoded key(s) still active")
        if not keys:
            return "no hardcoded access key"
        return "; ".join(self.evidence) or ", ".join(f"{access_keys.label(k)} Inactive" for k in keys)
