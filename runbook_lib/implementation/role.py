"""Step ``role`` (``role_mode="dedicated"``): an execution role of the function's own."""

from __future__ import annotations

from .. import iam
from ..change.finders import role_record
from ..change.intents import intent
from ..exceptions import ChangeRefused
from ..records import Role
from ..steps import ADOPT, BLOCKED, CREATE, NONE, UPDATE, Step


class RoleStep(Step):
    name = "role"
    permissions = ("iam:GetRole", "iam:CreateRole", "iam:TagRole", "iam:ListRoleTags", "iam:PutRolePolicy",
                   "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies",
                   "iam:AttachRolePolicy", "iam:GetPolicy")

    def __init__(self, ctx):
        self.c = ctx
        self.role_name = iam.dedicated_role_name(ctx.function_name)
        self.boundary = iam.boundary_arn(ctx.partition, ctx.account)

    def _previous(self) -> str:
        return iam.role_name_from_arn(self.c.previous_role_arn())

    def _wanted_inline(self) -> dict:
        wanted = {iam.LOGGING_POLICY_NAME: iam.logging_policy(self.c.partition, self.c.region, self.c.account,
                                                              self.c.function_name, self.c.edge_mode)}
        if self._previous() != self.role_name:
            for name, doc in iam.inline_policies(self.c.iam, self._previous()).items():
                wanted[iam.COPIED_POLICY_PREFIX + name] = doc
        return wanted

    def _wanted_managed(self) -> set:
        if self._previous() == self.role_name:
            return set()
        own = iam.policy_arn(self.c.partition, self.c.account, iam.policy_name(self.c.function_name))
        return set(iam.attached_policy_arns(self.c.iam, self._previous())) - {own}

    def plan(self):
        role = iam.get_role(self.c.iam, self.role_name)
        if role is None:
            if iam.get_policy(self.c.iam, self.boundary) is None:
                return [self.c.row(self.name, self.role_name, BLOCKED, f"the permissions boundary {self.boundary} "
                                   "does not exist: an administrator creates it from "
                                   "policies/runbook-role-boundary.json (docs/permissions.md), or use "
                                   "role_mode=existing")]
            return [self.c.row(self.name, self.role_name, CREATE, "dedicated role trusting only Lambda, logging "
                               "to its own log group, with the previous role's other grants copied, within the "
                               f"permissions boundary {iam.BOUNDARY_POLICY_NAME}")]
        if not self.c.managed(iam.role_tags(self.c.iam, self.role_name)):
            return [self.c.row(self.name, role["Arn"], BLOCKED, "a role of this name exists and was not created "
                               "by the runbook (no managed-by tag for this function); delete or rename it, or use "
                               "role_mode=existing")]
        rows = []
        if self.c.ledger.latest(Role, role["Arn"]) is None:
            rows.append(self.c.row(self.name, role["Arn"], ADOPT, "made for this function by an earlier run of the "
                                   "runbook (tagged): record it, so backout deletes it"))
        missing = set(self._wanted_inline()) - set(iam.inline_policies(self.c.iam, self.role_name))
        missing |= self._wanted_managed() - set(iam.attached_policy_arns(self.c.iam, self.role_name))
        if missing:
            rows.append(self.c.row(self.name, role["Arn"], UPDATE, f"add missing grants {sorted(missing)}"))
        return rows or [self.c.row(self.name, role["Arn"], NONE, "dedicated role exists with its grants")]

    def apply(self):
        role = iam.get_role(self.c.iam, self.role_name)
        previous = self.c.previous_role_arn()
        if role is None:
            token = self.c.token("role")
            with intent(self.c.ledger, "role", self.role_name, token, self.name, {"previous_role": previous}):
                trust = iam.trust_policy(self.c.account, self.c.edge_mode)
                arn = iam.create_role(self.c.iam, self.role_name, trust, self.c.tags,
                                      f"Execution role for {self.c.function_name} (lambda-secrets-runbook)",
                                      self.boundary)
                self.c.ledger.put(role_record(arn, self.role_name, previous, self.name))
        elif self.c.ledger.latest(Role, role["Arn"]) is None:
            self.c.ledger.put(role_record(role["Arn"], self.role_name, previous, self.name,
                                          self.c.adopted_action(Role, role["Arn"])))
        for name, doc in self._wanted_inline().items():
            iam.put_inline(self.c.iam, self.role_name, name, doc)
        for arn in sorted(self._wanted_managed()):
            iam.attach(self.c.iam, self.role_name, arn)

    def verify(self):
        role = iam.get_role(self.c.iam, self.role_name)
        if role is None:
            raise ChangeRefused(self.role_name, "role missing after create")
        services = iam.trusted_services(role)
        if not services or services - {"lambda.amazonaws.com", "edgelambda.amazonaws.com"}:
            raise ChangeRefused(role["Arn"], f"trust policy names {sorted(services)}")
        if iam.LOGGING_POLICY_NAME not in iam.inline_policies(self.c.iam, self.role_name):
            raise ChangeRefused(role["Arn"], "logging policy missing")
        boundary = (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        if boundary != self.boundary:
            raise ChangeRefused(role["Arn"], f"permissions boundary is {boundary}, not {self.boundary}")
        return (f"{role['Arn']} trusts only {', '.join(sorted(services))}; logs to its own log group; "
                f"bounded by {iam.BOUNDARY_POLICY_NAME}")
