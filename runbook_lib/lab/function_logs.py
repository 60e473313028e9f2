"""A function's CloudWatch Logs, written as Lambda writes them: under its execution role.

Lambda sends a function's output to ``/aws/lambda/<name>`` with the function's role, not
its own: without ``logs:CreateLogGroup`` (when the group does not exist yet),
``logs:CreateLogStream`` (for a new environment's stream) and ``logs:PutLogEvents`` the
function still runs and nothing is written. This holds whether or not the lab enforces
IAM on API callers: it is the function's role that is asked, always.

The role session's policies (identity, boundary, session, SCPs) are evaluated by :mod:`.iam_enforcement` against the
resources AWS names in its denials: ``...:log-group:<group>:log-stream:`` for
CreateLogGroup and ``...:log-group:<group>:log-stream:<stream>`` for the other two, so a
policy on ``log-group:<group>`` without ``:*`` does not allow creating the group, as on
AWS.
"""

from __future__ import annotations

import threading

from . import iam_enforcement
from .identity import resolve_caller

_lock = threading.Lock()


def role_allows(access_key_id: str, region: str, account_id: str, operation: str, resource: str) -> bool:
    """Whether the role session owning ``access_key_id`` may call ``logs:<operation>`` on ``resource``."""
    caller = resolve_caller(access_key_id)
    if not caller.role_arn:  # not a role session (the role was deleted): nothing is allowed
        return False
    # every policy type that binds the session (boundary, session policy, SCPs) applies, as on AWS
    return iam_enforcement.principal_may(caller.arn, f"logs:{operation}", resource,
                                         {"aws:RequestedRegion": region}).allowed


def deliver(*, account_id: str, region: str, group: str, stream: str, access_key_id: str,
            events: list[tuple[int, str]]) -> str:
    """Write ``events`` (``(ms, message)``) to ``group``/``stream`` if the role may.

    Returns
    -------
    str
        ``"written"``, ``"nothing to write"``, or the first permission the role lacks
        (``"logs:CreateLogStream"``...), which Lambda does not report anywhere either.
    """
    from moto.logs.models import logs_backends

    if not events:
        return "nothing to write"
    backend = logs_backends[account_id][region]
    group_arn = f"arn:aws:logs:{region}:{account_id}:log-group:{group}"
    stream_arn = f"{group_arn}:log-stream:{stream}"

    def allowed(operation: str, resource: str) -> bool:
        return role_allows(access_key_id, region, account_id, operation, resource)

    ordered, last = [], 0
    for stamp, message in events:  # CloudWatch keeps events in time order
        last = max(last, stamp)
        ordered.append({"timestamp": last, "message": message})
    with _lock:
        if group not in backend.groups:
            if not allowed("CreateLogGroup", f"{group_arn}:log-stream:"):
                return "logs:CreateLogGroup"
            backend.create_log_group(group, tags={})
        if stream not in backend.groups[group].streams:
            if not allowed("CreateLogStream", stream_arn):
                return "logs:CreateLogStream"
            backend.create_log_stream(group, stream)
        if not allowed("PutLogEvents", stream_arn):
            return "logs:PutLogEvents"
        backend.put_log_events(group, stream, ordered)
    return "written"
