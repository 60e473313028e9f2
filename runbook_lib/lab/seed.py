"""The seeded insecure baseline: the situation the runbook exists to fix.

Modelled on a real team's function: ``orders-api`` reads the ``orders`` table with an
old CI user's access keys pasted into its code, calls a partner API with a key from
its environment, carries a database password in another environment variable, and
uses a layer whose config file holds a service token. Around it: clean decoys (one of
them reads its secret from Secrets Manager the right way, a hard negative for the
scanner; one is Node.js), an organization trail that is logging, and a CloudFront
distribution for the Lambda@Edge path.

Everything is created over the lab's HTTP API with the admin's credentials (so the
lab's CloudTrail history shows who made it). Secret values are random per call and
never leave the lab: :func:`seed_lab` returns names, ARNs and a redacted preview only.
"""

from __future__ import annotations

import io
import json
import secrets
import string
import uuid
import zipfile
from decimal import Decimal

import boto3
from botocore.config import Config

from runbook_lib.redaction import redact

FUNCTION_NAME = "orders-api"
ROLE_NAME = "orders-api-role"
TABLE_NAME = "orders"
LAYER_NAME = "orders-shared-config"
LEGACY_USER = "orders-legacy-ci"
DECOY_ROLE_NAME = "lab-decoy-functions-role"
DECOY_FUNCTIONS = ("inventory-sync", "thumbnail-resize", "web-edge-router")
TRAIL_NAME = "org-trail"
SECRET_ENV_VARS = ("PARTNER_API_KEY", "DB_PASSWORD")
#: The demo's code holds hardcoded keys, which only a code change removes: the runbook deploys its
#: reference handler there (the runner passes this on the lab), not the wrapper `auto` would pick.
DEMO_STRATEGY = "reference"
DECOY_SECRET_NAME = "app/api/key"

_ALNUM = string.ascii_letters + string.digits
_SYMBOLS = "!#%+-=?@^_~"

ORDERS = [
    {"order_id": "ord-1001", "customer": "northwind", "total": Decimal("129.90"), "status": "shipped"},
    {"order_id": "ord-1002", "customer": "contoso", "total": Decimal("42.00"), "status": "pending"},
    {"order_id": "ord-1003", "customer": "fabrikam", "total": Decimal("310.25"), "status": "delivered"},
]

APP_PY = '''"""Orders API: counts open orders and notifies the fulfilment partner."""
import json
import logging
import os
import sys
import urllib.request

import boto3

logger = logging.getLogger()
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

TABLE_NAME = os.environ.get("TABLE_NAME", "orders")
PARTNER_API_URL = os.environ["PARTNER_API_URL"]
PARTNER_API_KEY = os.environ.get("PARTNER_API_KEY", "")
DB_PASSWORD = os.environ.get("DB_PASSWORD", "")

# FIXME(orders-team): CI user's keys, pasted while the role was being approved.
dynamodb = boto3.client(
    "dynamodb",
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
    aws_access_key_id="{access_key_id}",
    aws_secret_access_key="{secret_access_key}",
)


def _shared_config():
    for folder in sys.path:
        path = os.path.join(folder, "shared_config.json")
        if os.path.isfile(path):
            with open(path) as handle:
                return json.load(handle)
    return {{}}


SHARED_CONFIG = _shared_config()


def handler(event, context):
    count = dynamodb.scan(TableName=TABLE_NAME, Select="COUNT")["Count"]
    request = urllib.request.Request(
        PARTNER_API_URL,
        data=json.dumps({{"orders": count}}).encode(),
        headers={{"Content-Type": "application/json", "x-api-key": PARTNER_API_KEY}},
        method="POST",
    )
    timeout = SHARED_CONFIG.get("partner_timeout_seconds", 5)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        partner = json.loads(response.read())["status"]
    logger.info("orders=%d partner=%s", count, partner)
    return {{
        "statusCode": 200,
        "body": json.dumps({{"orders": count, "partner": partner, "db_configured": bool(DB_PASSWORD)}}),
    }}
'''

INVENTORY_PY = '''"""Inventory sync: reads stock levels and logs a summary."""
import logging
import os

import boto3

logger = logging.getLogger()
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))
TABLE_NAME = os.environ.get("TABLE_NAME", "inventory")


def handler(event, context):
    table = boto3.resource("dynamodb").Table(TABLE_NAME)
    items = table.scan(Limit=50).get("Items", [])
    logger.info("synced %d inventory rows", len(items))
    return {"synced": len(items)}
'''

THUMBNAIL_PY = '''"""Thumbnail resize: fetches its API key from Secrets Manager at run time."""
import json
import os

import boto3

_secrets = boto3.client("secretsmanager")
_cached_key = None


def _api_key():
    global _cached_key
    if _cached_key is None:
        response = _secrets.get_secret_value(SecretId=os.environ["SECRET_NAME"])
        _cached_key = response["SecretString"]
    return _cached_key


def handler(event, context):
    key = _api_key()
    sizes = event.get("sizes", [128, 256])
    return {"statusCode": 200, "body": json.dumps({"resized": len(sizes), "authorised": bool(key)})}
'''

EDGE_JS = '''"use strict";
// Lambda@Edge viewer-request: route /api/* to the orders origin, add security headers.
exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  if (request.uri.startsWith("/api/")) {
    request.uri = request.uri.replace(/^\\/api/, "");
  }
  request.headers["x-forwarded-by"] = [{ key: "X-Forwarded-By", value: "web-edge-router" }];
  return request;
};
'''


def random_token(length: int = 32) -> str:
    """A random alphanumeric token, like an API key."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def random_password(length: int = 20) -> str:
    """A random password with upper, lower, digit and symbol characters."""
    pools = (string.ascii_uppercase, string.ascii_lowercase, string.digits, _SYMBOLS)
    chars = [secrets.choice(pool) for pool in pools]
    chars += [secrets.choice(_ALNUM + _SYMBOLS) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def _zip(files: dict[str, str]) -> bytes:
    """A package as a build tool makes it: files world-readable (Lambda's runtime user must read them)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr, info.compress_type = 0o644 << 16, zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
    return buffer.getvalue()


def _trust(*services: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": list(services)}, "Action": "sts:AssumeRole"}]})


def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _logs_statements(region: str, account: str, functions: list[str]) -> list[dict]:
    groups = [f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{f}:*" for f in functions]
    return [
        {"Effect": "Allow", "Action": "logs:CreateLogGroup",
         "Resource": f"arn:aws:logs:{region}:{account}:*"},
        {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": groups},
    ]


def seed_lab(endpoint_url: str, admin_env: dict, partner=None) -> dict:
    """Create the insecure baseline in a running lab; return names and ARNs only.

    Parameters
    ----------
    endpoint_url:
        The lab's URL.
    admin_env:
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` of the
        lab's admin user.
    partner:
        The lab's :class:`~runbook_lib.lab.partner.PartnerApi`; its valid key is set to
        the seeded ``PARTNER_API_KEY``.

    Returns
    -------
    dict
        ``seed_info``: function_name, function_arn, strategy (the demo's: ``reference``), role_name, role_arn, table_name,
        table_arn, layer_name, layer_arn, legacy_user, legacy_access_key_id (redacted),
        secret_env_vars, decoy_functions, decoy_role_name, trail_name, trail_arn,
        trail_bucket, distribution_id, partner_url, region, account_id.
    """
    region = admin_env.get("AWS_DEFAULT_REGION") or admin_env.get("AWS_REGION") or "us-east-1"
    client = _admin_clients(endpoint_url, admin_env, region)
    partner_url = f"{endpoint_url.rstrip('/')}/_lab/partner/v1/orders"
    iam, lam = client("iam"), client("lambda")

    table_arn = _seed_table(client("dynamodb"))
    account = table_arn.split(":")[4]
    legacy_key = _seed_legacy_user(iam, table_arn)
    role_arn = _seed_function_role(iam, region, account, table_arn)
    layer_arn = _seed_layer(lam)
    partner_key = random_token(32)
    function_arn = _seed_function(lam, role_arn, layer_arn, legacy_key, partner_key, partner_url)
    if partner is not None:
        partner.set_valid_keys([partner_key])

    decoy_role_arn = _seed_decoys(iam, lam, region, account)
    s3 = client("s3")
    trail_arn, trail_bucket = _seed_trail(s3, client("cloudtrail"), account)
    distribution_id = _seed_distribution(s3, client("cloudfront"), region, account)

    return {
        "function_name": FUNCTION_NAME, "function_arn": function_arn, "strategy": DEMO_STRATEGY,
        "role_name": ROLE_NAME, "role_arn": role_arn,
        "table_name": TABLE_NAME, "table_arn": table_arn,
        "layer_name": LAYER_NAME, "layer_arn": layer_arn,
        "legacy_user": LEGACY_USER, "legacy_access_key_id": redact(legacy_key["AccessKeyId"]),
        "secret_env_vars": list(SECRET_ENV_VARS),
        "decoy_functions": list(DECOY_FUNCTIONS), "decoy_role_name": DECOY_ROLE_NAME,
        "decoy_role_arn": decoy_role_arn,
        "trail_name": TRAIL_NAME, "trail_arn": trail_arn, "trail_bucket": trail_bucket,
        "distribution_id": distribution_id, "partner_url": partner_url,
        "region": region, "account_id": account, "role_boundary_arn": _seed_role_boundary(iam),
    }


def _seed_role_boundary(iam) -> str:
    """The permissions boundary of the runbook's roles, as an administrator creates it (docs/permissions.md)."""
    from runbook_lib import policies

    return iam.create_policy(PolicyName=policies.BOUNDARY_POLICY_NAME,
                             PolicyDocument=json.dumps(policies.load_document(policies.BOUNDARY)),
                             Description="Permissions boundary of the roles lambda-secrets-runbook creates"
                             )["Policy"]["Arn"]


def _admin_clients(endpoint_url: str, admin_env: dict, region: str):
    """``client(service)``: a client of the lab as its admin user."""
    from .botocore_data import botocore_session

    # the models are parsed once in the lab process: the operation resolver already read them
    session = boto3.Session(aws_access_key_id=admin_env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=admin_env["AWS_SECRET_ACCESS_KEY"], region_name=region,
                            botocore_session=botocore_session())
    config = Config(retries={"max_attempts": 2, "mode": "standard"})
    return lambda service: session.client(service, endpoint_url=endpoint_url, config=config)


def _seed_function_role(iam, region: str, account: str, table_arn: str) -> str:
    """orders-api's execution role: its logs and its table, nothing about secrets yet."""
    role_arn = iam.create_role(
        RoleName=ROLE_NAME, AssumeRolePolicyDocument=_trust("lambda.amazonaws.com"),
        Description="Execution role of orders-api")["Role"]["Arn"]
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="orders-api-basic", PolicyDocument=_policy(
        *_logs_statements(region, account, [FUNCTION_NAME]),
        {"Effect": "Allow", "Action": ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:Query"],
         "Resource": table_arn}))
    return role_arn


def _seed_layer(lam) -> str:
    """The shared settings layer, with a service token in its JSON (another change's to migrate)."""
    return lam.publish_layer_version(
        LayerName=LAYER_NAME, Description="Shared settings of the orders services",
        CompatibleRuntimes=["python3.12"],
        Content={"ZipFile": _zip({"python/shared_config.json": json.dumps({
            "service_name": "orders", "environment": "production", "log_format": "json",
            "partner_timeout_seconds": 5, "retry_attempts": 3,
            "service_token": random_token(40)}, indent=2)})})["LayerVersionArn"]


def _seed_function(lam, role_arn: str, layer_arn: str, legacy_key: dict, partner_key: str,
                   partner_url: str) -> str:
    """orders-api as found: secrets in its environment, a hardcoded access key in its code."""
    return lam.create_function(
        FunctionName=FUNCTION_NAME, Runtime="python3.12", Role=role_arn, Handler="app.handler",
        Code={"ZipFile": _zip({"app.py": APP_PY.format(
            access_key_id=legacy_key["AccessKeyId"],
            secret_access_key=legacy_key["SecretAccessKey"])})},
        Description="Orders API (legacy)", Timeout=15, MemorySize=256, Layers=[layer_arn],
        Environment={"Variables": {
            "PARTNER_API_KEY": partner_key, "DB_PASSWORD": random_password(20),
            "TABLE_NAME": TABLE_NAME, "PARTNER_API_URL": partner_url, "LOG_LEVEL": "INFO"}},
        Tags={"team": "orders", "service": "orders-api"})["FunctionArn"]


def _seed_table(dynamodb) -> str:
    from boto3.dynamodb.types import TypeSerializer

    table = dynamodb.create_table(
        TableName=TABLE_NAME, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}])["TableDescription"]
    serialise = TypeSerializer().serialize
    for order in ORDERS:
        dynamodb.put_item(TableName=TABLE_NAME,
                          Item={name: serialise(value) for name, value in order.items()})
    return table["TableArn"]


def _seed_legacy_user(iam, table_arn: str) -> dict:
    iam.create_user(UserName=LEGACY_USER, Tags=[{"Key": "purpose", "Value": "ci-deploy"}])
    iam.put_user_policy(UserName=LEGACY_USER, PolicyName="orders-table-read", PolicyDocument=_policy(
        {"Effect": "Allow", "Resource": table_arn,
         "Action": ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable"]}))
    return iam.create_access_key(UserName=LEGACY_USER)["AccessKey"]


def _seed_decoys(iam, lam, region: str, account: str) -> str:
    role_arn = iam.create_role(
        RoleName=DECOY_ROLE_NAME,
        AssumeRolePolicyDocument=_trust("lambda.amazonaws.com", "edgelambda.amazonaws.com"),
        Description="Execution role of the lab's clean decoy functions")["Role"]["Arn"]
    iam.put_role_policy(RoleName=DECOY_ROLE_NAME, PolicyName="decoy-basic", PolicyDocument=_policy(
        *_logs_statements(region, account, list(DECOY_FUNCTIONS))))
    secret_arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{DECOY_SECRET_NAME}-AbCdEf"
    decoys = [
        ("inventory-sync", "python3.12", "app.handler", {"app.py": INVENTORY_PY},
         {"LOG_LEVEL": "INFO", "TABLE_NAME": "inventory"}),
        ("thumbnail-resize", "python3.12", "app.handler", {"app.py": THUMBNAIL_PY},
         {"SECRET_ARN": secret_arn, "SECRET_NAME": DECOY_SECRET_NAME}),
        ("web-edge-router", "nodejs22.x", "index.handler", {"index.js": EDGE_JS}, {}),
    ]
    for name, runtime, handler, files, variables in decoys:
        spec = {"FunctionName": name, "Runtime": runtime, "Role": role_arn, "Handler": handler,
                "Code": {"ZipFile": _zip(files)}, "Timeout": 5, "MemorySize": 128}
        if variables:
            spec["Environment"] = {"Variables": variables}
        lam.create_function(**spec)
    return role_arn


def _seed_trail(s3, cloudtrail, account: str) -> tuple[str, str]:
    # moto accepts IsOrganizationTrail without an organization; creating one would cost
    # half a second of every seeded start for nothing the runbook reads
    bucket = f"org-trail-logs-{account}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=_policy(
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
         "Resource": f"arn:aws:s3:::{bucket}"},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow",
         "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:PutObject",
         "Resource": f"arn:aws:s3:::{bucket}/AWSLogs/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}}}))
    trail = cloudtrail.create_trail(
        Name=TRAIL_NAME, S3BucketName=bucket, IsMultiRegionTrail=True,
        IsOrganizationTrail=True, IncludeGlobalServiceEvents=True,
        EnableLogFileValidation=True)
    cloudtrail.put_event_selectors(TrailName=TRAIL_NAME, EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}])
    cloudtrail.start_logging(Name=TRAIL_NAME)
    return trail["TrailARN"], bucket


def _seed_distribution(s3, cloudfront, region: str, account: str) -> str:
    bucket = f"orders-static-{account}"
    s3.create_bucket(Bucket=bucket)
    origin_id = "orders-static-s3"
    distribution = cloudfront.create_distribution(DistributionConfig={
        "CallerReference": str(uuid.uuid4()), "Comment": "orders web front (Lambda@Edge path)",
        "Enabled": True, "DefaultRootObject": "index.html",
        "Origins": {"Quantity": 1, "Items": [{
            "Id": origin_id, "DomainName": f"{bucket}.s3.{region}.amazonaws.com",
            "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
        "DefaultCacheBehavior": {
            "TargetOriginId": origin_id, "ViewerProtocolPolicy": "redirect-to-https",
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "MinTTL": 0,
        },
    })["Distribution"]
    return distribution["Id"]
