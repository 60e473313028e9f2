"""The change: secrets into Secrets Manager, least-privilege role, secure function, Lambda@Edge.

:class:`Implementation` validates its inputs (before any change), builds the steps
below, shows their plan and, with ``apply=True`` and a change ticket, applies them
through :func:`~runbook_lib.steps.run_steps`, each followed by an assertion of the state
it produced. Every created or changed resource goes into the ledger at once, with what
backout needs, never a value.

Steps, in order: ``snapshot`` (publish a version for backout), ``role`` (dedicated
role, when asked), ``kms-key`` (customer managed key, when asked), ``secret``,
``policy`` (one secret, attached to the role), ``function`` (variables out,
``SECRET_ID`` in, code deployed), ``access-keys`` (hardcoded keys found in code:
deactivated in the lab, listed for the owner on AWS), ``edge`` (viewer-request trigger).

Examples
--------
>>> impl = Implementation(target, ledger, function_name="orders-api")   # doctest: +SKIP
>>> plan_frame(impl.plan())                                              # doctest: +SKIP
>>> impl.apply(progress=print)                                           # doctest: +SKIP
"""

from __future__ import annotations

import os
import secrets as _secrets
import time

from . import edge, functions, iam, secrets_store
from .checks import FAIL, PASS, SKIP, WARN, Check
from .exceptions import AwsCallError, ChangeRefused, InputError, RunbookError
from .handlers import REFERENCE_HANDLER
from .ledger import Ledger
from .redaction import Fingerprinter, redact
from .session import Target, aws_call
from .steps import (BLOCKED, CREATE, NONE, UPDATE, PlanRow, Step, StepResult, StepSequence, require_ticket,
                    run_steps)

NOTEBOOK = "02_implementation"
ROLE_MODES = ("existing", "dedicated")
MOVE = "move-to-secrets-manager"
USE_ROLE = "remove-use-role"
LOCK_TAG = "lambda-secrets-runbook-lock"
#: Seconds between writing the lock tag and reading it back (see acquire_function_lock).
LOCK_SETTLE_SECONDS = 1.0


def _scanner_class():
    try:
        from .scanning import Scanner
    except ImportError:  # built by another module; the ledger's findings are used meanwhile
        return None
    return Scanner


def _finding_dict(finding) -> dict:
    return finding.to_dict() if hasattr(finding, "to_dict") else dict(finding)


# -- function lock: one change at a time per function, across run folders -------------------
def acquire_function_lock(lam, function_arn: str, owner: str) -> None:
    """Tag the function with this run as its lock holder; refuse when another run holds it."""
    holder = functions.function_tags(lam, function_arn).get(LOCK_TAG)
    if holder and holder != owner:
        raise ChangeRefused(function_arn.rsplit(":", 1)[-1], f"another runbook run ({holder}) is changing "
                            f"this function; wait for it, or remove the tag {LOCK_TAG} if that run is dead")
    with aws_call("TagResource", function_arn, "lambda:TagResource"):
        lam.tag_resource(Resource=function_arn, Tags={LOCK_TAG: owner})
    # Tags have no compare-and-set: two runs that both read "free" both write, and the last
    # write wins. Reading back after the other run's write has landed makes the loser refuse.
    time.sleep(LOCK_SETTLE_SECONDS)
    holder = functions.function_tags(lam, function_arn).get(LOCK_TAG)
    if holder != owner:
        raise ChangeRefused(function_arn.rsplit(":", 1)[-1], f"another runbook run ({holder}) took the lock "
                            f"on this function at the same time; wait for it, or remove the tag {LOCK_TAG} "
                            "if that run is dead")


def release_function_lock(lam, function_arn: str, owner: str) -> None:
    try:
        if functions.function_tags(lam, function_arn).get(LOCK_TAG) == owner:
            with aws_call("UntagResource", function_arn, "lambda:UntagResource"):
                lam.untag_resource(Resource=function_arn, TagKeys=[LOCK_TAG])
    except (AwsCallError, InputError):
        pass  # a lock that cannot be released is reported by the next run that meets it


def apply_under_lock(steps, ledger: Ledger, lam, function_arn: str, change_ticket: str, notebook: str,
                     what: str, progress=None) -> list[StepResult]:
    """Apply ``steps`` holding the ledger's lock and the function's lock tag.

    Refuses before any change without a ticket or when any step's plan is blocked; the
    ledger's journal says when the change started, how each step ended, or why it stopped.
    """
    require_ticket(True, change_ticket)
    blocked = [r for step in steps for r in step.plan() if r.action == BLOCKED]
    if blocked:
        raise ChangeRefused(blocked[0].resource, "; ".join(r.reason for r in blocked) + "; nothing was changed")
    owner = f"{what}:{ledger.path.parent.name}:{os.getpid()}:{int(time.time())}"
    ledger.acquire(owner)
    try:
        acquire_function_lock(lam, function_arn, owner)
        try:
            ledger.log(notebook, f"{what} started (change ticket {change_ticket})")
            results = run_steps(steps, apply=True, progress=progress)
            ledger.log(notebook, f"{what} finished: " + ", ".join(f"{r.step}={r.status}" for r in results))
        except RunbookError as exc:
            ledger.log(notebook, f"{what} stopped: {exc.message}")
            raise
        finally:
            release_function_lock(lam, function_arn, owner)
    finally:
        ledger.release(owner)
    return results


class Change:
    """What every step of one implementation shares: clients, names, the ledger, live lookups."""

    def __init__(self, target: Target, ledger: Ledger, function_name: str, secret_name: str,
                 kms_key: str, role_mode: str, code: bytes | None, use_reference_handler: bool,
                 edge_distribution_id: str, change_ticket: str, scanner=None, fingerprinter=None):
        self.target, self.ledger = target, ledger
        self.function_name = function_name
        self.secret_name = secret_name or secrets_store.default_secret_name(function_name)
        self.kms_key, self.role_mode, self.code = kms_key, role_mode, code
        self.use_reference_handler = bool(use_reference_handler) and code is None
        self.edge_distribution_id = edge_distribution_id
        self.change_ticket = change_ticket
        self.fingerprinter = fingerprinter or Fingerprinter()
        self.scanner = scanner
        self.lam = target.client("lambda")
        self.sm = target.client("secretsmanager")
        self.kms = target.client("kms")
        self.iam = target.client("iam")
        self.cf = target.client("cloudfront", region="us-east-1") if edge_distribution_id else None
        self.wait_delay = 20
        config = functions.get_configuration(self.lam, function_name)
        self.function_arn = config["FunctionArn"]
        parts = functions.arn_parts(self.function_arn)
        self.partition, self.region, self.account = parts["partition"], parts["region"], parts["account"]
        self.tags = secrets_store.runbook_tags(function_name, change_ticket)

    # -- live state -------------------------------------------------------------------------
    def live(self) -> dict:
        return functions.get_configuration(self.lam, self.function_name)

    def snapshot(self):
        return self.ledger.find("snapshot", self.function_name)

    def run_id(self) -> str:
        return f"{self.ledger.doc.get('created', '')}|{self.ledger.path.parent.name}|{self.function_name}"

    # -- what moves ----------------------------------------------------------------------------
    def findings(self) -> list[dict]:
        baseline = [f for f in self.ledger.baseline.get("findings", []) or []
                    if f.get("version") in (None, "", "$LATEST")
                    and (f.get("function") in (None, "", self.function_name)
                         or f.get("function_arn") == self.function_arn)]
        if baseline:
            return baseline
        scanner_cls = _scanner_class()
        if self.scanner is None and scanner_cls is None:
            raise InputError("run_dir", "the ledger has no test plan findings and the scanner is not "
                             "available: run the test plan notebook first")
        scanner = self.scanner or scanner_cls(fingerprinter=self.fingerprinter)
        found = [_finding_dict(f) for f in scanner.scan_environment(functions.environment(self.live()))]
        for f in found:
            f.setdefault("location", "environment")
            f["function"] = self.function_name
        return found

    def variables(self) -> tuple[list[str], list[str]]:
        """(names moved into the secret, AWS credential names removed without moving)."""
        snap = self.snapshot()
        if snap:
            return list(snap.data.get("moved_variables", [])), list(snap.data.get("removed_variables", []))
        env = functions.environment(self.live())
        env_findings = [f for f in self.findings() if f.get("location", "environment") == "environment"
                        and f.get("variable") in env and f.get("variable") != "SECRET_ID"]
        moved = sorted({f["variable"] for f in env_findings if f.get("remediation") == MOVE})
        removed = sorted({f["variable"] for f in env_findings if f.get("remediation") == USE_ROLE} - set(moved))
        return moved, removed

    # -- resources created by earlier steps ----------------------------------------------------
    def secret(self) -> dict | None:
        entry = self.ledger.find("secret")
        return secrets_store.describe_secret(self.sm, entry.resource if entry else self.secret_name)

    def secret_arn(self) -> str | None:
        secret = self.secret()
        return secret["ARN"] if secret else None

    def kms_key_arn(self) -> str | None:
        """The customer managed key's ARN, or None for the AWS managed key."""
        if self.kms_key == secrets_store.AWS_MANAGED_KEY:
            return None
        if self.kms_key == secrets_store.CREATE_KEY:
            meta = secrets_store.describe_key(self.kms, secrets_store.key_alias(self.function_name))
            return meta["Arn"] if meta else None
        meta = secrets_store.describe_key(self.kms, self.kms_key)
        return meta["Arn"] if meta else self.kms_key

    def role_arn(self) -> str | None:
        """The role the function runs as after the change."""
        if self.role_mode == "dedicated":
            role = iam.get_role(self.iam, iam.dedicated_role_name(self.function_name))
            return role["Arn"] if role else None
        snap = self.snapshot()
        return snap.data["role"] if snap else self.live()["Role"]

    def previous_role_arn(self) -> str:
        snap = self.snapshot()
        return snap.data["role"] if snap else self.live()["Role"]

    def record_function_state(self, step: str) -> None:
        self.ledger.record("function_state", self.function_name, "changed", step,
                           functions.state_marker(self.live()))

    def row(self, step: str, resource: str, action: str, reason: str) -> PlanRow:
        return PlanRow(step, resource, action, reason)


# -- steps ------------------------------------------------------------------------------------
class SnapshotStep(Step):
    name, title = "snapshot", "Publish a version of the function as it is, for backout"
    permissions = ("lambda:GetFunctionConfiguration", "lambda:PublishVersion")

    def __init__(self, change: Change):
        self.c = change

    def plan(self):
        snap = self.c.snapshot()
        if snap:
            try:
                functions.get_configuration(self.c.lam, self.c.function_name, str(snap.data["version"]))
            except InputError:
                return [self.c.row(self.name, self.c.function_name, BLOCKED,
                                   f"snapshot version {snap.data['version']} in the ledger no longer exists")]
            return [self.c.row(self.name, f"{self.c.function_name}:{snap.data['version']}", NONE,
                               "snapshot version recorded in the ledger")]
        moved, removed = self.c.variables()
        return [self.c.row(self.name, self.c.function_name, CREATE,
                           f"publish a version for backout; will move {len(moved)} variable(s) "
                           f"({', '.join(moved) or 'none'})"
                           + (f", remove AWS credential variable(s) {', '.join(removed)}" if removed else ""))]

    def apply(self):
        moved, removed = self.c.variables()
        config = self.c.live()
        published = functions.publish_version(
            self.c.lam, self.c.function_name,
            f"lambda-secrets-runbook snapshot before {self.c.change_ticket or 'change'}")
        self.c.ledger.record("snapshot", self.c.function_name, "created", self.name, {
            "version": published["Version"], "version_arn": published["FunctionArn"],
            "code_sha256": published["CodeSha256"], "last_modified": config.get("LastModified", ""),
            "role": config["Role"], "handler": config.get("Handler", ""),
            "variable_names": sorted(functions.environment(config)),
            "moved_variables": moved, "removed_variables": removed})

    def verify(self):
        snap = self.c.snapshot()
        if not snap:
            raise ChangeRefused(self.c.function_name, "no snapshot in the ledger after publishing")
        version = functions.get_configuration(self.c.lam, self.c.function_name, str(snap.data["version"]))
        if version["CodeSha256"] != snap.data["code_sha256"]:
            raise ChangeRefused(version["FunctionArn"], "snapshot code hash differs from the ledger")
        missing = set(snap.data["moved_variables"]) - set(functions.environment(version))
        if missing:
            raise ChangeRefused(version["FunctionArn"], f"snapshot lacks variables {sorted(missing)}")
        return (f"version {snap.data['version']} (CodeSha256 {snap.data['code_sha256'][:12]}…) keeps the "
                f"pre-change code and configuration; {len(snap.data['moved_variables'])} variable(s) to move")


class RoleStep(Step):
    name, title = "role", "Create a dedicated execution role"
    permissions = ("iam:GetRole", "iam:CreateRole", "iam:TagRole", "iam:ListRoleTags", "iam:PutRolePolicy",
                   "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies",
                   "iam:AttachRolePolicy")

    def __init__(self, change: Change):
        self.c = change
        self.role_name = iam.dedicated_role_name(change.function_name)

    def _wanted_inline(self) -> dict:
        edge_mode = bool(self.c.edge_distribution_id)
        wanted = {iam.LOGGING_POLICY_NAME: iam.logging_policy(self.c.partition, self.c.region, self.c.account,
                                                              self.c.function_name, edge_mode)}
        previous = iam.role_name_from_arn(self.c.previous_role_arn())
        if previous != self.role_name:
            for name, doc in iam.inline_policies(self.c.iam, previous).items():
                wanted[iam.COPIED_POLICY_PREFIX + name] = doc
        return wanted

    def _wanted_managed(self) -> set:
        previous = iam.role_name_from_arn(self.c.previous_role_arn())
        if previous == self.role_name:
            return set()
        own = iam.policy_arn(self.c.partition, self.c.account, iam.policy_name(self.c.function_name))
        return set(iam.attached_policy_arns(self.c.iam, previous)) - {own}

    def plan(self):
        role = iam.get_role(self.c.iam, self.role_name)
        if role is None:
            return [self.c.row(self.name, self.role_name, CREATE, "dedicated role trusting only Lambda, logging "
                               "to its own log group, with the previous role's other grants copied")]
        entry = self.c.ledger.find("role", role["Arn"])
        if not entry or not secrets_store.is_runbook_managed(iam.role_tags(self.c.iam, self.role_name),
                                                             self.c.function_name):
            return [self.c.row(self.name, role["Arn"], BLOCKED, "a role of this name exists and was not created "
                               "by this run of the runbook; delete or rename it, or use role_mode=existing")]
        missing = set(self._wanted_inline()) - set(iam.inline_policies(self.c.iam, self.role_name))
        missing |= self._wanted_managed() - set(iam.attached_policy_arns(self.c.iam, self.role_name))
        if missing:
            return [self.c.row(self.name, role["Arn"], UPDATE, f"add missing grants {sorted(missing)}")]
        return [self.c.row(self.name, role["Arn"], NONE, "dedicated role exists with its grants")]

    def apply(self):
        role = iam.get_role(self.c.iam, self.role_name)
        if role is None:
            trust = iam.trust_policy(self.c.account, bool(self.c.edge_distribution_id))
            arn = iam.create_role(self.c.iam, self.role_name, trust, self.c.tags,
                                  f"Execution role for {self.c.function_name} (lambda-secrets-runbook)")
            self.c.ledger.record("role", arn, "created", self.name, {
                "name": self.role_name, "previous_role": self.c.previous_role_arn()})
        for name, doc in self._wanted_inline().items():
            iam.put_inline(self.c.iam, self.role_name, name, doc)
        for arn in sorted(self._wanted_managed()):
            iam.attach(self.c.iam, self.role_name, arn)

    def verify(self):
        role = iam.get_role(self.c.iam, self.role_name)
        if role is None:
            raise ChangeRefused(self.role_name, "role missing after create")
        services = iam.trusted_services(role)
        allowed = {"lambda.amazonaws.com", "edgelambda.amazonaws.com"}
        if not services or services - allowed:
            raise ChangeRefused(role["Arn"], f"trust policy names {sorted(services)}")
        if iam.LOGGING_POLICY_NAME not in iam.inline_policies(self.c.iam, self.role_name):
            raise ChangeRefused(role["Arn"], "logging policy missing")
        return f"{role['Arn']} trusts only {', '.join(sorted(services))}; logs to its own log group"


class KmsKeyStep(Step):
    name, title = "kms-key", "Create a customer managed KMS key for the secret"
    permissions = ("kms:DescribeKey", "kms:CreateKey", "kms:CreateAlias", "kms:TagResource",
                   "kms:ListResourceTags", "kms:GetKeyPolicy", "kms:CancelKeyDeletion", "kms:EnableKey")

    def __init__(self, change: Change):
        self.c = change
        self.alias = secrets_store.key_alias(change.function_name)

    def plan(self):
        meta = secrets_store.describe_key(self.c.kms, self.alias)
        if meta is None:
            return [self.c.row(self.name, self.alias, CREATE, "customer managed key: account administers it, "
                               "the function's role decrypts only via Secrets Manager")]
        if not secrets_store.is_runbook_managed(secrets_store.key_tags(self.c.kms, meta["Arn"]),
                                                self.c.function_name):
            return [self.c.row(self.name, meta["Arn"], BLOCKED, f"{self.alias} names a key this runbook did "
                               "not create (no managed-by tag)")]
        if meta.get("KeyState") == "PendingDeletion":
            return [self.c.row(self.name, meta["Arn"], UPDATE, "key is scheduled for deletion: cancel it")]
        return [self.c.row(self.name, meta["Arn"], NONE, f"key {self.alias} exists")]

    def apply(self):
        meta = secrets_store.describe_key(self.c.kms, self.alias)
        if meta is None:
            role = self.c.role_arn()
            policy = secrets_store.key_policy(self.c.account, self.c.partition, self.c.region, role)
            arn = secrets_store.create_key(self.c.kms, self.alias, policy, self.c.tags,
                                           f"Secrets of {self.c.function_name} (lambda-secrets-runbook)")
            self.c.ledger.record("kms_key", arn, "created", self.name, {"alias": self.alias, "role": role})
        elif meta.get("KeyState") == "PendingDeletion":
            with aws_call("CancelKeyDeletion", meta["Arn"], "kms:CancelKeyDeletion"):
                self.c.kms.cancel_key_deletion(KeyId=meta["Arn"])
                self.c.kms.enable_key(KeyId=meta["Arn"])
            self.c.ledger.record("kms_key", meta["Arn"], "created", self.name, {"alias": self.alias})

    def verify(self):
        meta = secrets_store.describe_key(self.c.kms, self.alias)
        if meta is None or meta.get("KeyState") != "Enabled":
            raise ChangeRefused(self.alias, f"key not enabled ({meta and meta.get('KeyState')})")
        return f"{meta['Arn']} enabled, alias {self.alias}"


class SecretStep(Step):
    name, title = "secret", "Create or update the secret with the migrated variables"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue", "secretsmanager:CreateSecret",
                   "secretsmanager:PutSecretValue", "secretsmanager:TagResource", "secretsmanager:RestoreSecret",
                   "secretsmanager:UpdateSecret", "kms:GenerateDataKey", "kms:Decrypt")

    def __init__(self, change: Change):
        self.c = change

    def _desired(self, current: dict) -> tuple[dict, list[str]]:
        """Wanted values (in memory only) and the names found nowhere."""
        moved, _ = self.c.variables()
        env = functions.environment(self.c.live())
        wanted = {k: current[k] for k in moved if k in current}
        wanted.update({k: env[k] for k in moved if k in env})
        return wanted, [k for k in moved if k not in wanted]

    def _kms_differs(self, secret: dict) -> bool:
        wanted = self.c.kms_key_arn()
        have = secret.get("KmsKeyId")
        if wanted is None:
            return bool(have) and not have.endswith(secrets_store.AWS_MANAGED_KEY_ALIAS)
        meta = secrets_store.describe_key(self.c.kms, have) if have else None
        return not meta or meta["Arn"] != wanted

    def plan(self):
        moved, _ = self.c.variables()
        secret = self.c.secret()
        if secret is None:
            return [self.c.row(self.name, self.c.secret_name, CREATE, f"SecretString = JSON of {', '.join(moved)}; "
                               f"KMS {self.c.kms_key}")]
        entry = self.c.ledger.find("secret", secret["ARN"])
        tags = secrets_store.tags_dict(secret.get("Tags"))
        if not entry and not secrets_store.is_runbook_managed(tags, self.c.function_name):
            return [self.c.row(self.name, secret["ARN"], BLOCKED, "a secret of this name exists and was not created "
                               "by this runbook (no managed-by tag): choose another secret_name")]
        if secret.get("DeletedDate"):
            return [self.c.row(self.name, secret["ARN"], UPDATE, "secret is scheduled for deletion: restore it "
                               "and write the values")]
        current = secrets_store.current_values(self.c.sm, secret["ARN"])
        wanted, missing = self._desired(current)
        if missing:
            return [self.c.row(self.name, secret["ARN"], BLOCKED, f"variables {missing} are neither in the "
                               "function's configuration nor in the secret")]
        reasons = []
        if wanted != current:
            reasons.append("new version: the secret does not hold the function's current values")
        if self._kms_differs(secret):
            reasons.append(f"KMS key to {self.c.kms_key}")
        if reasons:
            return [self.c.row(self.name, secret["ARN"], UPDATE, "; ".join(reasons))]
        return [self.c.row(self.name, secret["ARN"], NONE, f"holds {len(wanted)} variable(s) equal to the "
                           "function's values")]

    def apply(self):
        secret = self.c.secret()
        kms_arn = self.c.kms_key_arn()
        moved, _ = self.c.variables()
        if secret is None:
            wanted, missing = self._desired({})
            if missing:
                raise ChangeRefused(self.c.secret_name, f"variables {missing} not in the function's configuration")
            arn = secrets_store.create_secret(
                self.c.sm, self.c.secret_name, wanted, kms_arn, self.c.tags,
                secrets_store.request_token(self.c.run_id(), "create"),
                f"Configuration of Lambda function {self.c.function_name} (lambda-secrets-runbook)")
            self.c.ledger.record("secret", arn, "created", self.name, {
                "name": self.c.secret_name, "kms_key": kms_arn or secrets_store.AWS_MANAGED_KEY,
                "variables": moved, "writes": 1})
            return
        arn = secret["ARN"]
        entry = self.c.ledger.find("secret", arn)
        if entry is None:  # tagged by an earlier run for this function: adopt it, say so
            entry = self.c.ledger.record("secret", arn, "adopted", self.name, {
                "name": secret["Name"], "variables": moved, "writes": 0})
        if secret.get("DeletedDate"):
            secrets_store.restore_secret(self.c.sm, arn)
        if self._kms_differs(secret):
            secrets_store.set_kms_key(self.c.sm, arn, kms_arn)
        current = secrets_store.current_values(self.c.sm, arn)
        wanted, missing = self._desired(current)
        if missing:
            raise ChangeRefused(arn, f"variables {missing} are nowhere to be read")
        if wanted != current:
            writes = int(entry.data.get("writes", 0)) + 1
            secrets_store.put_values(self.c.sm, arn, wanted,
                                     secrets_store.request_token(self.c.run_id(), f"put-{writes}"))
            self.c.ledger.record("secret", arn, entry.action, self.name, {"writes": writes})
        self.c.ledger.record("secret", arn, entry.action, self.name, {
            "kms_key": kms_arn or secrets_store.AWS_MANAGED_KEY, "variables": moved})

    def verify(self):
        secret = self.c.secret()
        if secret is None or secret.get("DeletedDate"):
            raise ChangeRefused(self.c.secret_name, "secret missing or scheduled for deletion after apply")
        tags = secrets_store.tags_dict(secret.get("Tags"))
        if not secrets_store.is_runbook_managed(tags, self.c.function_name):
            raise ChangeRefused(secret["ARN"], "secret lacks the runbook's tags")
        current = secrets_store.current_values(self.c.sm, secret["ARN"])
        wanted, missing = self._desired(current)
        if missing or wanted != current:
            raise ChangeRefused(secret["ARN"], "the secret's value does not equal the function's variables")
        return (f"{secret['ARN']} holds {len(current)} variable(s) ({', '.join(sorted(current))}) equal to the "
                f"function's values; KMS {secret.get('KmsKeyId') or secrets_store.AWS_MANAGED_KEY_ALIAS}")


class PolicyStep(Step):
    name, title = "policy", "Least-privilege policy: read exactly this secret, attached to the role"
    permissions = ("iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyTags", "iam:CreatePolicy",
                   "iam:TagPolicy", "iam:CreatePolicyVersion", "iam:ListPolicyVersions",
                   "iam:DeletePolicyVersion", "iam:ListAttachedRolePolicies", "iam:AttachRolePolicy",
                   "access-analyzer:ValidatePolicy")

    def __init__(self, change: Change):
        self.c = change
        self.policy_name = iam.policy_name(change.function_name)
        self.arn = iam.policy_arn(change.partition, change.account, self.policy_name)
        self.note = ""

    def _document(self, secret_arn: str) -> dict:
        return iam.secret_read_policy(secret_arn, self.c.kms_key_arn(), self.c.region)

    def plan(self):
        secret_arn, role_arn = self.c.secret_arn(), self.c.role_arn()
        role = iam.role_name_from_arn(role_arn) if role_arn else "(dedicated role)"
        policy = iam.get_policy(self.c.iam, self.arn)
        if policy is None:
            return [self.c.row(self.name, self.arn, CREATE, "secretsmanager:GetSecretValue on exactly the secret's "
                               f"ARN{' + kms:Decrypt via Secrets Manager' if self.c.kms_key != 'aws/secretsmanager' else ''}; "
                               f"attach to {role}")]
        if not self.c.ledger.find("policy", self.arn) and not secrets_store.is_runbook_managed(
                iam.policy_tags(self.c.iam, self.arn), self.c.function_name):
            return [self.c.row(self.name, self.arn, BLOCKED, "a policy of this name exists and was not created "
                               "by this runbook")]
        if not secret_arn:
            return [self.c.row(self.name, self.arn, UPDATE, "point the policy at the new secret")]
        rows = []
        doc = self._document(secret_arn)
        problems, _ = iam.validate_document(doc)
        if problems:
            return [self.c.row(self.name, self.arn, BLOCKED, "policy fails the lint: " + "; ".join(problems))]
        if iam.default_document(self.c.iam, policy) != doc:
            rows.append(self.c.row(self.name, self.arn, UPDATE, "policy document differs: new default version"))
        if role_arn is None or self.arn not in iam.attached_policy_arns(self.c.iam, iam.role_name_from_arn(role_arn)):
            rows.append(self.c.row(self.name, f"{role}|{self.policy_name}", UPDATE, f"attach to role {role}"))
        return rows or [self.c.row(self.name, self.arn, NONE, f"scoped to {secret_arn}, attached to {role}")]

    def apply(self):
        secret_arn = self.c.secret_arn()
        role_arn = self.c.role_arn()
        if not secret_arn or not role_arn:
            raise ChangeRefused(self.arn, "the secret and the role must exist first")
        doc = self._document(secret_arn)
        analyzer = self.c.target.client("accessanalyzer")
        problems, self.note = iam.validate_document(doc, analyzer)
        if problems:
            raise ChangeRefused(self.arn, "policy document refused: " + "; ".join(problems))
        policy = iam.get_policy(self.c.iam, self.arn)
        if policy is None:
            created = iam.create_policy(self.c.iam, self.policy_name, doc, self.c.tags,
                                        f"Read the secret of {self.c.function_name} (lambda-secrets-runbook)")
            self.c.ledger.record("policy", created, "created", self.name, {
                "name": self.policy_name, "secret": secret_arn, "validation": self.note})
        elif iam.default_document(self.c.iam, policy) != doc:
            iam.update_policy(self.c.iam, self.arn, doc)
            self.c.ledger.record("policy", self.arn, "created", self.name, {"secret": secret_arn,
                                                                             "validation": self.note})
        role = iam.role_name_from_arn(role_arn)
        if self.arn not in iam.attached_policy_arns(self.c.iam, role):
            iam.attach(self.c.iam, role, self.arn)
            self.c.ledger.record("policy_attachment", f"{role}|{self.arn}", "created", self.name,
                                 {"role": role, "policy_arn": self.arn})

    def verify(self):
        policy = iam.get_policy(self.c.iam, self.arn)
        secret_arn, role_arn = self.c.secret_arn(), self.c.role_arn()
        if policy is None:
            raise ChangeRefused(self.arn, "policy missing after apply")
        doc = iam.default_document(self.c.iam, policy)
        secret_resources = {s["Resource"] for s in doc["Statement"] if s["Action"] == "secretsmanager:GetSecretValue"}
        if secret_resources != {secret_arn}:
            raise ChangeRefused(self.arn, "policy is not scoped to exactly the secret's ARN")
        role = iam.role_name_from_arn(role_arn)
        if self.arn not in iam.attached_policy_arns(self.c.iam, role):
            raise ChangeRefused(self.arn, f"policy not attached to {role}")
        note = self.note or (self.c.ledger.find("policy", self.arn) or type("E", (), {"data": {}})).data.get(
            "validation", "")
        return f"{self.policy_name}: GetSecretValue on exactly {secret_arn}; attached to {role}; {note}".rstrip("; ")


class FunctionStep(Step):
    name, title = "function", "Function: variables out, SECRET_ID in, code deployed"
    permissions = ("lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration",
                   "lambda:UpdateFunctionCode", "iam:PassRole")

    def __init__(self, change: Change):
        self.c = change

    @property
    def edge_mode(self) -> bool:
        return bool(self.c.edge_distribution_id)

    def _kept_environment(self) -> dict:
        """Non-secret variables: from the live configuration, or from the snapshot for edge (none live)."""
        moved, removed = self.c.variables()
        snap = self.c.snapshot()
        if self.edge_mode and snap:
            source = functions.environment(functions.get_configuration(self.c.lam, self.c.function_name,
                                                                       str(snap.data["version"])))
        else:
            source = functions.environment(self.c.live())
        return {k: v for k, v in source.items() if k not in set(moved) | set(removed) | {"SECRET_ID"}}

    def wanted(self, secret_arn: str | None) -> dict:
        live = self.c.live()
        kept = self._kept_environment()
        out = {"handler": live.get("Handler"), "role": self.c.role_arn() or live["Role"], "package": None}
        if self.edge_mode:
            out["environment"] = {}
            out.update(layers=[], timeout=min(live.get("Timeout", 3), edge.VIEWER_MAX_TIMEOUT),
                       memory=min(live.get("MemorySize", 128), edge.VIEWER_MAX_MEMORY))
        else:
            out["environment"] = {**kept, "SECRET_ID": secret_arn or "(secret ARN)"}
        if self.c.code is not None:
            out["package"] = self.c.code
        elif self.c.use_reference_handler:
            out["handler"] = REFERENCE_HANDLER
            out["package"] = functions.build_reference_package(secret_arn or "", self.c.region,
                                                               kept if self.edge_mode else None)
        return out

    def _differences(self, live: dict, wanted: dict) -> list[str]:
        diffs = []
        env = functions.environment(live)
        if env != wanted["environment"]:
            gone = sorted(set(env) - set(wanted["environment"]))
            diffs.append("environment" + (f" (remove {', '.join(gone)})" if gone else "")
                         + (" (set SECRET_ID)" if env.get("SECRET_ID") != wanted["environment"].get("SECRET_ID")
                            and "SECRET_ID" in wanted["environment"] else ""))
        if wanted["package"] is not None and functions.code_sha256(wanted["package"]) != live.get("CodeSha256"):
            diffs.append("code (reference handler)" if self.c.use_reference_handler else "code (code_path)")
        if live.get("Handler") != wanted["handler"]:
            diffs.append(f"handler to {wanted['handler']}")
        if live.get("Role") != wanted["role"]:
            diffs.append(f"role to {iam.role_name_from_arn(wanted['role'])}")
        for key, field in (("layers", "Layers"), ("timeout", "Timeout"), ("memory", "MemorySize")):
            if key in wanted:
                have = functions.layer_arns(live) if key == "layers" else live.get(field)
                if have != wanted[key]:
                    diffs.append(f"{field} for Lambda@Edge")
        return diffs

    def plan(self):
        secret_arn = self.c.secret_arn()
        live = self.c.live()
        diffs = self._differences(live, self.wanted(secret_arn))
        if not secret_arn:
            return [self.c.row(self.name, self.c.function_name, UPDATE, "; ".join(diffs))]
        if diffs:
            return [self.c.row(self.name, self.c.function_name, UPDATE, "; ".join(diffs))]
        return [self.c.row(self.name, self.c.function_name, NONE, "no secret variable, SECRET_ID set, code deployed")]

    def apply(self):
        secret_arn = self.c.secret_arn()
        if not secret_arn:
            raise ChangeRefused(self.c.function_name, "the secret must exist before the function uses it")
        live = self.c.live()
        wanted = self.wanted(secret_arn)
        moved, removed = self.c.variables()
        self.c.ledger.record("function_config", self.c.function_name, "changed", self.name, {
            "snapshot_version": self.c.snapshot().data["version"], "removed_variables": moved + removed,
            "previous_role": live["Role"], "previous_handler": live.get("Handler")})
        if wanted["package"] is not None and functions.code_sha256(wanted["package"]) != live.get("CodeSha256"):
            functions.deploy_zip(self.c.lam, self.c.function_name, wanted["package"])
            self.c.ledger.record("function_code", self.c.function_name, "changed", self.name, {
                "previous_code_sha256": live.get("CodeSha256"),
                "code_sha256": functions.code_sha256(wanted["package"]),
                "source": "reference handler" if self.c.use_reference_handler else "code_path"})
            self.c.record_function_state(self.name)
        functions.update_configuration(
            self.c.lam, self.c.function_name, variables=wanted["environment"],
            role=wanted["role"] if wanted["role"] != live["Role"] else None,
            handler=wanted["handler"] if wanted["handler"] != live.get("Handler") else None,
            layers=wanted.get("layers"), timeout=wanted.get("timeout"), memory=wanted.get("memory"))
        self.c.record_function_state(self.name)

    def verify(self):
        secret_arn = self.c.secret_arn()
        live = self.c.live()
        diffs = self._differences(live, self.wanted(secret_arn))
        if diffs:
            raise ChangeRefused(self.c.function_name, "function not as wanted: " + "; ".join(diffs))
        moved, removed = self.c.variables()
        env = functions.environment(live)
        return (f"{len(env)} variable(s) kept ({', '.join(sorted(env))}); removed {', '.join(moved + removed)}; "
                f"handler {live.get('Handler')}; CodeSha256 {live.get('CodeSha256', '')[:12]}…")


def deactivate_access_key(shared, key: dict, step: str) -> str:
    """Set a hardcoded key Inactive and record it for backout; return the evidence line.

    ``shared`` is a step's shared state with ``iam`` and ``ledger`` (a :class:`Change`, or
    close-out's ``Closing``).

    The ledger keeps the key's owner and a salted fingerprint of its id (never the id), so a
    later backout in another process can find the key again to re-activate it.
    """
    line = iam.set_access_key_status(shared.iam, key["user"], key["key_id"], "Inactive")
    salt = key.get("salt") or _secrets.token_bytes(16).hex()
    shared.ledger.record("access_key", f"{key['user']}/{redact(key['key_id'])}", "changed", step, {
        "user": key["user"], "key_fingerprint": Fingerprinter(bytes.fromhex(salt))(key["key_id"]),
        "salt": salt, "previous_status": "Active", "evidence": line})
    return line


class AccessKeyStep(Step):
    name, title = "access-keys", "Hardcoded AWS access keys: the function uses its role now"
    permissions = ("iam:ListUsers", "iam:ListAccessKeys", "iam:UpdateAccessKey", "lambda:GetFunction")

    def __init__(self, change: Change):
        self.c = change
        self._keys: list[dict] | None = None
        self.evidence: list[str] = []

    def _code_fingerprints(self) -> set[str]:
        return {f["fingerprint"] for f in self.c.findings()
                if f.get("location") in ("code", "layer") and f.get("remediation") == USE_ROLE
                and f.get("fingerprint")}

    def _scan_snapshot_code(self) -> set[str]:
        scanner_cls = _scanner_class()
        snap = self.c.snapshot()
        if scanner_cls is None:
            return set()
        # the snapshot keeps the pre-change code; before it exists, $LATEST still is that code
        qualifier = str(snap.data["version"]) if snap else "$LATEST"
        try:
            data = functions.version_code(self.c.lam, self.c.function_name, qualifier)
        except RunbookError:
            return set()
        scanner = self.c.scanner or scanner_cls(fingerprinter=self.c.fingerprinter)
        return {f.fingerprint for f in scanner.scan_zip(data).findings if f.remediation == USE_ROLE}

    def keys(self) -> list[dict]:
        if self._keys is None:
            done = [e for e in self.c.ledger.entries("access_key", active_only=True)]
            found = []
            for entry in done:
                salt = bytes.fromhex(entry.data["salt"])
                found += [dict(k, salt=entry.data["salt"]) for k in iam.find_access_keys(
                    self.c.iam, {entry.data["key_fingerprint"]}, Fingerprinter(salt))
                    if k["user"] == entry.data["user"]]
            if not found:
                matches = iam.find_access_keys(self.c.iam, self._code_fingerprints(), self.c.fingerprinter)
                if not matches:
                    matches = iam.find_access_keys(self.c.iam, self._scan_snapshot_code(), self.c.fingerprinter)
                found = matches
            self._keys = found
        return self._keys

    def plan(self):
        self._keys = None  # re-read: the account may have changed since the last plan
        keys = self.keys()
        if not keys:
            return [self.c.row(self.name, self.c.function_name, NONE, "no hardcoded AWS access key of an IAM user "
                               "of this account found in the code")]
        rows = []
        for key in keys:
            resource = f"{key['user']} {redact(key['key_id'])}"
            if key["status"] == "Inactive":
                rows.append(self.c.row(self.name, resource, NONE, "hardcoded key already inactive"))
            elif self.c.target.name == "lab":
                rows.append(self.c.row(self.name, resource, UPDATE, "deactivate the hardcoded key (lab)"))
            else:
                rows.append(self.c.row(self.name, resource, NONE, "owner must deactivate this hardcoded key "
                                       "(the function no longer uses it)"))
        return rows

    def apply(self):
        for key in self.keys():
            if key["status"] != "Active" or self.c.target.name != "lab":
                continue
            self.evidence.append(deactivate_access_key(self.c, key, self.name))
        self._keys = None

    def verify(self):
        keys = self.keys()
        if self.c.target.name == "lab":
            active = [k for k in keys if k["status"] != "Inactive"]
            if active:
                raise ChangeRefused(self.c.function_name, f"{len(active)} hardcoded key(s) still active")
        lines = self.evidence or [e.data.get("evidence", "") for e in self.c.ledger.entries("access_key", True)]
        if not keys:
            return "no hardcoded access key to deactivate"
        return "; ".join(l for l in lines if l) or ", ".join(
            f"{k['user']} {redact(k['key_id'])} {k['status']}" for k in keys)


class EdgeStep(Step):
    name, title = "edge", "Lambda@Edge: publish a version and associate it as viewer-request"
    permissions = ("lambda:PublishVersion", "lambda:GetFunction", "lambda:EnableReplication*",
                   "cloudfront:GetDistribution", "cloudfront:GetDistributionConfig",
                   "cloudfront:UpdateDistribution", "iam:CreateServiceLinkedRole")

    def __init__(self, change: Change):
        self.c = change
        self.distribution_id = change.edge_distribution_id

    def plan(self):
        config, _ = edge.get_distribution_config(self.c.cf, self.distribution_id)
        associated = edge.viewer_request_arn(config)
        entry = self.c.ledger.find("edge_association", self.distribution_id)
        live = self.c.live()
        if entry and associated == entry.data["version_arn"] and entry.data.get("code_sha256") == live.get("CodeSha256"):
            return [self.c.row(self.name, self.distribution_id, NONE, f"viewer-request runs {associated}")]
        return [self.c.row(self.name, self.distribution_id, UPDATE if associated else CREATE,
                           "publish a version and associate it as viewer-request on the default cache behaviour"
                           + (f" (replacing {associated})" if associated else ""))]

    def apply(self):
        published = functions.publish_version(self.c.lam, self.c.function_name,
                                              f"lambda-secrets-runbook edge {self.c.change_ticket}")
        self.c.ledger.record("edge_version", published["FunctionArn"], "created", self.name,
                             {"version": published["Version"]})
        self.c.record_function_state(self.name)
        previous_entry = self.c.ledger.find("edge_association", self.distribution_id)
        previous = edge.set_viewer_request(self.c.cf, self.distribution_id, published["FunctionArn"])
        if previous_entry:
            previous = previous_entry.data.get("previous_arn")
        self.c.ledger.record("edge_association", self.distribution_id, "changed" if previous else "created",
                             self.name, {"version_arn": published["FunctionArn"], "previous_arn": previous,
                                         "event_type": edge.EVENT_TYPE, "code_sha256": published["CodeSha256"]})
        edge.wait_deployed(self.c.cf, self.distribution_id, delay=self.c.wait_delay)

    def verify(self):
        config, _ = edge.get_distribution_config(self.c.cf, self.distribution_id)
        entry = self.c.ledger.find("edge_association", self.distribution_id)
        associated = edge.viewer_request_arn(config)
        if not entry or associated != entry.data["version_arn"]:
            raise ChangeRefused(self.distribution_id, "viewer-request association not in the distribution")
        return f"distribution {self.distribution_id} viewer-request -> {associated}"


# -- entry point --------------------------------------------------------------------------------
class Implementation(StepSequence):
    """The implementation notebook's object: validated inputs, steps, plan, apply, checks.

    Parameters follow the notebook's parameters; see ``docs/implementation.md``.
    Raises :class:`InputError` (nothing changed) for an unknown function, a bad
    ``kms_key``/``role_mode``/``code_path``, an edge function that cannot be one,
    ``apply=True`` without ``change_ticket``, or a ledger bound to another function.
    """

    def __init__(self, target: Target, ledger: Ledger, function_name: str, secret_name: str = "",
                 kms_key: str = secrets_store.AWS_MANAGED_KEY, role_mode: str = "existing",
                 code_path: str = "", use_reference_handler: bool = True, edge_distribution_id: str = "",
                 change_ticket: str = "", apply: bool = False, scanner=None, fingerprinter=None):
        if not function_name:
            raise InputError("function_name", "name the function to migrate")
        if role_mode not in ROLE_MODES:
            raise InputError("role_mode", f"{role_mode!r} is not one of {', '.join(ROLE_MODES)}")
        require_ticket(apply, change_ticket)
        secrets_store.check_kms_parameter(kms_key, target.region)
        self.target, self.ledger, self.change_ticket = target, ledger, change_ticket
        lam = target.client("lambda")
        config = functions.get_configuration(lam, function_name)
        parts = functions.arn_parts(config["FunctionArn"])
        ledger.bind(account=parts["account"], region=parts["region"], function_name=function_name)
        code = functions.read_code_package(code_path, config.get("Handler", "")) if code_path else None
        self.change = Change(target, ledger, function_name, secret_name, kms_key, role_mode, code,
                             use_reference_handler, edge_distribution_id, change_ticket, scanner, fingerprinter)
        self._validate_account(config)
        c = self.change
        self.steps: list[Step] = [SnapshotStep(c)]
        if role_mode == "dedicated":
            self.steps.append(RoleStep(c))
        if kms_key == secrets_store.CREATE_KEY:
            self.steps.append(KmsKeyStep(c))
        self.steps += [SecretStep(c), PolicyStep(c), FunctionStep(c), AccessKeyStep(c)]
        if edge_distribution_id:
            self.steps.append(EdgeStep(c))
        self.results: list[StepResult] = []

    def _validate_account(self, config: dict) -> None:
        c = self.change
        if c.kms_key not in (secrets_store.AWS_MANAGED_KEY, secrets_store.CREATE_KEY):
            meta = secrets_store.describe_key(c.kms, c.kms_key)
            if meta is None or meta.get("KeyState") != "Enabled":
                raise InputError("kms_key", f"{c.kms_key} does not exist or is not enabled")
        moved, removed = c.variables()
        if not c.snapshot() and not moved and c.code is None:
            raise InputError("function_name", f"{c.function_name} has no environment variable to move into "
                             "Secrets Manager (the test plan found none); nothing to do")
        if c.edge_distribution_id:
            if not edge.distribution_exists(c.cf, c.edge_distribution_id):
                raise InputError("edge_distribution_id", f"no CloudFront distribution {c.edge_distribution_id}")
            env_after = {} if c.use_reference_handler else {
                k: 1 for k in functions.environment(config) if k not in set(moved) | set(removed)}
            problems = edge.edge_problems(config, c.region, env_after)
            if c.role_mode == "existing":
                role = iam.get_role(c.iam, iam.role_name_from_arn(c.previous_role_arn()))
                if role and "edgelambda.amazonaws.com" not in iam.trusted_services(role):
                    problems.append("the function's role does not trust edgelambda.amazonaws.com: "
                                    "use role_mode=dedicated")
            if problems:
                raise InputError("edge_distribution_id", "; ".join(problems))

    # -- the notebook's verbs ------------------------------------------------------------------
    def apply(self, progress=None) -> list[StepResult]:
        """Apply every step in order, asserting each; refuse before any change if a step is blocked."""
        self.results = apply_under_lock(self.steps, self.ledger, self.change.lam, self.change.function_arn,
                                        self.change_ticket, NOTEBOOK, "apply", progress=progress)
        return self.results

    def owner_actions(self) -> list[str]:
        """What the function's owner must still do (rotate exposed values, deactivate keys)."""
        c = self.change
        moved, removed = c.variables()
        lines = []
        if moved:
            lines.append(f"rotate at their source the values that were exposed in configuration: {', '.join(moved)} "
                         "(moving a value hides it, it does not un-expose it)")
        if removed:
            lines.append(f"AWS credentials were in the environment ({', '.join(removed)}): the function now uses "
                         "its role; deactivate and delete those keys")
        for step in self.steps:
            if isinstance(step, AccessKeyStep):
                for key in step.keys():
                    lines.append(f"hardcoded access key of IAM user {key['user']} ({redact(key['key_id'])}) is "
                                 f"{key['status']}" + (": delete it once nothing uses it" if key["status"] == "Inactive"
                                                       else ": deactivate it (iam update-access-key --status Inactive)"))
        return lines

    def checks(self) -> list[Check]:
        """Checks of phase ``change``: each step's assertion, as evidence records."""
        if not self.ledger.find("snapshot", self.change.function_name):
            return [Check("change-applied", "The change was applied and every step asserted", "change", SKIP,
                          reason="plan only: nothing was applied", controls=["CM-3"], notebook=NOTEBOOK)]
        out = []
        controls = {"snapshot": ["CP-10"], "role": ["AC-6"], "kms-key": ["SC-12", "SC-28"],
                    "secret": ["SC-28", "IA-5"], "policy": ["AC-6"], "function": ["IA-5(7)"],
                    "access-keys": ["IA-5(7)", "IA-5"], "edge": ["CM-3"]}
        for step in self.steps:
            try:
                status, reason, evidence = PASS, "", step.verify()
                if isinstance(step, AccessKeyStep) and self.target.name != "lab" and step.keys():
                    status, reason = WARN, "hardcoded keys listed for their owner to deactivate"
            except RunbookError as exc:
                status, reason, evidence = FAIL, exc.message, ""
            out.append(Check(f"change-{step.name}", step.title, "change", status, reason=reason,
                             evidence={"detail": evidence}, controls=controls.get(step.name, ["CM-3"]),
                             notebook=NOTEBOOK))
        return out
