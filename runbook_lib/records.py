"""Typed ledger records: one dataclass per kind of thing the runbook finds, creates or changes.

The ledger (:mod:`runbook_lib.ledger`) stores a list of records. Each kind has its own
dataclass here, with the fields the later notebooks read (backout, validation,
close-out), so no module reads another's ``data`` keys by position or by guess. On
disk a record keeps the envelope it always had::

    {"kind": "snapshot", "resource": "orders-api", "action": "created",
     "step": "snapshot", "at": "2026-12-01T10:00:00Z", "undone": null,
     "data": {"version": "3", "code_sha256": "...", ...}}

Reading is strict: an unknown kind, a missing field, an unknown field or a field of the
wrong type is a :class:`~runbook_lib.exceptions.InputError` naming the ledger file, the
record and the field, so a hand-edited or foreign ledger is refused before anything acts
on it. No record ever holds a secret value: names, ARNs, hashes, versions, fingerprints.

Examples
--------
>>> snap = Snapshot(resource="orders-api", version="3", version_arn="arn:...:3",
...                 code_sha256="abc=", role="arn:aws:iam::1:role/r", handler="app.handler",
...                 moved_variables=["DB_PASSWORD"])
>>> Record.from_json(snap.to_json(), "ledger.json") == snap
True
>>> snap.replace(deleted_by_closeout=True).deleted_by_closeout
True
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .exceptions import InputError

CREATED, CHANGED, ADOPTED = "created", "changed", "adopted"
ACTIONS = (CREATED, CHANGED, ADOPTED)


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: kind -> record class, filled by :func:`record_kind`.
KINDS: dict[str, type["Record"]] = {}


def record_kind(cls):
    """Register a record class under its ``kind`` (a class decorator)."""
    if not cls.kind or cls.kind in KINDS:
        raise TypeError(f"record kind {cls.kind!r} of {cls.__name__} is empty or taken")
    KINDS[cls.kind] = cls
    return cls


@dataclass(frozen=True, kw_only=True)
class Record:
    """The envelope every record shares.

    Attributes
    ----------
    resource:
        What the record is about: an ARN, a function name, ``role|policy-arn``...
    action:
        ``created`` (the runbook made it, backout deletes it), ``changed`` (it existed,
        backout restores it) or ``adopted`` (found tagged as the runbook's from an earlier run).
    step:
        The step that wrote it.
    at:
        When it was first written (UTC, ISO 8601).
    undone:
        When and how the record stopped being active: backout undid the resource, or an
        :class:`Intent` was resolved. An undone record is not active.
    """

    kind: ClassVar[str] = ""
    resource: str
    action: str = CREATED
    step: str = ""
    at: str = field(default_factory=utc_now)
    undone: str | None = None

    ENVELOPE: ClassVar[tuple[str, ...]] = ("resource", "action", "step", "at", "undone")

    @property
    def active(self) -> bool:
        return not self.undone

    @property
    def data(self) -> dict:
        """The kind's own fields, as the ledger file stores them under ``data``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in self.ENVELOPE}

    def replace(self, **changes: Any) -> "Record":
        """A copy with ``changes`` (records are immutable; the ledger stores the copy)."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        return {"kind": self.kind, **{name: getattr(self, name) for name in self.ENVELOPE}, "data": self.data}

    @staticmethod
    def from_json(doc: Any, where: str) -> "Record":
        """The typed record of one ledger entry; ``where`` names the file in errors."""
        if not isinstance(doc, dict):
            raise InputError("run_dir", f"{where}: a ledger entry is not an object")
        kind = doc.get("kind")
        cls = KINDS.get(kind)
        if cls is None:
            raise InputError("run_dir", f"{where}: unknown ledger record kind {kind!r} "
                             f"(this runbook knows {', '.join(sorted(KINDS))})")
        label = f"{where}: {kind} record {doc.get('resource')!r}"
        data = doc.get("data", {})
        if not isinstance(data, dict):
            raise InputError("run_dir", f"{label}: data is not an object")
        own_fields = {f.name for f in dataclasses.fields(cls)} - set(cls.ENVELOPE)
        unknown = sorted(set(doc) - {"kind", "data", *cls.ENVELOPE}) + sorted(set(data) - own_fields)
        if unknown:
            raise InputError("run_dir", f"{label}: unknown field(s) {', '.join(unknown)}")
        values = {name: doc[name] for name in cls.ENVELOPE if name in doc}
        values.update(data)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in values
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise InputError("run_dir", f"{label}: missing field(s) {', '.join(missing)}")
        _check_types(cls, values, label)
        return cls(**values)


def _check_types(cls: type, values: dict, label: str) -> None:
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        expected = _runtime_types(hints[name])
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            names = "/".join("null" if t is type(None) else t.__name__ for t in expected)
            raise InputError("run_dir", f"{label}: field {name} is {type(value).__name__}, expected {names}")
        if name == "action" and value not in ACTIONS:
            raise InputError("run_dir", f"{label}: action {value!r} is not one of {', '.join(ACTIONS)}")


def _runtime_types(hint: Any) -> tuple[type, ...]:
    """``str | None`` -> ``(str, NoneType)``; ``list[str]`` -> ``(list,)``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(t for arg in typing.get_args(hint) for t in _runtime_types(arg))
    origin = typing.get_origin(hint)
    return (origin,) if origin is not None else (hint,)


# -- what the test plan and the implementation write -------------------------------------------
@record_kind
@dataclass(frozen=True, kw_only=True)
class Snapshot(Record):
    """The version published before the change: what backout restores and close-out deletes."""

    kind: ClassVar[str] = "snapshot"
    version: str
    version_arn: str
    code_sha256: str
    role: str
    handler: str = ""
    last_modified: str = ""
    variable_names: list[str] = field(default_factory=list)
    moved_variables: list[str] = field(default_factory=list)
    removed_variables: list[str] = field(default_factory=list)
    deleted_by_closeout: bool = False


@record_kind
@dataclass(frozen=True, kw_only=True)
class Role(Record):
    """A dedicated execution role the runbook created."""

    kind: ClassVar[str] = "role"
    name: str
    previous_role: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class KmsKey(Record):
    """A customer managed key the runbook created (or un-scheduled from deletion)."""

    kind: ClassVar[str] = "kms_key"
    alias: str
    role: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class Secret(Record):
    """The secret holding the moved variables; ``writes`` counts the values the runbook put."""

    kind: ClassVar[str] = "secret"
    name: str
    kms_key: str = ""
    variables: list[str] = field(default_factory=list)
    writes: int = 0
    deletion_date: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class Policy(Record):
    """The identity policy earlier versions of the runbook created (``secret``: the one ARN it grants).

    The runbook now grants through the secret's resource policy (:class:`SecretPolicy`); these
    records are still read, so a backout of an older run detaches and deletes its policy.
    """

    kind: ClassVar[str] = "policy"
    name: str = ""
    secret: str = ""
    validation: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class PolicyAttachment(Record):
    """The runbook's policy attached to a role (``resource`` is ``role|policy-arn``)."""

    kind: ClassVar[str] = "policy_attachment"
    role: str
    policy_arn: str


@record_kind
@dataclass(frozen=True, kw_only=True)
class SecretPolicy(Record):
    """The secret's resource policy statements the runbook put (``resource``: the secret's ARN).

    ``statements`` are the runbook's Sids; ``role_arn`` and ``role_id`` name the one role
    session (``<role id>:<function>``) they let read the secret. Backout removes those
    statements and nothing else.
    """

    kind: ClassVar[str] = "secret_policy"
    role_arn: str
    role_id: str
    function: str
    statements: list[str] = field(default_factory=list)
    validation: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class WrapperLayer(Record):
    """A version of the runbook's exec-wrapper layer (``resource``: the layer version ARN).

    Backout deletes it once no function (no version of any function) uses it.
    """

    kind: ClassVar[str] = "wrapper_layer"
    name: str
    version: str
    code_sha256: str


@record_kind
@dataclass(frozen=True, kw_only=True)
class FunctionConfig(Record):
    """The function's configuration was changed: variables out, ``SECRET_ID`` in."""

    kind: ClassVar[str] = "function_config"
    snapshot_version: str
    removed_variables: list[str] = field(default_factory=list)
    previous_role: str = ""
    previous_handler: str = ""
    #: The restorable configuration fields the change sets (``Environment``, ``Handler``, ...):
    #: what backout restores and ``function-restored`` compares, nothing else.
    changed_fields: list[str] = field(default_factory=list)
    #: How the function gets its secret now: ``wrapper``, ``package`` or ``reference``.
    strategy: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class FunctionCode(Record):
    """The function's code was replaced (``source``: what was deployed, in words: the strategy)."""

    kind: ClassVar[str] = "function_code"
    previous_code_sha256: str = ""
    code_sha256: str = ""
    source: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class FunctionState(Record):
    """The function as the runbook left it (names and hashes): backout's drift detection."""

    kind: ClassVar[str] = "function_state"
    code_sha256: str = ""
    last_modified: str = ""
    variable_names: list[str] = field(default_factory=list)
    handler: str = ""
    role: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class AccessKey(Record):
    """A hardcoded access key the runbook deactivated: found again by salted fingerprint, never by id."""

    kind: ClassVar[str] = "access_key"
    user: str
    key_fingerprint: str
    salt: str
    previous_status: str = "Active"
    evidence: str = ""
    reactivated: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class EdgeVersion(Record):
    """A version published for Lambda@Edge (kept: CloudFront replicas outlive the association)."""

    kind: ClassVar[str] = "edge_version"
    version: str


@record_kind
@dataclass(frozen=True, kw_only=True)
class EdgeAssociation(Record):
    """A viewer-request association on a distribution (``resource``: the distribution id)."""

    kind: ClassVar[str] = "edge_association"
    version_arn: str
    previous_arn: str | None = None
    event_type: str = "viewer-request"
    code_sha256: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class FunctionCreated(Record):
    """A function the runbook created (``mode=remove`` deletes it)."""

    kind: ClassVar[str] = "function"
    name: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class Intent(Record):
    """A create (or function change) the runbook is about to make, written *before* the AWS call.

    An active intent is pending: the process may have died between the call and the ledger
    write. Backout and the next apply reconcile it (:mod:`runbook_lib.change.intents`): they
    look the resource up by ``token`` (Secrets Manager's ``ClientRequestToken``, or the value
    of the runbook's token tag or version description) and by the deterministic ``name`` and
    the runbook's tags, record what exists, and resolve the intent (``undone`` says how).

    ``resource`` is ``<creates>:<token>``; ``details`` holds what the record will need that
    AWS cannot tell (names of the moved variables, the expected function state): never a value.
    """

    kind: ClassVar[str] = "intent"
    creates: str
    name: str
    token: str
    details: dict = field(default_factory=dict)


# -- what close-out writes -------------------------------------------------------------------------
@record_kind
@dataclass(frozen=True, kw_only=True)
class Rotation(Record):
    """New values put into the secret by close-out (their names; never the values)."""

    kind: ClassVar[str] = "rotation"
    variables: list[str] = field(default_factory=list)
    rotations: int = 0
    version_id: str = ""
    change_ticket: str = ""


@record_kind
@dataclass(frozen=True, kw_only=True)
class Closeout(Record):
    """Close-out started (written before the first delete) or completed: backout is refused after it."""

    kind: ClassVar[str] = "closeout"
    status: str
    change_ticket: str = ""
    snapshot_version: str = ""
    versions_to_delete: list[str] = field(default_factory=list)
    deleted_versions: list[str] = field(default_factory=list)
