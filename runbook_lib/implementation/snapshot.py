"""Step ``snapshot``: publish a version of the function as it is, for backout."""

from __future__ import annotations

from .. import functions
from ..change.finders import snapshot_record
from ..change.intents import intent
from ..exceptions import ChangeRefused, InputError
from ..steps import BLOCKED, CREATE, NONE, Step


class SnapshotStep(Step):
    name = "snapshot"
    permissions = ("lambda:GetFunctionConfiguration", "lambda:PublishVersion")

    def __init__(self, ctx):
        self.c = ctx

    def plan(self):
        snap = self.c.snapshot()
        if snap:
            try:
                self.c.snapshot_config()
            except InputError:
                return [self.c.row(self.name, self.c.function_name, BLOCKED,
                                   f"snapshot version {snap.version} in the ledger no longer exists")]
            return [self.c.row(self.name, f"{self.c.function_name}:{snap.version}", NONE,
                               "snapshot version recorded in the ledger")]
        moved, removed = self.c.variables()
        return [self.c.row(self.name, self.c.function_name, CREATE,
                           f"publish a version for backout; will move {len(moved)} variable(s) "
                           f"({', '.join(moved) or 'none'})"
                           + (f", remove AWS credential variable(s) {', '.join(removed)}" if removed else ""))]

    def apply(self):
        moved, removed = self.c.variables()
        details = {"moved_variables": moved, "removed_variables": removed,
                   "last_modified": self.c.live().get("LastModified", "")}
        token = self.c.token("snapshot")
        # the token in the description is how a crash between publish and record is reconciled
        with intent(self.c.ledger, "snapshot", self.c.function_name, token, self.name, details):
            published = functions.publish_version(
                self.c.lam, self.c.function_name,
                f"lambda-secrets-runbook snapshot {token} before {self.c.change_ticket or 'change'}")
            self.c.ledger.put(snapshot_record(self.c.function_name, published, details, self.name))

    def verify(self):
        snap = self.c.snapshot()
        if not snap:
            raise ChangeRefused(self.c.function_name, "no snapshot in the ledger after publishing")
        version = self.c.snapshot_config()
        if version["CodeSha256"] != snap.code_sha256:
            raise ChangeRefused(version["FunctionArn"], "snapshot code hash differs from the ledger")
        missing = set(snap.moved_variables) - set(functions.environment(version))
        if missing:
            raise ChangeRefused(version["FunctionArn"], f"snapshot lacks variables {sorted(missing)}")
        return (f"version {snap.version} (CodeSha256 {snap.code_sha256}) keeps the "
                f"pre-change code and configuration; {len(snap.moved_variables)} variable(s) to move")
