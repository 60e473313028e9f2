"""Backout: undo exactly what the ledger says the implementation did, in reverse order.

:class:`Backout` reads the run's ledger and builds one step per kind of resource:
``edge`` (remove or restore the viewer-request association; the version and its
replicas stay), ``access-keys`` (re-activate only when asked), ``function`` (code and
configuration back from the snapshot version, environment exactly, which reinstates
the secrets in it), ``policy`` (detach, delete), ``role`` (a dedicated role the runbook
created), ``secret`` (scheduled deletion with a recovery window), ``kms-key`` (scheduled
deletion) and, with ``mode="remove"``, ``remove`` (functions the runbook created).

Ownership: a delete happens only when the resource still carries the runbook's tags for
this function and is the ARN the ledger recorded; a function changed since the
implementation (its code hash or modification time differ from what the ledger
recorded after the change) is left alone with the reason. Each resource is marked
undone in the ledger once its state is verified, so a second backout plans nothing
and a partial one resumes.
"""

from __future__ import annotations

import os
import time

from . import edge, functions, iam, secrets_store
from .checks import FAIL, PASS, SKIP, Check
from .exceptions import AwsCallError, ChangeRefused, InputError, RunbookError
from .implementation import acquire_function_lock, release_function_lock
from .ledger import Entry, Ledger
from .redaction import Fingerprinter
from .session import Target, aws_call
from .steps import BLOCKED, DELETE, NONE, UPDATE, PlanRow, Step, StepResult, StepSequence, require_ticket

NOTEBOOK = "04_backout"
MODES = ("restore", "remove")
#: Ledger kinds a backout leaves in place on purpose (they are reported, not orphans).
KEPT_KINDS = ("snapshot", "edge_version")


class Undo:
    """What every backout step shares: clients, the ledger, the function, its snapshot."""

    def __init__(self, target: Target, ledger: Ledger, function_name: str, recovery_days: int,
                 reactivate_access_keys: bool):
        self.target, self.ledger, self.function_name = target, ledger, function_name
        self.recovery_days = recovery_days
        self.reactivate_access_keys = reactivate_access_keys
        self.lam = target.client("lambda")
        self.sm = target.client("secretsmanager")
        self.kms = target.client("kms")
        self.iam = target.client("iam")
        self._cf = None

    @property
    def cf(self):
        if self._cf is None:
            self._cf = self.target.client("cloudfront", region="us-east-1")
        return self._cf

    def active(self, kind: str) -> list[Entry]:
        return self.ledger.entries(kind, active_only=True)

    def snapshot(self) -> Entry | None:
        return self.ledger.find("snapshot", self.function_name)

    def snapshot_config(self) -> dict | None:
        snap = self.snapshot()
        if not snap:
            return None
        return functions.get_configuration(self.lam, self.function_name, str(snap.data["version"]))

    def managed(self, tags: dict) -> bool:
        return secrets_store.is_runbook_managed(tags, self.function_name)


class UndoStep(Step):
    """A backout step; ``skip`` holds resources its plan blocked, which apply and verify leave alone."""

    skip: frozenset = frozenset()

    def pending(self, kind: str) -> list[Entry]:
        return [e for e in self.u.active(kind)
                if e.resource not in self.skip and e.data.get("policy_arn") not in self.skip]


def _row(step: str, resource: str, action: str, reason: str, entry: Entry | None = None) -> PlanRow:
    source = f"ledger {entry.kind} {entry.action} {entry.at} ({entry.step})" if entry else ""
    return PlanRow(step, resource, action, reason, source)


class EdgeUndo(UndoStep):
    name, title = "edge", "Remove the Lambda@Edge viewer-request association"
    permissions = ("cloudfront:GetDistributionConfig", "cloudfront:UpdateDistribution", "cloudfront:GetDistribution")

    def __init__(self, undo: Undo):
        self.u = undo

    def _state(self, entry: Entry) -> str:
        config, _ = edge.get_distribution_config(self.u.cf, entry.resource)
        live = edge.viewer_request_arn(config)
        if live == entry.data["version_arn"]:
            return "ours"
        if live == entry.data.get("previous_arn"):
            return "restored"
        return f"other:{live}"

    def plan(self):
        rows = []
        for entry in self.u.active("edge_association"):
            state = self._state(entry)
            previous = entry.data.get("previous_arn")
            if state == "ours":
                rows.append(_row(self.name, entry.resource, UPDATE if previous else DELETE,
                                 (f"restore viewer-request to {previous}" if previous else "remove the viewer-request "
                                  "association") + f"; {entry.data['version_arn']} and its edge replicas stay "
                                 "(CloudFront deletes replicas hours later; delete the version after that)", entry))
            elif state == "restored":
                rows.append(_row(self.name, entry.resource, NONE, "association already removed", entry))
            else:
                rows.append(_row(self.name, entry.resource, BLOCKED, "viewer-request now runs "
                                 f"{state.split(':', 1)[1] or 'nothing'}, not the version the runbook associated: "
                                 "changed outside the runbook, left alone", entry))
        return rows or [_row(self.name, "-", NONE, "no Lambda@Edge association in the ledger")]

    def apply(self):
        for entry in self.pending("edge_association"):
            if self._state(entry) == "ours":
                edge.set_viewer_request(self.u.cf, entry.resource, entry.data.get("previous_arn"))
                edge.wait_deployed(self.u.cf, entry.resource)

    def verify(self):
        done = []
        for entry in self.pending("edge_association"):
            if self._state(entry) != "restored":
                raise ChangeRefused(entry.resource, "viewer-request association still not as before")
            self.u.ledger.mark_undone(entry.kind, entry.resource, "association removed")
            done.append(entry.resource)
        return f"associations removed from {', '.join(done)}" if done else "nothing to undo"


class AccessKeyUndo(UndoStep):
    name, title = "access-keys", "Re-activate deactivated access keys (only when asked)"
    permissions = ("iam:ListUsers", "iam:ListAccessKeys", "iam:UpdateAccessKey")

    def __init__(self, undo: Undo):
        self.u = undo

    def _key(self, entry: Entry) -> dict | None:
        fp = Fingerprinter(bytes.fromhex(entry.data["salt"]))
        keys = [k for k in iam.find_access_keys(self.u.iam, {entry.data["key_fingerprint"]}, fp)
                if k["user"] == entry.data["user"]]
        return keys[0] if keys else None

    def plan(self):
        rows = []
        for entry in self.u.active("access_key"):
            key = self._key(entry)
            if key is None:
                rows.append(_row(self.name, entry.resource, NONE, "key no longer exists", entry))
            elif not self.u.reactivate_access_keys:
                rows.append(_row(self.name, entry.resource, NONE, f"left {key['status']} (the function no longer "
                                 "uses it; reactivate_access_keys=True to re-activate)", entry))
            elif key["status"] == "Inactive":
                rows.append(_row(self.name, entry.resource, UPDATE, "re-activate (asked)", entry))
            else:
                rows.append(_row(self.name, entry.resource, NONE, "already active", entry))
        return rows or [_row(self.name, "-", NONE, "no access key deactivated by the runbook")]

    def apply(self):
        if not self.u.reactivate_access_keys:
            return
        for entry in self.pending("access_key"):
            key = self._key(entry)
            if key and key["status"] == "Inactive":
                line = iam.set_access_key_status(self.u.iam, key["user"], key["key_id"], "Active")
                self.u.ledger.record(entry.kind, entry.resource, entry.action, entry.step, {"reactivated": line})

    def verify(self):
        lines = []
        for entry in self.pending("access_key"):
            key = self._key(entry)
            if self.u.reactivate_access_keys and key:
                if key["status"] != "Active":
                    raise ChangeRefused(entry.resource, "key still inactive")
                self.u.ledger.mark_undone(entry.kind, entry.resource, "re-activated")
            lines.append(f"{entry.resource} {key['status'] if key else 'gone'}")
        return "; ".join(lines) or "nothing to undo"


class FunctionRestore(UndoStep):
    name, title = "function", "Restore the function's code and configuration from the snapshot"
    permissions = ("lambda:GetFunction", "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
                   "lambda:UpdateFunctionConfiguration", "iam:PassRole")

    def __init__(self, undo: Undo):
        self.u = undo

    def differences(self) -> list[str]:
        snapshot = self.u.snapshot_config()
        live = functions.get_configuration(self.u.lam, self.u.function_name)
        diffs = functions.config_differences(live, snapshot)
        if live.get("CodeSha256") != snapshot.get("CodeSha256"):
            diffs.append("code")
        return diffs

    def drift(self) -> str:
        """Why the live function is not what the runbook left (empty: it is)."""
        live = functions.state_marker(functions.get_configuration(self.u.lam, self.u.function_name))
        state = self.u.ledger.find("function_state", self.u.function_name)
        if state is None:
            return "the function differs from the snapshot but the runbook never changed it"
        changed = [k for k in functions.DRIFT_FIELDS if k in state.data and live[k] != state.data[k]]
        if changed:
            return (f"the function was changed outside the runbook after the implementation ({', '.join(changed)} "
                    "differ from the ledger): left alone; restore by hand or re-run the implementation first")
        return ""

    def plan(self):
        snap = self.u.snapshot()
        pending = [e for k in ("function_config", "function_code", "function_state") for e in self.u.active(k)]
        if not snap or not pending:
            return [_row(self.name, self.u.function_name, NONE, "nothing of the function to restore", snap)]
        diffs = self.differences()
        if not diffs:
            return [_row(self.name, self.u.function_name, NONE, f"already equal to snapshot version "
                         f"{snap.data['version']}", snap)]
        why = self.drift()
        if why:
            return [_row(self.name, self.u.function_name, BLOCKED, why, snap)]
        return [_row(self.name, self.u.function_name, UPDATE, f"restore {', '.join(diffs)} from version "
                     f"{snap.data['version']}; WARNING: this puts {', '.join(snap.data.get('moved_variables', []))} "
                     "back in the environment variables (the test plan's finding returns)", snap)]

    def apply(self):
        snap = self.u.snapshot()
        if self.differences():
            why = self.drift()
            if why:
                raise ChangeRefused(self.u.function_name, why)
            functions.restore_version(self.u.lam, self.u.function_name, str(snap.data["version"]))

    def verify(self):
        snap = self.u.snapshot()
        if not snap:
            return "nothing to undo"
        diffs = self.differences()
        if diffs:
            if not any(self.pending(k) for k in ("function_config", "function_code", "function_state")):
                return "nothing to undo"
            raise ChangeRefused(self.u.function_name, f"still differs from the snapshot: {', '.join(diffs)}")
        for kind in ("function_config", "function_code", "function_state"):
            for entry in self.pending(kind):
                self.u.ledger.mark_undone(kind, entry.resource, f"restored from version {snap.data['version']}")
        live = functions.get_configuration(self.u.lam, self.u.function_name)
        return (f"configuration and code equal version {snap.data['version']} (CodeSha256 "
                f"{live['CodeSha256'][:12]}…, {len(functions.environment(live))} variables)")


class PolicyUndo(UndoStep):
    name, title = "policy", "Detach and delete the runbook's policy"
    permissions = ("iam:GetPolicy", "iam:ListPolicyTags", "iam:ListEntitiesForPolicy", "iam:DetachRolePolicy",
                   "iam:ListPolicyVersions", "iam:DeletePolicyVersion", "iam:DeletePolicy")

    def __init__(self, undo: Undo):
        self.u = undo

    def _ours_roles(self, arn: str) -> set[str]:
        return {e.data["role"] for e in self.u.ledger.entries("policy_attachment") if e.data["policy_arn"] == arn}

    def plan(self):
        rows = []
        for entry in self.u.active("policy_attachment"):
            attached = entry.data["policy_arn"] in iam.attached_policy_arns(self.u.iam, entry.data["role"]) \
                if iam.get_role(self.u.iam, entry.data["role"]) else False
            rows.append(_row(self.name, entry.resource, DELETE if attached else NONE,
                             f"detach from {entry.data['role']}" if attached else "already detached", entry))
        for entry in self.u.active("policy"):
            policy = iam.get_policy(self.u.iam, entry.resource)
            if policy is None:
                rows.append(_row(self.name, entry.resource, NONE, "already deleted", entry))
                continue
            if policy["Arn"] != entry.resource or not self.u.managed(iam.policy_tags(self.u.iam, entry.resource)):
                rows.append(_row(self.name, entry.resource, BLOCKED, "policy lacks the runbook's tags for this "
                                 "function: not deleting a resource the runbook cannot prove it owns", entry))
                continue
            others = [r for r in iam.policy_attachments(self.u.iam, entry.resource)
                      if r not in self._ours_roles(entry.resource)]
            if others:
                rows.append(_row(self.name, entry.resource, BLOCKED, f"also attached to {', '.join(others)} outside "
                                 "the runbook: left alone", entry))
                continue
            rows.append(_row(self.name, entry.resource, DELETE, "delete the policy (all versions)", entry))
        return rows or [_row(self.name, "-", NONE, "no policy in the ledger")]

    def apply(self):
        for entry in self.pending("policy_attachment"):
            if iam.get_role(self.u.iam, entry.data["role"]):
                iam.detach(self.u.iam, entry.data["role"], entry.data["policy_arn"])
        for entry in self.pending("policy"):
            if iam.get_policy(self.u.iam, entry.resource):
                iam.delete_policy(self.u.iam, entry.resource)

    def verify(self):
        done = []
        for entry in self.pending("policy_attachment"):
            role = entry.data["role"]
            if iam.get_role(self.u.iam, role) and entry.data["policy_arn"] in iam.attached_policy_arns(self.u.iam, role):
                raise ChangeRefused(entry.resource, "policy still attached")
            self.u.ledger.mark_undone(entry.kind, entry.resource, "detached")
        for entry in self.pending("policy"):
            if iam.get_policy(self.u.iam, entry.resource) is not None:
                raise ChangeRefused(entry.resource, "policy still exists")
            self.u.ledger.mark_undone(entry.kind, entry.resource, "deleted")
            done.append(entry.resource)
        return f"deleted {', '.join(done)}" if done else "nothing to undo"


class RoleUndo(UndoStep):
    name, title = "role", "Delete the dedicated role the runbook created"
    permissions = ("iam:GetRole", "iam:ListRoleTags", "iam:ListAttachedRolePolicies", "iam:DetachRolePolicy",
                   "iam:ListRolePolicies", "iam:DeleteRolePolicy", "iam:DeleteRole")

    def __init__(self, undo: Undo):
        self.u = undo

    def _check(self, entry: Entry) -> tuple[str, str]:
        name = iam.role_name_from_arn(entry.resource)
        role = iam.get_role(self.u.iam, name)
        if role is None:
            return NONE, "already deleted"
        if entry.action != "created":
            return NONE, "not created by the runbook: kept"
        if role["Arn"] != entry.resource or not self.u.managed(iam.role_tags(self.u.iam, name)):
            return BLOCKED, "role lacks the runbook's tags for this function: not deleting it"
        live = functions.get_configuration(self.u.lam, self.u.function_name)
        if live["Role"] == role["Arn"]:
            return BLOCKED, "the function still runs as this role (its restore did not happen): left in place"
        return DELETE, "delete the dedicated role (its inline policies first)"

    def plan(self):
        rows = [_row(self.name, e.resource, *self._check(e), e) for e in self.u.active("role")]
        return rows or [_row(self.name, "-", NONE, "no dedicated role in the ledger")]

    def apply(self):
        for entry in self.pending("role"):
            if self._check(entry)[0] == DELETE:
                iam.delete_role(self.u.iam, iam.role_name_from_arn(entry.resource))

    def verify(self):
        done = []
        for entry in self.pending("role"):
            if iam.get_role(self.u.iam, iam.role_name_from_arn(entry.resource)) is not None:
                raise ChangeRefused(entry.resource, "role still exists")
            self.u.ledger.mark_undone(entry.kind, entry.resource, "deleted")
            done.append(entry.resource)
        return f"deleted {', '.join(done)}" if done else "nothing to undo"


class SecretUndo(UndoStep):
    name, title = "secret", "Schedule deletion of the secret (recovery window)"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:DeleteSecret")

    def __init__(self, undo: Undo):
        self.u = undo

    def _check(self, entry: Entry) -> tuple[str, str]:
        secret = secrets_store.describe_secret(self.u.sm, entry.resource)
        if secret is None:
            return NONE, "already deleted"
        if secret.get("DeletedDate"):
            return NONE, f"already scheduled for deletion ({secret['DeletedDate']})"
        if secret["ARN"] != entry.resource or not self.u.managed(secrets_store.tags_dict(secret.get("Tags"))):
            return BLOCKED, "secret lacks the runbook's tags for this function: not deleting it"
        if self.u.recovery_days == 0:
            return DELETE, "delete at once, without recovery (force=True)"
        return DELETE, f"schedule deletion; restorable for {self.u.recovery_days} days (RestoreSecret)"

    def plan(self):
        rows = [_row(self.name, e.resource, *self._check(e), e) for e in self.u.active("secret")]
        return rows or [_row(self.name, "-", NONE, "no secret in the ledger")]

    def apply(self):
        for entry in self.pending("secret"):
            if self._check(entry)[0] == DELETE:
                response = secrets_store.schedule_secret_deletion(self.u.sm, entry.resource, self.u.recovery_days)
                self.u.ledger.record(entry.kind, entry.resource, entry.action, entry.step,
                                     {"deletion_date": str(response.get("DeletionDate", ""))})

    def verify(self):
        lines = []
        for entry in self.pending("secret"):
            secret = secrets_store.describe_secret(self.u.sm, entry.resource)
            if secret is not None and not secret.get("DeletedDate"):
                raise ChangeRefused(entry.resource, "secret not scheduled for deletion")
            when = str(secret["DeletedDate"]) if secret else "deleted"
            self.u.ledger.mark_undone(entry.kind, entry.resource, f"deletion scheduled ({when})")
            lines.append(f"{entry.resource} deletion {when}")
        return "; ".join(lines) or "nothing to undo"


class KmsKeyUndo(UndoStep):
    name, title = "kms-key", "Schedule deletion of the customer managed key the runbook created"
    permissions = ("kms:DescribeKey", "kms:ListResourceTags", "kms:DeleteAlias", "kms:ScheduleKeyDeletion")

    def __init__(self, undo: Undo):
        self.u = undo

    def _check(self, entry: Entry) -> tuple[str, str]:
        meta = secrets_store.describe_key(self.u.kms, entry.resource)
        if meta is None:
            return NONE, "already deleted"
        if meta.get("KeyState") in ("PendingDeletion", "PendingReplicaDeletion"):
            return NONE, f"already pending deletion ({meta.get('DeletionDate')})"
        if meta["Arn"] != entry.resource or not self.u.managed(secrets_store.key_tags(self.u.kms, entry.resource)):
            return BLOCKED, "key lacks the runbook's tags for this function: not deleting it"
        return DELETE, f"schedule deletion in {secrets_store.KEY_PENDING_DAYS} days (cancel with CancelKeyDeletion)"

    def plan(self):
        rows = [_row(self.name, e.resource, *self._check(e), e) for e in self.u.active("kms_key")]
        return rows or [_row(self.name, "-", NONE, "no customer managed key in the ledger")]

    def apply(self):
        for entry in self.pending("kms_key"):
            if self._check(entry)[0] == DELETE:
                secrets_store.schedule_key_deletion(self.u.kms, entry.resource, entry.data.get("alias"))

    def verify(self):
        lines = []
        for entry in self.pending("kms_key"):
            meta = secrets_store.describe_key(self.u.kms, entry.resource)
            if meta is not None and meta.get("KeyState") != "PendingDeletion":
                raise ChangeRefused(entry.resource, "key not pending deletion")
            when = str(meta.get("DeletionDate")) if meta else "deleted"
            self.u.ledger.mark_undone(entry.kind, entry.resource, f"deletion scheduled ({when})")
            lines.append(f"{entry.resource} deletion {when}")
        return "; ".join(lines) or "nothing to undo"


class FunctionRemove(UndoStep):
    name, title = "remove", "Delete functions the runbook created (mode=remove)"
    permissions = ("lambda:GetFunction", "lambda:ListTags", "lambda:DeleteFunction")

    def __init__(self, undo: Undo):
        self.u = undo

    def _check(self, entry: Entry) -> tuple[str, str]:
        name = entry.data.get("name") or entry.resource.split(":")[-1]
        if not functions.exists(self.u.lam, name):
            return NONE, "already deleted"
        config = functions.get_configuration(self.u.lam, name)
        if config["FunctionArn"] != entry.resource and name != entry.resource:
            return BLOCKED, "function ARN differs from the ledger's: not deleting it"
        tags = functions.function_tags(self.u.lam, config["FunctionArn"])
        if tags.get("managed-by") != "lambda-secrets-runbook":
            return BLOCKED, "function lacks the runbook's managed-by tag: not deleting it"
        return DELETE, "delete the function the runbook created (seed backout plan)"

    def plan(self):
        rows = [_row(self.name, e.resource, *self._check(e), e)
                for e in self.u.active("function") if e.action == "created"]
        if not self.u.ledger.find("function", self.u.function_name):
            rows.append(_row(self.name, self.u.function_name, NONE, "not created by the runbook: restored, "
                             "never deleted"))
        return rows

    def apply(self):
        for entry in self.pending("function"):
            if entry.action == "created" and self._check(entry)[0] == DELETE:
                functions.delete_function(self.u.lam, entry.data.get("name") or entry.resource)

    def verify(self):
        done = []
        for entry in self.pending("function"):
            if entry.action != "created":
                continue
            if functions.exists(self.u.lam, entry.data.get("name") or entry.resource):
                raise ChangeRefused(entry.resource, "function still exists")
            self.u.ledger.mark_undone(entry.kind, entry.resource, "deleted")
            done.append(entry.resource)
        return f"deleted {', '.join(done)}" if done else "nothing to delete"


class Backout(StepSequence):
    """The backout notebook's object: validated inputs, steps, plan, apply, before/after, checks.

    Raises :class:`InputError` (nothing changed) for a bad ``mode``, a recovery window
    outside 7-30 (or 0 without ``force``), ``apply=True`` without ``change_ticket``, a
    ledger without a function or bound to another one.
    """

    def __init__(self, target: Target, ledger: Ledger, function_name: str = "", mode: str = "restore",
                 secret_recovery_days: int = 7, force: bool = False, change_ticket: str = "",
                 reactivate_access_keys: bool = False, apply: bool = False):
        if mode not in MODES:
            raise InputError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
        days = int(secret_recovery_days)
        if days == 0 and not force:
            raise InputError("secret_recovery_days", "0 deletes the secret without recovery: also pass force=True")
        if days != 0 and not 7 <= days <= 30:
            raise InputError("secret_recovery_days", f"{days} is outside Secrets Manager's 7-30 days (or 0 with force)")
        require_ticket(apply, change_ticket)
        function_name = function_name or ledger.context.get("function_name", "")
        if not function_name:
            raise InputError("run_dir", "this run's ledger names no function: pass function_name or the run folder "
                             "of the implementation")
        ledger.bind(function_name=function_name)
        from .closeout import refusal_after_closeout  # closeout imports implementation, not backout
        refused = refusal_after_closeout(ledger, function_name)
        if refused:
            raise ChangeRefused(function_name, "backout refused: " + refused)
        self.target, self.ledger, self.mode, self.change_ticket = target, ledger, mode, change_ticket
        self.undo = Undo(target, ledger, function_name, days, reactivate_access_keys)
        if ledger.find("snapshot", function_name):
            self.undo.snapshot_config()  # the snapshot version must still exist (close-out deletes it)
        self.steps: list[Step] = [EdgeUndo(self.undo), AccessKeyUndo(self.undo), FunctionRestore(self.undo),
                                  PolicyUndo(self.undo), RoleUndo(self.undo), SecretUndo(self.undo),
                                  KmsKeyUndo(self.undo)]
        if mode == "remove":
            self.steps.append(FunctionRemove(self.undo))
        self.before = self.states()
        self.results: list[StepResult] = []
        self.refused: list[PlanRow] = []

    def apply(self, progress=None, raise_on_blocked: bool = False) -> list[StepResult]:
        """Undo step by step; a blocked resource is left alone, the other resources still run.

        What was left alone, and why, is in the results (status ``blocked``), in
        :attr:`refused` and in the ``backout-complete`` check (FAIL); with
        ``raise_on_blocked`` a :class:`ChangeRefused` naming it is raised at the end.
        """
        require_ticket(True, self.change_ticket)
        u = self.undo
        owner = f"backout:{self.ledger.path.parent.name}:{os.getpid()}:{int(time.time())}"
        self.ledger.acquire(owner)
        function_arn = None
        try:
            if functions.exists(u.lam, u.function_name):
                function_arn = functions.get_configuration(u.lam, u.function_name)["FunctionArn"]
                acquire_function_lock(u.lam, function_arn, owner)
            self.ledger.log(NOTEBOOK, f"backout started (change ticket {self.change_ticket}, mode {self.mode})")
            results, refused = [], []
            for step in self.steps:
                results.append(self._run_step(step, refused, progress))
            self.results = results
            self.ledger.log(NOTEBOOK, "backout finished: " + ", ".join(f"{r.step}={r.status}" for r in results))
        finally:
            if function_arn and functions.exists(u.lam, u.function_name):
                release_function_lock(u.lam, function_arn, owner)
            self.ledger.release(owner)
        self.refused = refused
        if refused:
            self.ledger.log(NOTEBOOK, "left alone: " + "; ".join(f"{r.resource}: {r.reason}" for r in refused))
            if raise_on_blocked:
                raise ChangeRefused(refused[0].resource, "left alone: " + "; ".join(
                    f"{r.resource}: {r.reason}" for r in refused))
        return self.results

    @staticmethod
    def _run_step(step: UndoStep, refused: list, progress) -> StepResult:
        """Plan, apply what is not blocked, verify; blocked resources are collected in ``refused``."""
        started = time.monotonic()
        rows = step.plan()
        blocked = [r for r in rows if r.action == BLOCKED]
        refused += blocked
        changed = sorted({r.action for r in rows} - {NONE, BLOCKED})
        step.skip = frozenset(r.resource for r in blocked)
        if blocked and not changed:
            detail = "; ".join(f"{r.resource}: {r.reason}" for r in blocked)
            if progress:
                progress(f"{step.name}: blocked - {detail}")
            return StepResult(step.name, BLOCKED, "blocked", detail, 0.0)
        if changed:
            if progress:
                progress(f"{step.name}: applying ({', '.join(changed)})")
            step.apply()
        detail = step.verify()
        if blocked:
            detail += "; left alone: " + "; ".join(f"{r.resource}: {r.reason}" for r in blocked)
        status = "applied" if changed else "unchanged"
        if progress:
            progress(f"{step.name}: {status} - {detail}")
        return StepResult(step.name, ",".join(changed) or NONE, status, detail,
                          round(time.monotonic() - started, 3))

    # -- evidence ---------------------------------------------------------------------------
    def states(self) -> dict:
        """One line of state per ledger resource, for the before/after table."""
        out = {}
        for entry in self.ledger.entries():
            try:
                out[(entry.kind, entry.resource)] = self._describe(entry)
            except RunbookError as exc:
                out[(entry.kind, entry.resource)] = f"unreadable: {exc.message}"
        return out

    def _describe(self, entry: Entry) -> str:
        u = self.undo
        if entry.kind in ("function_config", "function_code", "function_state"):
            if not functions.exists(u.lam, u.function_name):
                return "gone"
            live = functions.get_configuration(u.lam, u.function_name)
            return (f"CodeSha256 {live['CodeSha256'][:12]}…, handler {live.get('Handler')}, variables "
                    f"{', '.join(sorted(functions.environment(live)))}")
        if entry.kind in ("snapshot", "edge_version"):
            version = entry.data.get("version")
            try:
                functions.get_configuration(u.lam, u.function_name, str(version))
                return f"version {version} exists"
            except InputError:
                return f"version {version} gone"
        if entry.kind == "secret":
            secret = secrets_store.describe_secret(u.sm, entry.resource)
            if secret is None:
                return "gone"
            return f"scheduled for deletion {secret['DeletedDate']}" if secret.get("DeletedDate") else "active"
        if entry.kind == "policy":
            policy = iam.get_policy(u.iam, entry.resource)
            return "gone" if policy is None else f"exists, attached {policy.get('AttachmentCount', 0)} time(s)"
        if entry.kind == "policy_attachment":
            role = entry.data["role"]
            attached = iam.get_role(u.iam, role) and entry.data["policy_arn"] in iam.attached_policy_arns(u.iam, role)
            return "attached" if attached else "detached"
        if entry.kind == "role":
            return "exists" if iam.get_role(u.iam, iam.role_name_from_arn(entry.resource)) else "gone"
        if entry.kind == "kms_key":
            meta = secrets_store.describe_key(u.kms, entry.resource)
            return "gone" if meta is None else (f"{meta.get('KeyState')}"
                                               + (f" until {meta['DeletionDate']}" if meta.get("DeletionDate") else ""))
        if entry.kind == "edge_association":
            config, _ = edge.get_distribution_config(u.cf, entry.resource)
            return f"viewer-request -> {edge.viewer_request_arn(config) or 'none'}"
        if entry.kind == "access_key":
            key = AccessKeyUndo(u)._key(entry)
            return key["status"] if key else "gone"
        if entry.kind == "function":
            return "exists" if functions.exists(u.lam, entry.data.get("name") or entry.resource) else "gone"
        return "-"

    def before_after(self):
        """pandas DataFrame: kind, resource, before (at construction), after (now)."""
        import pandas as pd
        after = self.states()
        rows = [{"kind": k, "resource": r, "before": self.before.get((k, r), "-"), "after": after.get((k, r), "-")}
                for (k, r) in sorted(set(self.before) | set(after))]
        return pd.DataFrame(rows, columns=["kind", "resource", "before", "after"])

    def checks(self, invoke: bool | None = None) -> list[Check]:
        """``backout-complete``, ``function-restored`` and ``no-orphans`` (phase ``backout``).

        ``invoke``: call the function once and compare its response shape with the test
        plan's baseline; default: when the ledger holds a baseline shape.
        """
        return [self._complete(), self._restored(invoke), self._orphans()]

    def _complete(self) -> Check:
        left = [e for e in self.ledger.entries(active_only=True)
                if e.kind not in KEPT_KINDS and not (e.kind == "access_key" and not self.undo.reactivate_access_keys)]
        kept = [f"{e.kind} {e.resource}" for e in self.ledger.entries(active_only=True) if e not in left]
        evidence = {"undone": [f"{e.kind} {e.resource}: {e.undone}" for e in self.ledger.entries() if e.undone],
                    "kept_on_purpose": kept}
        if not self.ledger.entries():
            return Check("backout-complete", "Everything the implementation did is undone", "backout", SKIP,
                         reason="the ledger records no change", controls=["CM-3", "CP-10"], notebook=NOTEBOOK)
        if left:
            return Check("backout-complete", "Everything the implementation did is undone", "backout", FAIL,
                         reason="not undone: " + "; ".join(f"{e.kind} {e.resource}" for e in left)
                         + ("; left alone: " + "; ".join(f"{r.resource}: {r.reason}" for r in self.refused)
                            if self.refused else ""),
                         evidence=evidence, controls=["CM-3", "CP-10"], notebook=NOTEBOOK)
        return Check("backout-complete", "Everything the implementation did is undone", "backout", PASS,
                     evidence=evidence, controls=["CM-3", "CP-10"], notebook=NOTEBOOK)

    def _restored(self, invoke: bool | None) -> Check:
        title = "The function equals its pre-change snapshot (configuration, code hash, behaviour)"
        u = self.undo
        snap = u.snapshot()
        if not snap:
            return Check("function-restored", title, "backout", SKIP, reason="no snapshot in the ledger",
                         controls=["CP-10"], notebook=NOTEBOOK)
        step = FunctionRestore(u)
        diffs = step.differences()
        evidence = {"snapshot_version": snap.data["version"], "differences": diffs}
        if diffs:
            return Check("function-restored", title, "backout", FAIL, reason="differs from the snapshot: "
                         + ", ".join(diffs), evidence=evidence, controls=["CP-10"], notebook=NOTEBOOK)
        baseline_shape = self.ledger.baseline.get("response_shape")
        if invoke is None:
            invoke = baseline_shape is not None
        if not invoke:
            return Check("function-restored", title, "backout", PASS, evidence={**evidence, "invocation":
                         "not compared (no baseline response shape)"}, controls=["CP-10"], notebook=NOTEBOOK)
        from .evidence import invocation_failures, invoke_function
        try:
            invocation = invoke_function(u.lam, u.function_name, {}, 1)[0]
        except RunbookError as exc:
            return Check("function-restored", title, "backout", FAIL, reason=f"invocation failed: {exc.message}",
                         evidence=evidence, controls=["CP-10"], notebook=NOTEBOOK)
        failures = invocation_failures([invocation])
        evidence["invocation"] = {k: invocation.get(k) for k in ("status_code", "function_error", "http_status")}
        if failures or (baseline_shape is not None and invocation["response_shape"] != baseline_shape):
            return Check("function-restored", title, "backout", FAIL, reason="; ".join(failures) or
                         "response shape differs from the baseline", evidence=evidence, controls=["CP-10"],
                         notebook=NOTEBOOK)
        return Check("function-restored", title, "backout", PASS, evidence=evidence, controls=["CP-10"],
                     notebook=NOTEBOOK)

    def _orphans(self) -> Check:
        title = "No resource created by this run remains, except in its deletion window"
        u = self.undo
        remaining, windows = [], []
        for entry in self.ledger.entries():
            if entry.action not in ("created", "adopted") or entry.kind in KEPT_KINDS + ("access_key",):
                continue
            state = self._describe(entry)
            if state in ("gone", "detached") or (entry.kind == "function" and state == "gone"):
                continue
            if state.startswith("scheduled for deletion") or state.startswith("PendingDeletion"):
                windows.append(f"{entry.kind} {entry.resource}: {state}")
            else:
                remaining.append(f"{entry.kind} {entry.resource}: {state}")
        # secrets tagged for this function but unknown to this ledger are orphans too
        known = {e.resource for e in self.ledger.entries("secret")}
        try:
            with aws_call("ListSecrets", "secrets tagged for " + u.function_name, "secretsmanager:ListSecrets"):
                pages = u.sm.get_paginator("list_secrets").paginate(
                    Filters=[{"Key": "tag-key", "Values": ["managed-by"]}], IncludePlannedDeletion=True)
                for page in pages:
                    for s in page["SecretList"]:
                        if u.managed(secrets_store.tags_dict(s.get("Tags"))) and s["ARN"] not in known \
                                and not s.get("DeletedDate"):
                            remaining.append(f"secret {s['ARN']}: tagged for this function, not in this ledger")
        except AwsCallError as exc:
            remaining.append(f"could not list secrets: {exc.message}")
        evidence = {"in_deletion_window": windows, "remaining": remaining}
        if remaining:
            return Check("no-orphans", title, "backout", FAIL, reason="; ".join(remaining), evidence=evidence,
                         controls=["CM-3"], notebook=NOTEBOOK)
        return Check("no-orphans", title, "backout", PASS, evidence=evidence, controls=["CM-3"], notebook=NOTEBOOK)
