"""Who signed a request: access key id -> IAM user, assumed-role session or root.

Read from moto's in-process IAM and STS backends (the lab runs moto in its own
process), and shaped as CloudTrail's ``userIdentity``:

- an access key created by ``CreateAccessKey`` -> ``IAMUser``;
- a session key from ``AssumeRole`` (over the API or in-process, as the Lambda
  runtime does) -> ``AssumedRole`` with ``sessionContext.sessionIssuer``;
- anything else (moto's default ``testing`` keys, unknown, deleted keys) -> ``Unknown``:
  :mod:`.credentials` refuses such a request before anything else reads it.

What ``AssumeRole`` was asked beyond what moto keeps (session tags, managed session
policies, a source identity) is remembered here per access key
(:func:`remember_session`), so the evaluator sees the session as AWS does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

DEFAULT_ACCOUNT_ID = "123456789012"

IAM_USER, ASSUMED_ROLE, ROOT, UNKNOWN = "IAMUser", "AssumedRole", "Root", "Unknown"


@dataclass(frozen=True)
class Caller:
    """The principal behind one access key.

    Attributes
    ----------
    kind:
        ``IAMUser``, ``AssumedRole``, ``Root`` or ``Unknown`` (unsigned request).
    arn:
        ``arn:aws:iam::ACCOUNT:user/NAME``, ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``
        or ``arn:aws:iam::ACCOUNT:root``.
    user_name:
        CloudTrail's ``Username``: the user name, the role session name, or ``root``.
    role_name, role_arn, role_id, session_name, session_created, session_policy:
        Set for ``AssumedRole`` only.
    session_tags, session_policy_arns, source_identity:
        What ``AssumeRole`` passed (tags, ``PolicyArns``, ``SourceIdentity``).
    """

    kind: str
    arn: str
    account_id: str
    access_key_id: str
    principal_id: str
    user_name: str
    role_name: str = ""
    role_arn: str = ""
    role_id: str = ""
    session_name: str = ""
    session_created: datetime | None = None
    session_policy: str | None = None
    session_tags: dict = field(default_factory=dict, compare=False)
    session_policy_arns: tuple = ()
    source_identity: str = ""

    @property
    def enforceable(self) -> bool:
        """IAM users and role sessions are authorised; root and unknown callers are not."""
        return self.kind in (IAM_USER, ASSUMED_ROLE)

    def user_identity(self) -> dict:
        """CloudTrail ``userIdentity`` for this caller."""
        if self.kind == UNKNOWN:
            return {"type": "Unknown", "accessKeyId": self.access_key_id} if self.access_key_id \
                else {"type": "Unknown"}
        identity = {"type": self.kind, "principalId": self.principal_id, "arn": self.arn,
                    "accountId": self.account_id, "accessKeyId": self.access_key_id}
        if self.kind == IAM_USER:
            identity["userName"] = self.user_name
        if self.kind == ASSUMED_ROLE:
            created = self.session_created or datetime.now(timezone.utc)
            identity["sessionContext"] = {
                "sessionIssuer": {"type": "Role", "principalId": self.role_id, "arn": self.role_arn,
                                  "accountId": self.account_id, "userName": self.role_name},
                "webIdFederationData": {},
                "attributes": {"creationDate": _iso(created), "mfaAuthenticated": "false"},
            }
        return identity


@dataclass(frozen=True)
class SessionExtras:
    """What an ``AssumeRole`` call asked for that moto's session model does not keep."""

    tags: dict = field(default_factory=dict)
    policy_arns: tuple = ()
    source_identity: str = ""


_sessions: dict[str, SessionExtras] = {}
_sessions_lock = threading.Lock()


def remember_session(access_key_id: str, extras: SessionExtras) -> None:
    """Keep ``AssumeRole``'s tags, policy ARNs and source identity for the session's key."""
    with _sessions_lock:
        _sessions[access_key_id] = extras


def session_extras(access_key_id: str) -> SessionExtras:
    with _sessions_lock:
        return _sessions.get(access_key_id) or SessionExtras()


def unknown_caller(access_key_id: str = "") -> Caller:
    return Caller(kind=UNKNOWN, arn="", account_id="", access_key_id=access_key_id, principal_id="",
                  user_name="")


def resolve_caller(access_key_id: str) -> Caller:
    """Return the :class:`Caller` owning ``access_key_id`` (``Unknown`` when moto does not know it)."""
    if not access_key_id:
        return unknown_caller()
    session = _assumed_role(access_key_id)
    if session is not None:
        return session
    user = _iam_user(access_key_id)
    if user is not None:
        return user
    return unknown_caller(access_key_id)


def _assumed_role(access_key_id: str) -> Caller | None:
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for account_id, by_partition in list(sts_backends.items()):
        for partition, backend in list(by_partition.items()):
            session = backend.get_assumed_role_from_access_key(access_key_id)
            if session is None:
                continue
            role_name = session.role_arn.split("/")[-1]
            role_id = ""
            try:
                role_id = iam_backends[account_id][partition].get_role_by_arn(session.role_arn).id
            except Exception:  # the role was deleted or never existed (moto allows that)
                role_id = "AROA" + "0" * 17
            created = getattr(session.access_key, "create_date", None)
            if created is not None and created.tzinfo is None:
                created = created.replace(tzinfo=timezone.utc)
            extras = session_extras(access_key_id)
            return Caller(kind=ASSUMED_ROLE, arn=session.arn, account_id=session.account_id,
                          access_key_id=access_key_id,
                          principal_id=f"{role_id}:{session.session_name}",
                          user_name=session.session_name, role_name=role_name,
                          role_arn=session.role_arn, role_id=role_id,
                          session_name=session.session_name, session_created=created,
                          session_policy=session.policy or None, session_tags=dict(extras.tags),
                          session_policy_arns=tuple(extras.policy_arns),
                          source_identity=extras.source_identity)
    return None


def _iam_user(access_key_id: str) -> Caller | None:
    from moto.iam.models import iam_backends

    for account_id, by_partition in list(iam_backends.items()):
        for partition, backend in list(by_partition.items()):
            key = backend.access_keys.get(access_key_id)
            if key is None or not key.user_name:
                continue
            try:
                user = backend.get_user(key.user_name)
            except Exception:  # user deleted after its key was made
                continue
            return Caller(kind=IAM_USER, arn=user.arn, account_id=account_id,
                          access_key_id=access_key_id, principal_id=user.id,
                          user_name=user.name)
    return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
