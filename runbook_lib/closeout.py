"""Close-out: once the change is accepted, remove the residue and replace what was exposed.

:class:`Closeout` reads the run's ledger (same run folder as the implementation) and
builds three steps, planned first and applied only with ``apply=True`` and a change
ticket, each asserted after it runs (:mod:`runbook_lib.steps`):

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

A ``closeout`` ledger entry is written before the snapshot is deleted: backout refuses
from then on (nothing to restore from).

Examples
--------
>>> closing = Closeout(target, ledger, change_ticket="CHG-2", apply=True,
...                    rotate_from="new-values.json")       # doctest: +SKIP
>>> plan_frame(closing.plan()); closing.apply(progress=print) # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from . import edge, functions, residue, secrets_store
from .checks import FAIL, PASS, SKIP, Check
from .exceptions import AwsCallError, ChangeRefused, InputError, RunbookError
from .implementation import AccessKeyStep, Change, apply_under_lock, deactivate_access_key
from .ledger import Ledger
from .redaction import Fingerprinter, redact
from .session import Target, aws_call
from .steps import BLOCKED, DELETE, NONE, UPDATE, PlanRow, Step, StepResult, StepSequence, require_ticket

NOTEBOOK = "05_closeout"
PHASE = "closeout"
STEP_CONTROLS = {"rotate": ["IA-5(1)", "IA-5"], "access-keys": ["IA-5(7)", "IA-5"], "versions": ["IA-5(7)", "SC-28"]}


class _NewValues:
    """Replacement values, in memory only; nothing about it shows them."""

    __slots__ = ("items",)

    def __init__(self, items: dict):
        self.items = items

    def __repr__(self) -> str:
        return f"<{len(self.items)} new values hidden>"

    def __bool__(self) -> bool:
        return bool(self.items)


def read_rotation_file(path: str, allowed: list[str]) -> _NewValues:
    """The JSON object of new values in ``path``; errors name keys and the file, never a value."""
    if not path:
        return _NewValues({})
    file = Path(path)
    if not file.is_file():
        raise InputError("rotate_from", f"{path} does not exist or is not a file")
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise InputError("rotate_from", f"{path} is not valid JSON (expected an object of "
                         "variable name to new value)") from None
    if not isinstance(doc, dict) or not doc:
        raise InputError("rotate_from", f"{path} must hold a non-empty JSON object of variable name to new value")
    unknown = sorted(set(doc) - set(allowed))
    if unknown:
        raise InputError("rotate_from", f"{path} names {', '.join(unknown)}, which this run did not move "
                         f"into the secret (moved: {', '.join(allowed) or 'none'})")
    bad = sorted(k for k, v in doc.items() if not isinstance(v, str) or not v.strip())
    if bad:
        raise InputError("rotate_from", f"{path}: the new value of {', '.join(bad)} must be a non-empty string")
    return _NewValues(doc)


class Closing:
    """What the close-out steps share: clients, the ledger, the function, the migrated fingerprints."""

    def __init__(self, target: Target, ledger: Ledger, function_name: str, change_ticket: str,
                 new_values: _NewValues, scanner, fingerprinter: Fingerprinter):
        self.target, self.ledger, self.function_name = target, ledger, function_name
        self.change_ticket = change_ticket
        self.new_values = new_values
        self.fingerprinter = fingerprinter
        self._scanner = scanner
        self.lam = target.client("lambda")
        self.sm = target.client("secretsmanager")
        self.iam = target.client("iam")
        self._cf = None
        # read once, before anything changes: after the snapshot is deleted and the secret
        # rotated, these fingerprints are the only memory of the exposed values
        self.migrated = residue.migrated_fingerprints(self.lam, self.sm, ledger, function_name, fingerprinter)

    @property
    def scanner(self):
        if self._scanner is None:
            from .scanning import Scanner
            self._scanner = Scanner(fingerprinter=self.fingerprinter)
        return self._scanner

    @property
    def cf(self):
        if self._cf is None:
            self._cf = self.target.client("cloudfront", region="us-east-1")
        return self._cf

    def snapshot_version(self) -> str:
        snap = self.ledger.find("snapshot", self.function_name)
        return str(snap.data["version"]) if snap else ""

    def moved(self) -> list[str]:
        snap = self.ledger.find("snapshot", self.function_name)
        return list((snap.data.get("moved_variables") if snap else None) or [])

    def edge_version_arns(self) -> set[str]:
        arns = {e.resource for e in self.ledger.entries("edge_version")}
        for entry in self.ledger.entries("edge_association"):
            arns |= {a for a in (entry.data.get("version_arn"), entry.data.get("previous_arn")) if a}
        return arns

    def associated_arns(self) -> dict[str, list[str]]:
        """``{version ARN: [distribution ids]}`` still associated, for the distributions in the ledger."""
        out: dict[str, list[str]] = {}
        for dist in sorted({e.resource for e in self.ledger.entries("edge_association")}):
            config, _ = edge.get_distribution_config(self.cf, dist)
            behaviours = [config.get("DefaultCacheBehavior") or {}] + list(
                (config.get("CacheBehaviors") or {}).get("Items") or [])
            for b in behaviours:
                for a in (b.get("LambdaFunctionAssociations") or {}).get("Items") or []:
                    out.setdefault(a.get("LambdaFunctionARN", ""), []).append(dist)
        return out

    def sweep(self) -> residue.Sweep:
        snap = self.ledger.find("snapshot", self.function_name)
        version = "" if (snap and snap.data.get("deleted_by_closeout")) else self.snapshot_version()
        return residue.sweep_function(self.lam, self.function_name, self.migrated, self.scanner,
                                      self.fingerprinter, snapshot_version=version,
                                      edge_version_arns=self.edge_version_arns())

    def row(self, step: str, resource: str, action: str, reason: str) -> PlanRow:
        return PlanRow(step, resource, action, reason)


# -- steps ------------------------------------------------------------------------------------
class RotateStep(Step):
    name, title = "rotate", "Put the values replaced at their source in a new secret version"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                   "secretsmanager:PutSecretValue", "kms:GenerateDataKey", "kms:Decrypt")

    def __init__(self, closing: Closing):
        self.c = closing
        self.version_id = ""

    def _secret_arn(self) -> str:
        entry = self.c.ledger.find("secret")
        return entry.resource if entry else ""

    def _wanted(self, current: dict) -> dict:
        return {**current, **self.c.new_values.items}

    def plan(self):
        arn = self._secret_arn()
        moved = self.c.moved()
        if not arn:
            return [self.c.row(self.name, "-", NONE, "no secret in the ledger: nothing to rotate")]
        if not self.c.new_values:
            return [self.c.row(self.name, arn, NONE, f"no rotate_from file: {', '.join(moved) or 'the values'} "
                               "stay valid as exposed until replaced at their source; then re-run with "
                               "rotate_from=<JSON file of the new values>")]
        current = secrets_store.current_values(self.c.sm, arn)
        names = sorted(self.c.new_values.items)
        if self._wanted(current) == current:
            return [self.c.row(self.name, arn, NONE, f"the secret already holds the supplied values of "
                               f"{', '.join(names)}")]
        left = sorted(set(moved) - set(names))
        return [self.c.row(self.name, arn, UPDATE, f"new secret version with new values of {', '.join(names)} "
                           "(not shown); the function picks them up when its cache expires "
                           "(SECRET_TTL_SECONDS) or at the first authentication failure"
                           + (f"; still exposed: {', '.join(left)}" if left else ""))]

    def apply(self):
        arn = self._secret_arn()
        current = secrets_store.current_values(self.c.sm, arn)
        wanted = self._wanted(current)
        entry = self.c.ledger.find("rotation", arn)
        count = int(entry.data.get("rotations", 0)) + 1 if entry else 1
        token = secrets_store.request_token(self.c.ledger.doc.get("created", ""), self.c.ledger.path.parent.name,
                                            self.c.function_name, f"rotate-{count}")
        self.version_id = secrets_store.put_values(self.c.sm, arn, wanted, token)
        del current, wanted
        names = sorted(set(self.c.new_values.items) | set(entry.data.get("variables", []) if entry else []))
        self.c.ledger.record("rotation", arn, "changed", self.name, {
            "variables": names, "rotations": count, "version_id": self.version_id,
            "change_ticket": self.c.change_ticket})

    def verify(self):
        arn = self._secret_arn()
        if not arn or not self.c.new_values:
            return "nothing rotated: " + self.plan()[0].reason
        current = secrets_store.current_values(self.c.sm, arn)
        held = all(current.get(k) == v for k, v in self.c.new_values.items.items())
        del current
        if not held:
            raise ChangeRefused(arn, "the secret's current version does not hold the supplied values")
        entry = self.c.ledger.find("rotation", arn)
        return (f"{arn}: AWSCURRENT holds the new values of {', '.join(sorted(self.c.new_values.items))}"
                + (f" (version {entry.data['version_id']})" if entry else "")
                + "; the exposed values stay in AWSPREVIOUS until the next rotation")


class AccessKeyCloseStep(Step):
    name, title = "access-keys", "Hardcoded AWS access keys: show the owner, deactivate"
    permissions = ("iam:ListUsers", "iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:UpdateAccessKey",
                   "sts:GetAccessKeyInfo", "lambda:GetFunction")

    def __init__(self, closing: Closing):
        self.c = closing
        self._finder: AccessKeyStep | None = None
        self.evidence: list[str] = []

    def _keys(self) -> list[dict]:
        # the implementation's key discovery (ledger, then test plan fingerprints, then the
        # snapshot's code), reused rather than repeated
        if self._finder is None:
            change = Change(self.c.target, self.c.ledger, self.c.function_name, "", secrets_store.AWS_MANAGED_KEY,
                            "existing", None, True, "", self.c.change_ticket, self.c._scanner,
                            self.c.fingerprinter)
            self._finder = AccessKeyStep(change)
        self._finder._keys = None
        return self._finder.keys()

    def owner(self, key: dict) -> dict:
        """Who owns a key and when it was last used; what could not be read says why."""
        out = {"access_key": f"{key['user']} {redact(key['key_id'])}", "status": key["status"],
               "user": key["user"], "account": "", "last_used": "", "last_service": ""}
        try:
            with aws_call("GetAccessKeyLastUsed", redact(key["key_id"]), "iam:GetAccessKeyLastUsed"):
                used = self.c.iam.get_access_key_last_used(AccessKeyId=key["key_id"])
            last = used.get("AccessKeyLastUsed") or {}
            out.update(user=used.get("UserName", key["user"]), last_used=str(last.get("LastUsedDate", "never")),
                       last_service=f"{last.get('ServiceName', '')} {last.get('Region', '')}".strip())
        except AwsCallError as exc:
            out["last_used"] = f"unavailable: {exc.code}"
        try:
            with aws_call("GetAccessKeyInfo", redact(key["key_id"]), "sts:GetAccessKeyInfo"):
                out["account"] = self.c.target.client("sts").get_access_key_info(
                    AccessKeyId=key["key_id"]).get("Account", "")
        except AwsCallError as exc:
            out["account"] = f"unavailable: {exc.code}"
        return out

    def owners(self) -> list[dict]:
        return [self.owner(k) for k in self._keys()]

    def plan(self):
        keys = self._keys()
        if not keys:
            return [self.c.row(self.name, self.c.function_name, NONE, "no hardcoded AWS access key of an IAM user "
                               "of this account found in the code")]
        rows = []
        for key in keys:
            who = self.owner(key)
            about = f"owner {who['user']} (account {who['account'] or '?'}), last used {who['last_used'] or '?'}"
            if key["status"] == "Inactive":
                rows.append(self.c.row(self.name, who["access_key"], NONE, f"already inactive; {about}; delete it once "
                                       "nothing else uses it"))
            else:
                rows.append(self.c.row(self.name, who["access_key"], UPDATE, f"deactivate: it was exposed in the code; "
                                       f"{about}"))
        return rows

    def apply(self):
        for key in self._keys():
            if key["status"] != "Active":
                continue
            self.evidence.append(deactivate_access_key(self.c, key, self.name))

    def verify(self):
        keys = self._keys()
        active = [k for k in keys if k["status"] != "Inactive"]
        if active:
            raise ChangeRefused(self.c.function_name, f"{len(active)} hardcoded key(s) still active")
        if not keys:
            return "no hardcoded access key"
        return "; ".join(self.evidence) or ", ".join(f"{k['user']} {redact(k['key_id'])} Inactive" for k in keys)


class VersionsStep(Step):
    name, title = "versions", "Delete the backout snapshot and every version holding a migrated value"
    permissions = ("lambda:ListVersionsByFunction", "lambda:ListAliases", "lambda:GetFunctionConfiguration",
                   "lambda:DeleteFunction", "secretsmanager:GetSecretValue", "cloudfront:GetDistributionConfig")

    def __init__(self, closing: Closing):
        self.c = closing
        self.deleted: list[str] = []

    def _rows(self, sweep: residue.Sweep) -> list[PlanRow]:
        associated = self.c.associated_arns() if self.c.ledger.entries("edge_association") else {}
        rows = []
        for v in sweep.versions:
            resource = f"{self.c.function_name}:{v.version}"
            holds = ", ".join(v.migrated) or "no migrated value"
            if not (v.migrated or v.snapshot):
                if v.findings:
                    rows.append(self.c.row(self.name, resource, NONE, "holds other secret findings ("
                                           + ", ".join(f["variable"] for f in v.findings) + ") that this run did "
                                           "not migrate: not deleted by close-out; migrate them in their own change"))
                continue
            what = (f"the backout snapshot ({holds}): backout is impossible afterwards" if v.snapshot
                    else f"holds migrated value(s) {holds}")
            if v.aliases:
                which = "is the backout snapshot" if v.snapshot else f"holds migrated value(s) {holds}"
                rows.append(self.c.row(self.name, resource, BLOCKED, f"alias(es) {', '.join(v.aliases)} point to "
                                       f"version {v.version}, which {which}: Lambda "
                                       "refuses to delete a version an alias points to, and callers of the alias "
                                       "run its old configuration; point the alias at a clean version (aws lambda "
                                       f"update-alias --function-name {self.c.function_name} --name {v.aliases[0]} "
                                       "--function-version N) or delete the alias, then re-run close-out"))
            elif v.arn in associated:
                rows.append(self.c.row(self.name, resource, BLOCKED, f"{what}; CloudFront distribution(s) "
                                       f"{', '.join(associated[v.arn])} still run this version: remove the "
                                       "association first"))
            else:
                rows.append(self.c.row(self.name, resource, DELETE, f"delete: {what}"
                                       + (f"; {v.edge_note}" if v.edge_note else "")))
        return rows or [self.c.row(self.name, self.c.function_name, NONE,
                                   "no published version holds a migrated value")]

    def plan(self):
        return self._rows(self.c.sweep())

    def apply(self):
        rows = [r for r in self._rows(self.c.sweep()) if r.action == DELETE]
        versions = [r.resource.rsplit(":", 1)[1] for r in rows]
        snapshot = self.c.snapshot_version()
        # written before the first delete: from here on a backout has nothing to restore from
        self.c.ledger.record("closeout", self.c.function_name, "changed", self.name, {
            "status": "started", "change_ticket": self.c.change_ticket, "snapshot_version": snapshot,
            "versions_to_delete": versions})
        for version in versions:
            self._delete(version)
            self.deleted.append(version)
            if version == snapshot:
                snap = self.c.ledger.find("snapshot", self.c.function_name)
                self.c.ledger.record("snapshot", snap.resource, snap.action, snap.step,
                                     {"deleted_by_closeout": True})

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
        entry = self.c.ledger.find("closeout", self.c.function_name)
        deleted = sorted(set(self.deleted) | set((entry.data.get("deleted_versions") if entry else None) or []),
                         key=lambda v: int(v) if v.isdigit() else 0)
        self.c.ledger.record("closeout", self.c.function_name, "changed", self.name, {
            "status": "complete", "deleted_versions": deleted})
        return (f"deleted version(s) {', '.join(deleted) or 'none'}"
                + (f" (snapshot {snapshot})" if snapshot in deleted else "")
                + f"; {len(sweep.versions)} published version(s) remain, none holds a migrated value")


# -- entry point ----------------------------------------------------------------------------------
class Closeout(StepSequence):
    """The close-out notebook's object: validated inputs, steps, plan, apply, checks.

    Raises :class:`InputError` (nothing changed) for a ledger without an implementation,
    a change that was backed out, ``apply=True`` without ``change_ticket``, or a bad
    ``rotate_from`` file (missing, not JSON, names a variable this run did not move).
    """

    def __init__(self, target: Target, ledger: Ledger, change_ticket: str = "", apply: bool = False,
                 rotate_from: str = "", function_name: str = "", scanner=None,
                 fingerprinter: Fingerprinter | None = None):
        require_ticket(apply, change_ticket)
        function_name = function_name or ledger.context.get("function_name", "")
        if not function_name:
            raise InputError("run_dir", "this run's ledger names no function: pass the run folder of the "
                             "implementation to close out")
        ledger.bind(function_name=function_name)
        snap = ledger.find("snapshot", function_name)
        if snap is None:
            raise InputError("run_dir", "this run's ledger records no applied implementation (no snapshot): "
                             "nothing to close out")
        if any(e.undone for e in ledger.entries("function_config")) and not ledger.entries(
                "function_config", active_only=True):
            raise InputError("run_dir", "this run's change was backed out: nothing to close out")
        moved = list(snap.data.get("moved_variables") or [])
        self.target, self.ledger, self.change_ticket = target, ledger, change_ticket
        self.function_name = function_name
        new_values = read_rotation_file(rotate_from, moved)
        self.closing = Closing(target, ledger, function_name, change_ticket, new_values, scanner,
                               fingerprinter or Fingerprinter())
        self.rotate = RotateStep(self.closing)
        self.access_keys = AccessKeyCloseStep(self.closing)
        self.versions = VersionsStep(self.closing)
        self.steps: list[Step] = [self.rotate, self.access_keys, self.versions]
        self.results: list[StepResult] = []

    def permissions_by_service(self) -> dict[str, list[str]]:
        """``{service: [actions]}``: printed this way, ``secretsmanager:GetSecretValue`` is not
        mistaken for a ``key: value`` assignment by the artifact leak guard."""
        out: dict[str, list[str]] = {}
        for permission in self.permissions():
            service, _, action = permission.partition(":")
            out.setdefault(service, []).append(action)
        return out

    def apply(self, progress=None) -> list[StepResult]:
        """Apply every step in order, asserting each; refuse before any change if a step is blocked."""
        lam = self.closing.lam
        arn = functions.get_configuration(lam, self.function_name)["FunctionArn"]
        self.results = apply_under_lock(self.steps, self.ledger, lam, arn, self.change_ticket, NOTEBOOK,
                                        "close-out", progress=progress)
        return self.results

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
            lines.append(f"{row['item']} ({row['kind']}) was exposed in {row['exposed in']}: {state} - "
                         f"{row['how']}")
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
        out = []
        applied = self.ledger.find("closeout", self.function_name) is not None
        for step in self.steps:
            cid = f"closeout-{step.name}"
            if not applied:
                out.append(Check(cid, step.title, PHASE, SKIP, reason="plan only: nothing was applied",
                                 controls=STEP_CONTROLS[step.name], notebook=NOTEBOOK))
                continue
            try:
                status, reason, detail = PASS, "", step.verify()
            except RunbookError as exc:
                status, reason, detail = FAIL, exc.message, ""
            out.append(Check(cid, step.title, PHASE, status, reason=reason, evidence={"detail": detail},
                             controls=STEP_CONTROLS[step.name], notebook=NOTEBOOK))
        try:
            out.append(residue.residue_check(self.sweep(), PHASE, NOTEBOOK))
        except RunbookError as exc:
            out.append(residue.residue_check(None, PHASE, NOTEBOOK, unavailable=f"could not be evaluated: {exc}"))
        try:
            out.append(residue.rotation_check(self.exposure(), PHASE, NOTEBOOK))
        except RunbookError as exc:
            out.append(Check("exposed-credentials-rotated", residue.ROTATED_TITLE, PHASE, FAIL,
                             reason=f"could not be evaluated: {exc}", controls=residue.ROTATED_CONTROLS,
                             notebook=NOTEBOOK))
        return out


def refusal_after_closeout(ledger: Ledger, function_name: str) -> str:
    """Why backout is refused once this run was closed out; empty when it was not."""
    entry = ledger.find("closeout", function_name)
    if entry is None:
        return ""
    version = entry.data.get("snapshot_version") or "?"
    return (f"this run was closed out at {entry.at} (change ticket {entry.data.get('change_ticket') or '?'}): "
            f"the backout snapshot (version {version}) is deleted, so there is nothing to restore the function "
            "from; restore a known configuration by hand or run a new change instead")


# -- headless: `runbook closeout RUN_DIR [--apply] [-p change_ticket ...]` -------------------------
