"""Hardcoded AWS access keys: find them, say who owns them, deactivate and re-activate them.

The implementation deactivates the keys it finds in the function's code (in the lab; on
AWS it lists them for their owner), close-out deactivates them on any target, backout
re-activates them when asked. All three use this module.

Where the keys come from, in order: the ledger (keys this run deactivated, found again by
their salted fingerprint), the test plan's code findings (remediation ``remove-use-role``)
matched to IAM users by fingerprint, and, when neither matches (another process, another
fingerprint key), a scan of the snapshot's code package (``$LATEST`` before the snapshot
exists). A key id lives in memory only: records keep the user and a salted fingerprint,
evidence the redacted id.

Examples
--------
>>> keys = find_keys(ctx)                               # doctest: +SKIP
>>> deactivate(ctx, keys[0], step="access-keys")        # doctest: +SKIP
'aws iam update-access-key --user-name orders-legacy-ci --access-key-id AKIA…(20) --status Inactive'
"""

from __future__ import annotations

import secrets

from .. import functions, iam
from ..exceptions import AwsCallError, RunbookError
from ..records import AccessKey
from ..redaction import Fingerprinter, redact
from ..session import aws_call
from .context import USE_ROLE
from .intents import write_ahead

FIND_PERMISSIONS = ("iam:ListUsers", "iam:ListAccessKeys", "lambda:GetFunction")
OWNER_PERMISSIONS = ("iam:GetAccessKeyLastUsed", "sts:GetAccessKeyInfo")


def key_of(ctx, record: AccessKey) -> dict | None:
    """The live key a ledger record names (``user``, ``key_id`` in memory, ``status``), or None."""
    fingerprinter = Fingerprinter(bytes.fromhex(record.salt))
    keys = [k for k in iam.find_access_keys(ctx.iam, {record.key_fingerprint}, fingerprinter)
            if k["user"] == record.user]
    return dict(keys[0], salt=record.salt) if keys else None


def _code_fingerprints(ctx) -> set[str]:
    return {f["fingerprint"] for f in ctx.findings()
            if f.get("location") in ("code", "layer") and f.get("remediation") == USE_ROLE and f.get("fingerprint")}


def _scanned_fingerprints(ctx) -> set[str]:
    if ctx.scanner is None:
        return set()
    snap = ctx.snapshot()
    # the snapshot keeps the pre-change code; before it exists, $LATEST still is that code
    try:
        data = functions.version_code(ctx.lam, ctx.function_name, snap.version if snap else "$LATEST")
    except RunbookError:
        return set()
    return {f.fingerprint for f in ctx.scanner.scan_zip(data).findings if f.remediation == USE_ROLE}


def find_keys(ctx) -> list[dict]:
    """The hardcoded keys of IAM users of this account: from the ledger, the findings, or the code."""
    found = [key for record in ctx.ledger.records(AccessKey, active_only=True)
             for key in [key_of(ctx, record)] if key]
    if found:
        return found
    return (iam.find_access_keys(ctx.iam, _code_fingerprints(ctx), ctx.fingerprinter)
            or iam.find_access_keys(ctx.iam, _scanned_fingerprints(ctx), ctx.fingerprinter))


def label(key: dict) -> str:
    return f"{key['user']} {redact(key['key_id'])}"


def deactivate(ctx, key: dict, step: str) -> str:
    """Set a key Inactive, recorded first (user, salted fingerprint); return the redacted CLI line."""
    salt = key.get("salt") or secrets.token_bytes(16).hex()
    record = AccessKey(resource=f"{key['user']}/{redact(key['key_id'])}", action="changed", step=step,
                       user=key["user"], key_fingerprint=Fingerprinter(bytes.fromhex(salt))(key["key_id"]),
                       salt=salt, previous_status="Active")
    with write_ahead(ctx.ledger, record):
        line = iam.set_access_key_status(ctx.iam, key["user"], key["key_id"], "Inactive")
    ctx.ledger.put(record.replace(evidence=line))
    return line


def reactivate(ctx, record: AccessKey) -> str:
    """Set the key a record names Active again (backout, when asked); return the evidence line."""
    key = key_of(ctx, record)
    if key is None or key["status"] == "Active":
        return f"{record.resource} {'gone' if key is None else 'already Active'}"
    line = iam.set_access_key_status(ctx.iam, key["user"], key["key_id"], "Active")
    ctx.ledger.put(record.replace(reactivated=line))
    return line


def owner(ctx, key: dict) -> dict:
    """Who owns a key and when it was last used; what could not be read says why."""
    out = {"access_key": label(key), "status": key["status"], "user": key["user"], "account": "",
           "last_used": "", "last_service": ""}
    try:
        with aws_call("GetAccessKeyLastUsed", redact(key["key_id"]), "iam:GetAccessKeyLastUsed"):
            used = ctx.iam.get_access_key_last_used(AccessKeyId=key["key_id"])
        last = used.get("AccessKeyLastUsed") or {}
        out.update(user=used.get("UserName", key["user"]), last_used=str(last.get("LastUsedDate", "never")),
                   last_service=f"{last.get('ServiceName', '')} {last.get('Region', '')}".strip())
    except AwsCallError as exc:
        out["last_used"] = f"unavailable: {exc.code}"
    try:
        with aws_call("GetAccessKeyInfo", redact(key["key_id"]), "sts:GetAccessKeyInfo"):
            out["account"] = ctx.target.client("sts").get_access_key_info(AccessKeyId=key["key_id"]).get("Account", "")
    except AwsCallError as exc:
        out["account"] = f"unavailable: {exc.code}"
    return out
