"""The moto world shared by the implementation, backout, residue and close-out tests.

``build_world``: table ``orders``, legacy IAM user with an access key, role
``orders-api-role``, function ``orders-api`` with two secrets in its environment and the
legacy key in its code, and a ledger whose baseline holds the test plan's findings
fingerprinted with a fixed key. Used inside ``mock_aws`` (see the ``world`` fixture in
``conftest.py``).
"""

import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field

import boto3

from runbook_lib import policies
from runbook_lib.ledger import Ledger
from runbook_lib.redaction import Fingerprinter, redact
from runbook_lib.session import Target

REGION = "us-east-1"
ACCOUNT = "123456789012"
FUNCTION = "orders-api"
FP_KEY = bytes(range(32))


def app_zip(key_id: str, secret_key: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("app.py", "import boto3\n"
                    f"ACCESS_KEY_ID = '{key_id}'\nSECRET_ACCESS_KEY = '{secret_key}'\n"
                    "def handler(event, context):\n    return {'statusCode': 200}\n")
    return buffer.getvalue()


@dataclass
class World:
    target: Target
    ledger: Ledger
    run_dir: object
    env: dict
    code: bytes
    key_id: str
    fingerprinter: Fingerprinter
    extra: dict = field(default_factory=dict)

    def client(self, service):
        return self.target.client(service)

    def state(self) -> dict:
        """Account state that a plan must never change (values compared, never printed)."""
        lam, sm, iam, kms = (self.client(s) for s in ("lambda", "secretsmanager", "iam", "kms"))
        config = lam.get_function_configuration(FunctionName=FUNCTION)
        return {
            "config": {k: config.get(k) for k in ("CodeSha256", "Handler", "Role", "Environment", "LastModified")},
            "versions": [v["Version"] for v in lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]],
            "secrets": sorted(s["Name"] for s in sm.list_secrets()["SecretList"]),
            "policies": sorted(p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]),
            "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
            "keys": len(kms.list_keys()["Keys"]),
            "access_keys": [k["Status"] for k in iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"]],
        }


def build_world(tmp_path, with_findings=True) -> World:
    session = boto3.session.Session(region_name=REGION)
    target = Target("lab", REGION, session=session)
    iam = target.client("iam")
    ddb = target.client("dynamodb")
    ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}])
    iam.create_policy(PolicyName=policies.BOUNDARY_POLICY_NAME,  # as an administrator creates it
                      PolicyDocument=json.dumps(policies.load_document(policies.BOUNDARY)))
    iam.create_user(UserName="orders-legacy-ci")
    iam.create_user(UserName="someone-else")
    iam.create_access_key(UserName="someone-else")
    key = iam.create_access_key(UserName="orders-legacy-ci")["AccessKey"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName="orders-api-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="orders-api-role", PolicyName="orders-read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["dynamodb:Scan"],
                                                "Resource": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"}]}))
    env = {"PARTNER_API_KEY": "pk_" + secrets.token_urlsafe(24), "DB_PASSWORD": secrets.token_urlsafe(18),
           "TABLE_NAME": "orders", "PARTNER_API_URL": "http://127.0.0.1:9/_lab/partner/v1/orders",
           "LOG_LEVEL": "INFO"}
    code = app_zip(key["AccessKeyId"], key["SecretAccessKey"])
    target.client("lambda").create_function(
        FunctionName=FUNCTION, Runtime="python3.12", Role=role_arn, Handler="app.handler",
        Code={"ZipFile": code}, Environment={"Variables": env}, Timeout=10, MemorySize=256)
    run_dir = tmp_path / "run"
    ledger = Ledger.open(run_dir)
    fp = Fingerprinter(FP_KEY)
    if with_findings:
        findings = [{"function": FUNCTION, "version": "$LATEST", "location": "environment", "variable": name,
                     "rule": "generic-secret", "remediation": "move-to-secrets-manager",
                     "redacted": redact(env[name]), "fingerprint": fp(env[name])}
                    for name in ("PARTNER_API_KEY", "DB_PASSWORD")]
        findings += [{"function": FUNCTION, "version": "$LATEST", "location": "code", "path": "app.py",
                      "line": 2, "rule": "aws-access-key-id", "remediation": "remove-use-role",
                      "redacted": redact(key["AccessKeyId"]), "fingerprint": fp(key["AccessKeyId"])},
                     {"function": FUNCTION, "version": "$LATEST", "location": "code", "path": "app.py",
                      "line": 3, "rule": "aws-secret-access-key", "remediation": "remove-use-role",
                      "redacted": redact(key["SecretAccessKey"]), "fingerprint": fp(key["SecretAccessKey"])}]
        ledger.set_baseline(findings=findings)
    return World(target, ledger, run_dir, env, code, key["AccessKeyId"], fp)


def moto_version_code(function_name, version):
    """What downloading a version's package returns, read from moto's backend (no HTTP in-process)."""
    from moto.awslambda.models import lambda_backends
    backend = lambda_backends[ACCOUNT][REGION]
    fn = backend.get_function(function_name, str(version))
    return fn.code_bytes
