"""Close-out step ``versions``: delete the backout snapshot and every version holding a migrated value.

A ``closeout`` record is written before the first delete: from then on backout is refused
(there is nothing left to restore from).
"""

from __future__ import annotations

from .. import residue
from ..exceptions import AwsCallError, ChangeRefused
from ..records import Closeout, EdgeAssociation
from ..session import aws_call
from ..steps import BLOCKED, DELETE, NONE, PlanRow, Step


class VersionsStep(Step):
    name = "versions"
    permissions = ("lambda:ListVersionsByFunction", "lambda:ListAliases", "lambda:GetFunctionConfiguration",
                   "lambda:DeleteFunction", "secretsmanager:GetSecretValue", "cloudfront:GetDistributionConfig")

    def __init__(self, ctx):
        self.c = ctx
        self.deleted: list[str] = []

    def _rows(self, sweep: residue.Sweep) -> list[PlanRow]:
        associated = self.c.associated_arns() if self.c.ledger.records(EdgeAssociation) else {}
        rows = [row for v in sweep.versions for row in [self._row(v, associated)] if row]
        return rows or [self.c.row(self.name, self.c.function_name, NONE, "no published version holds a migrated value")]

    def _row(self, v, associated: dict) -> PlanRow | None:
        resource = f"{self.c.function_name}:{v.version}"
        holds = ", ".join(v.migrated) or "no migrated value"
        if not (v.migrated or v.snapshot):
            if not v.findings:
                return None
            return self.c.row(self.name, resource, NONE, "holds other secret findings (" + ", ".join(
                f["variable"] for f in v.findings) + ") that this run did not migrate: not deleted by close-out; "
                "migrate them in their own change")
        what = (f"the backout snapshot ({holds}): backout is impossible afterwards" if v.snapshot
                else f"holds migrated value(s) {holds}")
        if v.aliases:
            which = "is the backout snapshot" if v.snapshot else f"holds migrated value(s) {holds}"
            return self.c.row(self.name, resource, BLOCKED, f"alias(es) {', '.join(v.aliases)} point to version "
                              f"{v.version}, which {which}: Lambda refuses to delete a version an alias points to, "
                              "and callers of the alias run its old configuration; point the alias at a clean version "
                              f"(aws lambda update-alias --function-name {self.c.function_name} --name {v.aliases[0]} "
                              "--function-version N) or delete the alias, then re-run close-out")
        if v.arn in associated:
            return self.c.row(self.name, resource, BLOCKED, f"{what}; CloudFront distribution(s) "
                              f"{', '.join(associated[v.arn])} still run this version: remove the association first")
        return self.c.row(self.name, resource, DELETE, f"delete: {what}" + (f"; {v.edge_note}" if v.edge_note else ""))

    def plan(self):
        return self._rows(self.c.sweep())

    def apply(self):
        versions = [r.resource.rsplit(":", 1)[1] for r in self._rows(self.c.sweep()) if r.action == DELETE]
        snapshot = self.c.snapshot_version()
        # written before the first delete: from here on a backout has nothing to restore from
        self.c.ledger.put(Closeout(resource=self.c.function_name, action="changed", step=self.name, status="started",
                                   change_ticket=self.c.change_ticket, snapshot_version=snapshot,
                                   versions_to_delete=versions))
        for version in versions:
            self._delete(version)
            self.deleted.append(version)
            if version == snapshot:
                self.c.ledger.put(self.c.snapshot().replace(deleted_by_closeout=True))

    def _delete(self, version: str) -> None:
        resource = f"{self.c.function_name}:{version}"
        try:
            with aws_call("DeleteFunction", resource, "lambda:DeleteFunction"):
                self.c.lam.delete_function(FunctionName=self.c.function_name, Qualifier=version)
        except AwsCallError as exc:
            if exc.code == "ResourceNotFoundException":
                return
            if exc.code == "ResourceConflictException":
                raise ChangeRefused(resource, "an alias points to this version (created since the plan): point "
                                    "it at a clean version, then re-run close-out") from None
            if exc.code == "InvalidParameterValueException":
                raise ChangeRefused(resource, residue.EDGE_REPLICA_NOTE) from None
            raise

    def verify(self):
        sweep = self.c.sweep()
        left = [v.version for v in sweep.versions if v.migrated]
        snapshot = self.c.snapshot_version()
        if snapshot and any(v.version == snapshot for v in sweep.versions):
            left.append(f"{snapshot} (snapshot)")
        if left:
            raise ChangeRefused(self.c.function_name, f"version(s) {', '.join(left)} still hold migrated values")
        record = self.c.ledger.latest(Closeout, self.c.function_name)
        deleted = sorted(set(self.deleted) | set(record.deleted_versions if record else []),
                         key=lambda v: int(v) if v.isdigit() else 0)
        if record is not None:
            self.c.ledger.put(record.replace(status="complete", deleted_versions=deleted))
        return (f"deleted version(s) {', '.join(deleted) or 'none'}"
                + (f" (snapshot {snapshot})" if snapshot in deleted else "")
                + f"; {len(sweep.versions)} published version(s) remain, none holds a migrated value")
