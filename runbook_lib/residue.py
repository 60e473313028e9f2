"""Secret residue: published Lambda versions that still hold a migrated value.

A published version is immutable: every version published while a secret sat in the
environment keeps that plaintext value for as long as the version exists, and the
implementation's own snapshot (kept for backout) is one more copy. This module lists a
function's versions with one paged ``ListVersionsByFunction`` (each page carries the
versions' configurations, environment variables included), scans each version's
variables with the :class:`~runbook_lib.scanning.Scanner`, matches them against the
migrated values by keyed fingerprint, lists the aliases and the versions they point to,
and notes Lambda@Edge replicas.

Values are read into memory only to be fingerprinted; nothing here returns, logs or
raises with one.

Examples
--------
>>> known = migrated_fingerprints(lam, sm, ledger, "orders-api", fp)     # doctest: +SKIP
>>> sweep = sweep_function(lam, "orders-api", known, scanner, fp,
...                        snapshot_version="3")                         # doctest: +SKIP
>>> [v.version for v in sweep.holding()]                                # doctest: +SKIP
['1', '2', '3']
>>> residue_check(sweep, "validation", "03_functional_validation")      # doctest: +SKIP

The two checks are declared and judged in the catalog (``catalog/no_secret_residue.py``,
``catalog/exposed_credentials_rotated.py``); :func:`residue_check` and :func:`rotation_check`
are their entry points for validation and close-out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from . import catalog
from .catalog import exposed_credentials_rotated, no_secret_residue
from .checks import Check
from .exceptions import AwsCallError, InputError
from .records import AccessKey, Rotation
from .redaction import Fingerprinter
from .session import aws_call

LATEST = "$LATEST"
#: Secrets Manager stages read for the migrated values: the current one, and the one before a rotation.
SECRET_STAGES = ("AWSCURRENT", "AWSPREVIOUS")
EDGE_REPLICA_NOTE = ("Lambda@Edge: CloudFront keeps replicas of an associated version in other regions; "
                     "the version cannot be deleted until CloudFront removes them, typically hours after "
                     "the association is removed: re-run close-out then")
RESIDUE, ROTATED = no_secret_residue.SPEC.id, exposed_credentials_rotated.SPEC.id


# -- reading ----------------------------------------------------------------------------------
def list_versions(lam, function_name: str) -> list[dict]:
    """Every published version's configuration (``$LATEST`` excluded), oldest first.

    One paged ``ListVersionsByFunction``: the configurations it returns include the
    environment variables, so no per-version call is made.
    """
    with aws_call("ListVersionsByFunction", function_name, "lambda:ListVersionsByFunction"):
        configs = [v for page in lam.get_paginator("list_versions_by_function").paginate(
            FunctionName=function_name) for v in page.get("Versions", [])]
    published = [c for c in configs if c.get("Version", LATEST) != LATEST]
    return sorted(published, key=lambda c: int(c["Version"]) if str(c["Version"]).isdigit() else 0)


def list_aliases(lam, function_name: str) -> dict[str, list[str]]:
    """``{alias: [versions it routes to]}``: its version plus any weighted routing version."""
    with aws_call("ListAliases", function_name, "lambda:ListAliases"):
        aliases = [a for page in lam.get_paginator("list_aliases").paginate(FunctionName=function_name)
                   for a in page.get("Aliases", [])]
    out = {}
    for alias in aliases:
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        out[alias["Name"]] = [alias["FunctionVersion"]] + sorted(weights)
    return out


def _secret_values(sm, secret_id: str, stage: str) -> dict:
    try:
        with aws_call("GetSecretValue", secret_id, "secretsmanager:GetSecretValue"):
            response = sm.get_secret_value(SecretId=secret_id, VersionStage=stage)
    except AwsCallError as exc:
        if exc.code == "ResourceNotFoundException":  # no version in that stage (never rotated)
            return {}
        raise
    raw = response.get("SecretString")
    if raw is None:
        raw = (response.get("SecretBinary") or b"{}").decode("utf-8", "replace")
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def migrated_fingerprints(lam, sm, ledger, function_name: str, fingerprinter: Fingerprinter) -> dict[str, str]:
    """``{fingerprint: variable}`` of every value this run moved into Secrets Manager.

    Read from the snapshot version's environment (the values as they were exposed) while
    it exists, and from the secret's current and previous versions (the previous one is
    the exposed value after a rotation). Values are fingerprinted and dropped at once.
    """
    from . import functions

    out: dict[str, str] = {}
    snap = ledger.snapshot(function_name)
    moved = list(snap.moved_variables) if snap else []
    if snap and not snap.deleted_by_closeout:
        try:
            env = functions.environment(functions.get_configuration(lam, function_name, str(snap.version)))
        except InputError:  # the snapshot is gone: the secret still knows the values
            env = {}
        out.update({fingerprinter(str(env[name])): name for name in moved if env.get(name)})
        del env
    secret = ledger.secret()
    if secret is not None:
        for stage in SECRET_STAGES:
            values = _secret_values(sm, secret.resource, stage)
            out.update({fingerprinter(str(v)): k for k, v in values.items()
                        if v not in (None, "") and (not moved or k in moved)})
            del values
    return out


# -- the sweep ----------------------------------------------------------------------------------
@dataclass
class VersionResidue:
    """What one published version holds: migrated values (by name) and other scanner findings."""

    version: str
    arn: str
    description: str = ""
    migrated: list = field(default_factory=list)
    findings: list = field(default_factory=list)
    aliases: list = field(default_factory=list)
    snapshot: bool = False
    edge_note: str = ""

    @property
    def holds_secret(self) -> bool:
        return bool(self.migrated or self.findings)

    def row(self) -> dict:
        return {"version": self.version, "backout snapshot": self.snapshot,
                "migrated values": ", ".join(self.migrated),
                "other findings": ", ".join(f"{f['variable']} ({f['rule']}, {f['redacted']})" for f in self.findings),
                "aliases": ", ".join(self.aliases), "note": self.edge_note}


@dataclass
class Sweep:
    """The residue sweep of one function: its versions, aliases and what could not be read."""

    function_name: str
    versions: list = field(default_factory=list)
    aliases: dict = field(default_factory=dict)
    snapshot_version: str = ""
    errors: list = field(default_factory=list)

    def holding(self) -> list[VersionResidue]:
        return [v for v in self.versions if v.holds_secret]

    def others(self) -> list[VersionResidue]:
        """Versions other than the backout snapshot that hold a secret."""
        return [v for v in self.holding() if not v.snapshot]

    def frame(self):
        """pandas DataFrame, one row per published version (names and redacted previews only)."""
        import pandas as pd
        columns = ["version", "backout snapshot", "migrated values", "other findings", "aliases", "note"]
        return pd.DataFrame([v.row() for v in self.versions], columns=columns)

    def to_dict(self) -> dict:
        return {"function": self.function_name, "snapshot_version": self.snapshot_version,
                "aliases": self.aliases, "errors": self.errors,
                "versions": [{"version": v.version, "snapshot": v.snapshot, "migrated": v.migrated,
                              "findings": v.findings, "aliases": v.aliases, "edge_note": v.edge_note}
                             for v in self.versions]}


def sweep_function(lam, function_name: str, migrated: dict[str, str], scanner, fingerprinter: Fingerprinter,
                   snapshot_version: str = "", edge_version_arns: set | frozenset = frozenset()) -> Sweep:
    """Scan every published version's environment; findings carry the version.

    Parameters
    ----------
    migrated:
        ``{fingerprint: variable}`` from :func:`migrated_fingerprints` (same ``fingerprinter``).
    scanner:
        A :class:`~runbook_lib.scanning.Scanner`; its findings whose value is a migrated one
        are reported as migrated, the rest as other findings.
    snapshot_version:
        The backout snapshot's version number (from the ledger), marked as such.
    edge_version_arns:
        Version ARNs that are or were associated with CloudFront: they get the replica note.
    """
    sweep = Sweep(function_name, snapshot_version=str(snapshot_version or ""))
    try:
        sweep.aliases = list_aliases(lam, function_name)
    except AwsCallError as exc:
        sweep.errors.append(exc.message)
    for config in list_versions(lam, function_name):
        version = str(config["Version"])
        env = dict((config.get("Environment") or {}).get("Variables") or {})
        error = (config.get("Environment") or {}).get("Error")
        if error:
            sweep.errors.append(f"environment of {function_name}:{version} not readable: "
                                f"{error.get('ErrorCode', 'Error')} (needs kms:Decrypt)")
        names = sorted(name for name, value in env.items() if fingerprinter(str(value)) in migrated)
        findings = [{"variable": f.variable or "", "rule": f.rule, "redacted": f.redacted,
                     "fingerprint": f.fingerprint}
                    for f in scanner.scan_environment(env) if (f.variable or "") not in names]
        del env
        sweep.versions.append(VersionResidue(
            version=version, arn=config.get("FunctionArn", ""), description=config.get("Description", ""),
            migrated=names, findings=findings,
            aliases=sorted(a for a, targets in sweep.aliases.items() if version in targets),
            snapshot=version == sweep.snapshot_version,
            edge_note=EDGE_REPLICA_NOTE if config.get("FunctionArn") in edge_version_arns else ""))
    return sweep


# -- checks -----------------------------------------------------------------------------------
def residue_check(sweep: Sweep | None, phase: str, notebook: str, unavailable: str = "") -> Check:
    """``no-secret-residue`` of ``sweep`` in ``phase`` (``validation`` or ``closeout``).

    ``sweep=None``: SKIP (no function to sweep), or FAIL with ``unavailable`` (why it could not be made).
    """
    return catalog.make_check(RESIDUE, phase, no_secret_residue.judge(sweep, unavailable), notebook=notebook)


def exposure(ledger, function_name: str, lam=None, sm=None, iam=None, fingerprinter=None) -> list[dict]:
    """What was exposed and whether it has been replaced: one row per migrated variable and hardcoded key.

    A variable counts as rotated when the ledger records a rotation of it, or when the
    secret's current value differs (by fingerprint) from the value in the snapshot
    version. A hardcoded access key counts as rotated once it is inactive or deleted.
    """
    from . import functions, iam as iam_lib

    snap = ledger.snapshot(function_name)
    moved = list(snap.moved_variables) if snap else []
    rotated = {name for record in ledger.records(Rotation, active_only=True) for name in record.variables}
    changed: set[str] = set()
    if lam is not None and sm is not None and snap and not snap.deleted_by_closeout:
        fp = fingerprinter or Fingerprinter()
        secret = ledger.secret()
        try:
            env = functions.environment(functions.get_configuration(lam, function_name, str(snap.version)))
            current = _secret_values(sm, secret.resource, "AWSCURRENT") if secret else {}
        except (InputError, AwsCallError):
            env, current = {}, {}
        changed = {n for n in moved if n in current and n in env and fp(str(current[n])) != fp(str(env[n]))}
        del env, current
    rows = []
    for name in moved:
        done = name in rotated or name in changed
        how = ("new secret version put by close-out" if name in rotated else
               "the secret's value differs from the exposed one" if name in changed else "")
        rows.append({"item": name, "kind": "environment variable moved to Secrets Manager",
                     "exposed in": "the function's configuration and its published versions",
                     "rotated": done, "how": how or "replace it at its source, then put it with rotate_from"})
    for record in ledger.records(AccessKey):
        status = record.previous_status
        if iam is not None:
            fp_key = Fingerprinter(bytes.fromhex(record.salt))
            keys = [k for k in iam_lib.find_access_keys(iam, {record.key_fingerprint}, fp_key)
                    if k["user"] == record.user]
            status = keys[0]["status"] if keys else "deleted"
        rows.append({"item": record.resource, "kind": "AWS access key hardcoded in the code",
                     "exposed in": "the deployment package of the snapshot and older versions",
                     "rotated": status in ("Inactive", "deleted"),
                     "how": f"key is {status}" + ("; delete it once nothing uses it" if status == "Inactive" else
                                                  "" if status == "deleted" else "; deactivate it")})
    return rows


def rotation_check(rows: list[dict] | None, phase: str, notebook: str, unavailable: str = "") -> Check:
    """``exposed-credentials-rotated`` of the :func:`exposure` rows in ``phase`` (``validation`` or ``closeout``).

    ``rows=None`` with ``unavailable``: FAIL saying why the rows could not be read.
    """
    return catalog.make_check(ROTATED, phase, exposed_credentials_rotated.judge(rows, unavailable), notebook=notebook)
