"""The seeded insecure baseline and the partner API it calls.

Seeded secret values are read from the live lab when a test needs them and are only
ever compared inside ``bool(...)`` so that a failing assertion cannot print them.
"""

import io
import json
import re
import string
import urllib.error
import urllib.request
import zipfile

import pytest

from runbook_lib.lab.partner import PartnerApi
from runbook_lib.lab.seed import random_password, random_token

DOCUMENTED_BODY = json.dumps({"orders": 3, "partner": "accepted", "db_configured": True})


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _files(zip_bytes: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def _post(url: str, headers: dict, body: bytes = b"{}") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _planted(lab) -> dict[str, str]:
    """Every secret value of the seeded baseline, read from the live lab (never printed)."""
    lam = lab.client("lambda")
    info = lab.seed_info
    env = lam.get_function_configuration(FunctionName=info["function_name"])["Environment"]["Variables"]
    app = _files(_fetch(lam.get_function(FunctionName=info["function_name"])["Code"]["Location"]))["app.py"]
    layer = lam.get_layer_version_by_arn(Arn=info["layer_arn"])
    config = json.loads(_files(_fetch(layer["Content"]["Location"]))["python/shared_config.json"])
    return {
        "PARTNER_API_KEY": env["PARTNER_API_KEY"], "DB_PASSWORD": env["DB_PASSWORD"],
        "service_token": config["service_token"],
        "legacy_key_id": re.search(r'aws_access_key_id="([^"]+)"', app).group(1),
        "legacy_secret": re.search(r'aws_secret_access_key="([^"]+)"', app).group(1),
    }


@pytest.fixture(scope="module")
def second_seeded_lab():
    """A separate seeded lab: a second start for comparison, and free to be changed."""
    from runbook_lib.lab import Lab

    with Lab(seed=True) as running:
        yield running


# --------------------------------------------------------------------------- orders-api
def test_seeded_orders_api_returns_the_documented_response(seeded_lab):
    response = seeded_lab.client("lambda").invoke(FunctionName="orders-api")
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"statusCode": 200, "body": DOCUMENTED_BODY}


def test_orders_api_reads_the_table_as_the_legacy_user_not_its_role(seeded_lab):
    seeded_lab.client("lambda").invoke(FunctionName="orders-api")
    iam = seeded_lab.client("iam")
    [key] = iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"]
    used = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    assert used["ServiceName"] == "dynamodb"
    # a DynamoDB Scan is a data event: event history does not show it, as on AWS
    events = seeded_lab.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "Scan"}])["Events"]
    assert events == []


def test_function_configuration_matches_the_brief(seeded_lab):
    info = seeded_lab.seed_info
    config = seeded_lab.client("lambda").get_function_configuration(FunctionName="orders-api")
    assert (config["Runtime"], config["Handler"], config["Role"]) == \
        ("python3.12", "app.handler", info["role_arn"])
    env = config["Environment"]["Variables"]
    assert sorted(env) == ["DB_PASSWORD", "LOG_LEVEL", "PARTNER_API_KEY", "PARTNER_API_URL", "TABLE_NAME"]
    assert env["TABLE_NAME"] == "orders" and env["LOG_LEVEL"] == "INFO"
    assert env["PARTNER_API_URL"] == f"{seeded_lab.endpoint_url}/_lab/partner/v1/orders"
    assert [layer["Arn"] for layer in config["Layers"]] == [info["layer_arn"]]
    assert info["layer_arn"].endswith(":layer:orders-shared-config:1")


def test_code_hardcodes_the_legacy_users_real_access_key(seeded_lab):
    planted = _planted(seeded_lab)
    keys = seeded_lab.client("iam").list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"]
    is_users_key = [k["AccessKeyId"] for k in keys] == [planted["legacy_key_id"]]
    looks_like_key_id = re.fullmatch(r"AKIA[A-Z0-9]{16}", planted["legacy_key_id"]) is not None
    secret_length_ok = len(planted["legacy_secret"]) == 40
    assert is_users_key, "app.py's key id is not the legacy user's key"
    assert looks_like_key_id and secret_length_ok, "hardcoded keys do not look like AWS keys"


def test_role_table_and_user_are_as_specified(seeded_lab):
    iam, info = seeded_lab.client("iam"), seeded_lab.seed_info
    trust = iam.get_role(RoleName="orders-api-role")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"]["Service"] == ["lambda.amazonaws.com"]
    [policy_name] = iam.list_role_policies(RoleName="orders-api-role")["PolicyNames"]
    document = iam.get_role_policy(RoleName="orders-api-role", PolicyName=policy_name)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    actions = {a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
            "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:Query"} == actions
    assert any(s["Resource"] == info["table_arn"] for s in document["Statement"])
    table = seeded_lab.client("dynamodb").describe_table(TableName="orders")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "order_id", "KeyType": "HASH"}]
    assert seeded_lab.client("dynamodb").scan(TableName="orders", Select="COUNT")["Count"] == 3


def test_decoys_trail_and_distribution_exist(seeded_lab):
    lam, info = seeded_lab.client("lambda"), seeded_lab.seed_info
    runtimes = {name: lam.get_function_configuration(FunctionName=name)["Runtime"]
                for name in info["decoy_functions"]}
    assert runtimes == {"inventory-sync": "python3.12", "thumbnail-resize": "python3.12",
                        "web-edge-router": "nodejs22.x"}
    thumbnail = lam.get_function_configuration(FunctionName="thumbnail-resize")["Environment"]["Variables"]
    assert thumbnail == {"SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/api/key-AbCdEf",
                         "SECRET_NAME": "app/api/key"}
    code = _files(_fetch(lam.get_function(FunctionName="thumbnail-resize")["Code"]["Location"]))["app.py"]
    assert "get_secret_value(SecretId=os.environ[\"SECRET_NAME\"])" in code
    cloudtrail = seeded_lab.client("cloudtrail")
    [trail] = cloudtrail.describe_trails(trailNameList=["org-trail"])["trailList"]
    assert trail["IsMultiRegionTrail"] and trail["IsOrganizationTrail"]
    assert cloudtrail.get_trail_status(Name="org-trail")["IsLogging"] is True
    [selector] = cloudtrail.get_event_selectors(TrailName="org-trail")["EventSelectors"]
    assert selector["ReadWriteType"] == "All" and selector["IncludeManagementEvents"] is True
    distribution = seeded_lab.client("cloudfront").get_distribution(Id=info["distribution_id"])
    config = distribution["Distribution"]["DistributionConfig"]
    [origin] = config["Origins"]["Items"]
    assert origin["DomainName"] == "orders-static-123456789012.s3.us-east-1.amazonaws.com"
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == origin["Id"]


# --------------------------------------------------------------------------- secrets
def test_seeded_secrets_look_like_real_secrets(seeded_lab):
    planted = _planted(seeded_lab)
    key, password = planted["PARTNER_API_KEY"], planted["DB_PASSWORD"]
    key_ok = len(key) == 32 and key.isalnum()
    password_ok = len(password) == 20 and all(any(c in pool for c in password) for pool in (
        string.ascii_uppercase, string.ascii_lowercase, string.digits, "!#%+-=?@^_~"))
    token_ok = len(planted["service_token"]) == 40
    assert key_ok, "PARTNER_API_KEY is not a 32-character token"
    assert password_ok, "DB_PASSWORD is not a 20-character mixed-class password"
    assert token_ok, "service_token is not a 40-character token"


def test_seed_info_holds_names_and_a_redacted_key_id_only(seeded_lab):
    info = seeded_lab.seed_info
    text = json.dumps(info)
    planted = _planted(seeded_lab)
    leaked = [name for name, value in planted.items() if value in text]
    assert leaked == []
    assert info["legacy_access_key_id"] == "AKIA…(20)"
    for key in ("function_name", "role_name", "role_arn", "table_name", "layer_arn", "legacy_user",
                "decoy_functions", "trail_name", "distribution_id", "region", "account_id"):
        assert info[key], key
    assert (info["region"], info["account_id"]) == ("us-east-1", "123456789012")


@pytest.mark.lab
def test_seed_values_differ_between_two_lab_starts(seeded_lab, second_seeded_lab):
    first, second = _planted(seeded_lab), _planted(second_seeded_lab)
    same = [name for name in first if first[name] == second[name]]
    assert same == []


def test_partner_api_rejects_a_wrong_key_and_accepts_the_seeded_one(seeded_lab):
    url = seeded_lab.seed_info["partner_url"]
    assert _post(url, {"x-api-key": "wrong-" + random_token(26)}) == (401, {"status": "unauthorized"})
    assert _post(url, {}) == (401, {"status": "unauthorized"})
    accepted = _post(url, {"x-api-key": _planted(seeded_lab)["PARTNER_API_KEY"]})
    assert accepted == (200, {"status": "accepted"})


@pytest.mark.lab
def test_a_rotated_partner_key_breaks_the_function_until_it_is_updated(second_seeded_lab):
    lab, lam = second_seeded_lab, second_seeded_lab.client("lambda")
    keys_url = lab.endpoint_url + "/_lab/partner/keys"
    new_key = random_token(32)
    rotated = _post(keys_url, {"Content-Type": "application/json"},
                    json.dumps({"keys": [new_key]}).encode())
    assert rotated == (200, {"status": "ok", "valid_keys": 1})
    failed = lam.invoke(FunctionName="orders-api")
    assert failed["FunctionError"] == "Unhandled"
    assert "401" in json.loads(failed["Payload"].read())["errorMessage"]
    env = lam.get_function_configuration(FunctionName="orders-api")["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName="orders-api",
                                      Environment={"Variables": dict(env, PARTNER_API_KEY=new_key)})
    # until the update finishes Lambda still runs the old configuration
    lam.get_waiter("function_updated_v2").wait(FunctionName="orders-api", WaiterConfig={"Delay": 0.1})
    fixed = lam.invoke(FunctionName="orders-api")
    assert "FunctionError" not in fixed
    assert json.loads(fixed["Payload"].read())["body"] == DOCUMENTED_BODY


# --------------------------------------------------------------------------- partner unit
def test_partner_api_routes_and_counts_without_showing_keys():
    partner = PartnerApi()
    partner.set_valid_keys(["k" * 32, "second-valid-key"])
    assert partner.handle("POST", "/_lab/partner/v1/orders", {"X-Api-Key": "second-valid-key"}, b"")[0] == 200
    status, headers, body = partner.handle("POST", "/_lab/partner/v1/orders", {"x-api-key": "nope"}, b"")
    assert (status, json.loads(body)) == (401, {"status": "unauthorized"})
    assert headers["Content-Type"] == "application/json"
    assert partner.handle("GET", "/_lab/partner/v1/orders", {}, b"")[0] == 405
    assert partner.handle("GET", "/_lab/partner/elsewhere", {}, b"")[0] == 404
    assert partner.stats() == {"accepted": 1, "rejected": 1, "valid_keys": 2}
    assert ("k" * 32 in repr(partner)) is False


def test_partner_keys_endpoint_replaces_keys_and_rejects_bad_bodies():
    partner = PartnerApi(["old-key-value"])
    status, _, body = partner.handle("POST", "/_lab/partner/keys", {}, b'{"keys": ["new-key-value"]}')
    assert (status, json.loads(body)) == (200, {"status": "ok", "valid_keys": 1})
    assert partner.is_valid("new-key-value") and not partner.is_valid("old-key-value")
    assert partner.handle("POST", "/_lab/partner/keys", {}, b'{"keys": "not-a-list"}')[0] == 400
    assert partner.handle("POST", "/_lab/partner/keys", {}, b"not json")[0] == 400
    assert partner.is_valid("new-key-value"), "a rejected update must not change the keys"
    assert not partner.is_valid("") and not partner.is_valid(None)


def test_random_secrets_have_the_promised_shape():
    tokens = {random_token(32) for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) == 32 and t.isalnum() for t in tokens)
    for _ in range(20):
        password = random_password(20)
        assert len(password) == 20
        assert any(c.isupper() for c in password) and any(c.islower() for c in password)
        assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)
