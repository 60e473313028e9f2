"""Reference Lambda handler: the function's secrets come from AWS Secrets Manager at run time.

The secure twin of the lab's seeded ``orders-api``: same work (count the orders in the
DynamoDB table named by ``TABLE_NAME``, POST to the partner API at ``PARTNER_API_URL``
with the partner key in ``x-api-key``), same response shape, but

* no credential in code or configuration: DynamoDB is read with the execution role;
* the secret (a JSON object) is fetched on the first invocation of an execution
  environment and cached in a module global; ``SECRET_TTL_SECONDS`` (optional) makes
  the cache expire so a rotation is picked up, and one forced refetch happens when the
  partner answers 401 (the key was rotated under us);
* the secret id comes from ``SECRET_ID`` in the environment, or, for Lambda@Edge
  (which has no environment variables), from ``runbook_config.json`` packaged next to
  this file, which holds the secret's ARN and region, never a value;
* log lines never contain a value, errors are logged by class only.

Only the standard library and boto3 are used: this module runs inside Lambda.
"""

import json
import os
import time
import urllib.error
import urllib.request

import boto3

RETRIEVED_MESSAGE = "secret retrieved from Secrets Manager (cached for next invocations)"
CONFIG_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runbook_config.json")
PARTNER_TIMEOUT_SECONDS = 5

# Module globals survive between invocations of one execution environment: that is the cache.
_clients = {}
_cache = {"config": None, "fetched_at": 0.0}
_package_config = {}


def _log(level, message):
    # print goes to CloudWatch Logs on Lambda and in the lab alike; logging would need a handler.
    print(f"[{level}] {message}", flush=True)


def _read_package_config():
    if "loaded" not in _package_config:
        try:
            with open(CONFIG_FILE, encoding="utf-8") as fh:
                _package_config.update(json.load(fh))
        except FileNotFoundError:
            pass
        except ValueError as exc:
            _log("ERROR", f"runbook_config.json unreadable: {type(exc).__name__}")
        _package_config["loaded"] = True
    return _package_config


def setting(name, default=""):
    """A setting from the environment, else from the packaged config (edge functions)."""
    value = os.environ.get(name)
    if value:
        return value
    package = _read_package_config()
    return package.get("environment", {}).get(name) or package.get(name) or default


def _region():
    return os.environ.get("AWS_REGION") or setting("region") or None


def client(service):
    """One boto3 client per service for the life of the execution environment."""
    if service not in _clients:
        _clients[service] = boto3.client(service, region_name=_region())
    return _clients[service]


def _ttl_seconds():
    try:
        return max(0.0, float(setting("SECRET_TTL_SECONDS", "0") or 0))
    except ValueError:
        _log("WARNING", "SECRET_TTL_SECONDS is not a number; caching without expiry")
        return 0.0


def _cache_fresh():
    if _cache["config"] is None:
        return False
    ttl = _ttl_seconds()
    return ttl <= 0 or (time.monotonic() - _cache["fetched_at"]) < ttl


def get_secret(force_refresh=False):
    """The secret's JSON object, fetched once and cached (until the TTL, or when forced)."""
    if not force_refresh and _cache_fresh():
        return _cache["config"]
    secret_id = setting("SECRET_ID")
    if not secret_id:
        raise RuntimeError("SECRET_ID is not set (environment or runbook_config.json)")
    response = client("secretsmanager").get_secret_value(SecretId=secret_id)
    if "SecretString" in response:
        raw = response["SecretString"]
    else:
        raw = response["SecretBinary"]  # boto3 has already base64-decoded it
        raw = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    config = json.loads(raw)
    if not isinstance(config, dict):
        raise ValueError("the secret is not a JSON object")
    _cache["config"] = config
    _cache["fetched_at"] = time.monotonic()
    _log("INFO", RETRIEVED_MESSAGE)
    return config


def count_orders():
    """Number of items in the table, read with the execution role's credentials."""
    table = setting("TABLE_NAME")
    if not table:
        return 0
    total, kwargs = 0, {"TableName": table, "Select": "COUNT"}
    while True:
        page = client("dynamodb").scan(**kwargs)
        total += page.get("Count", 0)
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def call_partner(api_key, payload):
    """POST ``payload`` to the partner API; return the HTTP status (0 when not configured)."""
    url = setting("PARTNER_API_URL")
    if not url:
        return 0
    request = urllib.request.Request(url, data=json.dumps(payload).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json", "x-api-key": api_key})
    try:
        with urllib.request.urlopen(request, timeout=PARTNER_TIMEOUT_SECONDS) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _is_cloudfront_event(event):
    try:
        return "cf" in event["Records"][0]
    except (KeyError, IndexError, TypeError):
        return False


def handler(event, context):
    """Lambda entry point."""
    try:
        if _is_cloudfront_event(event):
            get_secret()  # warm the cache; the viewer request goes on unchanged
            return event["Records"][0]["cf"]["request"]
        config = get_secret()
        orders = count_orders()
        status = call_partner(str(config.get("PARTNER_API_KEY", "")), {"orders": orders})
        if status == 401:
            _log("INFO", "partner API answered 401: refetching the secret once")
            config = get_secret(force_refresh=True)
            status = call_partner(str(config.get("PARTNER_API_KEY", "")), {"orders": orders})
        partner = ("accepted" if 200 <= status < 300 else
                   "not-configured" if status == 0 else "rejected")
        if partner == "rejected":
            _log("ERROR", f"partner API answered HTTP {status}")
        return {"statusCode": 200 if partner == "accepted" else 502,
                "body": json.dumps({"orders": orders, "partner": partner,
                                    "db_configured": bool(config.get("DB_PASSWORD"))})}
    except Exception as exc:  # the class only: a message could quote a value
        _log("ERROR", f"request failed: {type(exc).__name__}")
        raise RuntimeError(f"request failed: {type(exc).__name__}") from None
