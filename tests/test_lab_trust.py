"""AssumeRole: trust policies and the caller's permission, same- and cross-account; the org audit."""

import json
import uuid

import boto3
import pytest
from botocore.config import Config

ACCOUNT = "123456789012"
ONCE = Config(retries={"total_max_attempts": 1})
LAMBDA_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _trusting(principal, **extra):
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole", **extra}
    return {"Version": "2012-10-17", "Statement": [statement]}


def _role(lab, trust, **extra):
    name = f"tr-{uuid.uuid4().hex[:8]}"
    return lab.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                         **extra)["Role"]["Arn"]


def _user(lab, policy=None):
    iam = lab.client("iam")
    name = f"tr-user-{uuid.uuid4().hex[:6]}"
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sts = boto3.client("sts", endpoint_url=lab.endpoint_url, region_name=lab.region, config=ONCE,
                       aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    return arn, sts


def _refused(sts, **kwargs):
    with pytest.raises(sts.exceptions.ClientError) as refused:
        sts.assume_role(RoleSessionName="tr-session", **kwargs)
    return refused.value.response["Error"]


def test_moto_still_hands_out_credentials_for_any_role():
    from moto import mock_aws

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        arn = iam.create_role(RoleName="lambda-only", AssumeRolePolicyDocument=json.dumps(LAMBDA_ONLY))["Role"]["Arn"]
        assert sts.assume_role(RoleArn=arn, RoleSessionName="x1")["Credentials"]["AccessKeyId"]
        missing = f"arn:aws:iam::{ACCOUNT}:role/does-not-exist"
        assert sts.assume_role(RoleArn=missing, RoleSessionName="x2")["Credentials"]["AccessKeyId"]


def test_the_administrator_cannot_assume_a_role_that_trusts_only_lambda(lab):
    arn = _role(lab, LAMBDA_ONLY)
    error = _refused(lab.client("sts", config=ONCE), RoleArn=arn)
    assert error == {"Code": "AccessDenied", "Type": "Sender", "Message":
                     f"User: arn:aws:iam::{ACCOUNT}:user/lab-admin is not authorized to perform: sts:AssumeRole "
                     f"on resource: {arn}"}
    assert _refused(lab.client("sts", config=ONCE), RoleArn=f"arn:aws:iam::{ACCOUNT}:role/nope")["Code"] == \
        "AccessDenied"
    trusting = _role(lab, _trusting(f"arn:aws:iam::{ACCOUNT}:root"))
    assert lab.client("sts").assume_role(RoleArn=trusting, RoleSessionName="ok")["AssumedRoleUser"]["Arn"].endswith(
        "/ok")


def test_same_account_a_trust_naming_the_user_needs_no_identity_grant_one_naming_the_account_does(enforcing):
    lab = enforcing
    user_arn, sts = _user(lab)
    direct = _role(lab, _trusting(user_arn))
    delegated = _role(lab, _trusting(f"arn:aws:iam::{ACCOUNT}:root"))
    assert sts.assume_role(RoleArn=direct, RoleSessionName="direct")["Credentials"]
    assert _refused(sts, RoleArn=delegated)["Code"] == "AccessDenied"
    granted_arn, granted = _user(lab, {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": delegated}]})
    assert granted.assume_role(RoleArn=delegated, RoleSessionName="granted")["Credentials"]
    assert _refused(granted, RoleArn=direct)["Code"] == "AccessDenied"  # trusts another user


def test_trust_conditions_external_id_and_session_tags(lab):
    arn = _role(lab, _trusting(f"arn:aws:iam::{ACCOUNT}:root", Condition={"StringEquals": {"sts:ExternalId": "x-42"}}))
    sts = lab.client("sts", config=ONCE)
    assert _refused(sts, RoleArn=arn)["Code"] == "AccessDenied"
    assert _refused(sts, RoleArn=arn, ExternalId="x-43")["Code"] == "AccessDenied"
    assert sts.assume_role(RoleArn=arn, RoleSessionName="ext", ExternalId="x-42")["Credentials"]
    no_tagging = _role(lab, _trusting(f"arn:aws:iam::{ACCOUNT}:root"))
    assert _refused(sts, RoleArn=no_tagging, Tags=[{"Key": "team", "Value": "app"}])["Code"] == "AccessDenied"
    tagging = _role(lab, {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
    assert sts.assume_role(RoleArn=tagging, RoleSessionName="tags", Tags=[{"Key": "team", "Value": "app"}])


def test_session_durations_are_limited_as_on_aws(lab):
    arn = _role(lab, _trusting(f"arn:aws:iam::{ACCOUNT}:root"), MaxSessionDuration=3600)
    sts = lab.client("sts", config=ONCE)
    error = _refused(sts, RoleArn=arn, DurationSeconds=7200)
    assert error["Code"] == "ValidationError" and "MaxSessionDuration" in error["Message"]
    chain_target = _role(lab, _trusting(f"arn:aws:iam::{ACCOUNT}:root"), MaxSessionDuration=43200)
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="first")["Credentials"]
    chained = boto3.client("sts", endpoint_url=lab.endpoint_url, region_name=lab.region, config=ONCE,
                           aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                           aws_session_token=creds["SessionToken"])
    error = _refused(chained, RoleArn=chain_target, DurationSeconds=7200)
    assert error["Code"] == "ValidationError" and "role chaining" in error["Message"]
    assert chained.assume_role(RoleArn=chain_target, RoleSessionName="second", DurationSeconds=3600)


# ------------------------------------------------------------------ cross-account: the organisation audit
@pytest.fixture(scope="module")
def organization():
    """A lab of its own with an organisation: the management account and one member."""
    from runbook_lib.lab import Lab

    with Lab(seed=False) as running:
        org = running.client("organizations")
        org.create_organization(FeatureSet="ALL")
        member = org.create_account(AccountName="member", Email="member@example.com")["CreateAccountStatus"][
            "AccountId"]
        creds = running.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole",
            RoleSessionName="setup")["Credentials"]
        member_iam = boto3.client("iam", endpoint_url=running.endpoint_url, region_name=running.region,
                                  aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                                  aws_session_token=creds["SessionToken"])
        member_iam.create_role(RoleName="RefusingAuditRole",
                               AssumeRolePolicyDocument=json.dumps(_trusting("arn:aws:iam::999999999999:root")))
        member_iam.create_role(RoleName="AuditRole",
                               AssumeRolePolicyDocument=json.dumps(_trusting(f"arn:aws:iam::{ACCOUNT}:root")))
        yield running, member


def _audit(lab, role_name):
    from runbook_lib.audit import Audit
    from runbook_lib.session import Target

    target = Target.from_parameters("lab", region=lab.region, endpoint_url=lab.endpoint_url, session=lab.session())
    return Audit(target, regions=[lab.region], accounts=["organization"], assume_role_name=role_name).run()


def test_an_organisation_audit_reports_a_refusing_member_as_not_read(organization):
    lab, member = organization
    result = _audit(lab, "RefusingAuditRole")
    gaps = [g for g in result.gaps if g.account == member]
    assert [(g.call, g.status, g.permission) for g in gaps] == [("AssumeRole", "denied", "sts:AssumeRole")]
    assert "AccessDenied" in gaps[0].reason
    checks = {c.id: c for c in result.checks()}
    assert checks["audit-coverage-complete"].status == "FAIL" and member in checks["audit-coverage-complete"].reason
    assert result.summary["accounts"] == 1  # the management account only


def test_an_organisation_audit_reads_a_member_that_trusts_the_caller(organization):
    lab, member = organization
    result = _audit(lab, "AuditRole")
    assert not [g for g in result.gaps if g.account == member and g.status == "denied"]
    assert result.summary["accounts"] == 2
    assert {c.id: c.status for c in result.checks()}["audit-coverage-complete"] == "PASS"
