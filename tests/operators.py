"""IAM users of an enforcing lab that hold only the shipped operator policies, and their administrator.

Used by ``tests/test_policies.py`` (the runbook completes under the policies) and
``tests/test_escalation.py`` (a holder of the implementer policies cannot escalate). Each
part's files become managed policies attached to one user; the lab's ``lab-admin`` plays
the administrator who approves a function and attaches a per-change grant.
"""

from __future__ import annotations

import contextlib
import json

import boto3
import botocore.exceptions

from runbook_lib import policies
from runbook_lib.session import Target

#: Error codes of a denial, per protocol (JSON and rest-json services, query and rest-xml ones).
DENIED = ("AccessDeniedException", "AccessDenied")


class Operators:
    """The operator users of an enforcing lab, and what the administrator does for them."""

    def __init__(self, lab, parts=policies.PARTS):
        self.lab, self.iam = lab, lab.client("iam")
        self.sessions: dict[str, boto3.Session] = {}
        self.attached: dict[str, dict[str, str]] = {}
        for part in parts:
            user = self.user(part)
            self.iam.create_user(UserName=user)
            self.attached[part] = {name: self._attach(user, f"{user}-{name}", policies.load_document(name))
                                   for name in policies.POLICY_FILES[part]}
            key = self.iam.create_access_key(UserName=user)["AccessKey"]
            self.sessions[part] = boto3.Session(aws_access_key_id=key["AccessKeyId"],
                                                aws_secret_access_key=key["SecretAccessKey"],
                                                region_name=lab.region)

    @staticmethod
    def user(part: str) -> str:
        return f"runbook-{part}"

    def _attach(self, user: str, name: str, document: dict) -> str:
        arn = self.iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
        self.iam.attach_user_policy(UserName=user, PolicyArn=arn)
        return arn

    def target(self, part: str) -> Target:
        return Target.from_parameters("lab", region=self.lab.region, endpoint_url=self.lab.endpoint_url,
                                      session=self.sessions[part])

    def client(self, part: str, service: str):
        return self.target(part).client(service)

    # -- what the administrator does ---------------------------------------------------------------
    def approve(self, function_name: str, role: bool = True) -> None:
        """Tag the function (and, for today's read policy, its execution role) as approved for change."""
        lam = self.lab.client("lambda")
        config = lam.get_function_configuration(FunctionName=function_name)
        key, value = policies.APPROVAL_TAG
        lam.tag_resource(Resource=config["FunctionArn"], Tags={key: value})
        if role:
            self.iam.tag_role(RoleName=config["Role"].rsplit("/", 1)[-1], Tags=[{"Key": key, "Value": value}])

    def withdraw(self, function_name: str) -> None:
        """Remove the approval of the function and of its role."""
        lam = self.lab.client("lambda")
        config = lam.get_function_configuration(FunctionName=function_name)
        lam.untag_resource(Resource=config["FunctionArn"], TagKeys=[policies.APPROVAL_TAG[0]])
        self.iam.untag_role(RoleName=config["Role"].rsplit("/", 1)[-1], TagKeys=[policies.APPROVAL_TAG[0]])

    @contextlib.contextmanager
    def granted(self, function_arn: str, key_users=()):
        """The implementer holds :func:`policies.change_grant` for one change inside the block."""
        user = self.user("implementer")
        name = f"{user}-change-grant-{function_arn.rsplit(':', 1)[-1]}"
        arn = self._attach(user, name, policies.change_grant(function_arn, key_users))
        try:
            yield arn
        finally:
            self.iam.detach_user_policy(UserName=user, PolicyArn=arn)
            self.iam.delete_policy(PolicyArn=arn)

    @contextlib.contextmanager
    def without(self, part: str, sid: str):
        """``part``'s user holds its policies minus statement ``sid`` inside the block."""
        user = self.user(part)
        name = next(n for n in policies.POLICY_FILES[part]
                    if any(s.get("Sid") == sid for s in policies.statements(policies.load_document(n))))
        self.iam.detach_user_policy(UserName=user, PolicyArn=self.attached[part][name])
        reduced = self._attach(user, f"{user}-{name}-without-{sid}",
                               policies.without_statement(policies.load_document(name), sid))
        try:
            yield
        finally:
            self.iam.detach_user_policy(UserName=user, PolicyArn=reduced)
            self.iam.attach_user_policy(UserName=user, PolicyArn=self.attached[part][name])


def denied(call, *args, **kwargs) -> str:
    """Make the call; return its error code, which must be a denial (anything else fails the test)."""
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as exc:
        code = exc.response["Error"]["Code"]
        assert code in DENIED, f"{call.__name__}: {code}: {exc}"
        return code
    raise AssertionError(f"{getattr(call, '__name__', call)} was allowed")


def errors_by(lab, user_prefix: str = "runbook-") -> list[tuple[str, str, str]]:
    """``(user, eventName, errorCode)`` of every failed call CloudTrail recorded for the operator users."""
    out = []
    for page in lab.client("cloudtrail").get_paginator("lookup_events").paginate():
        for event in page["Events"]:
            record = json.loads(event["CloudTrailEvent"])
            user = (record.get("userIdentity") or {}).get("userName", "")
            if user.startswith(user_prefix) and record.get("errorCode"):
                out.append((user, record["eventName"], record["errorCode"]))
    return out


def unevaluated_in_policies(lab) -> list[dict]:
    """Conditions of the shipped policies (or a change grant) that the lab could not evaluate."""
    return [u for u in lab.unevaluated()
            if "runbook-" in u.get("policy", "") or policies.BOUNDARY_POLICY_NAME in u.get("policy", "")]
