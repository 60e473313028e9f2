"""The reference handler, run directly under moto: cache, TTL, forced refetch, edge, no values in logs."""

import importlib
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import pytest
from moto import mock_aws

from runbook_lib.handlers import reference_handler as rh

REGION = "us-east-1"
VALID_KEY = "pk-" + "q7Zr" * 6
DB_PASSWORD = "db-" + "W3x!" * 5


class Partner(BaseHTTPRequestHandler):
    valid = VALID_KEY
    calls: list = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = self.headers.get("x-api-key") == Partner.valid
        Partner.calls.append(ok)
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture()
def partner_url():
    server = HTTPServer(("127.0.0.1", 0), Partner)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Partner.calls = []
    Partner.valid = VALID_KEY
    yield f"http://127.0.0.1:{server.server_port}/v1/orders"
    server.shutdown()


@pytest.fixture()
def handler(monkeypatch, partner_url, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "order_id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "order_id", "AttributeType": "S"}])
        for i in range(3):
            ddb.put_item(TableName="orders", Item={"order_id": {"S": f"o-{i}"}})
        sm = boto3.client("secretsmanager", region_name=REGION)
        arn = sm.create_secret(Name="lambda/orders-api/config", SecretString=json.dumps(
            {"PARTNER_API_KEY": VALID_KEY, "DB_PASSWORD": DB_PASSWORD}))["ARN"]
        monkeypatch.setenv("SECRET_ID", arn)
        monkeypatch.setenv("TABLE_NAME", "orders")
        monkeypatch.setenv("PARTNER_API_URL", partner_url)
        module = importlib.reload(rh)  # fresh module globals = a fresh execution environment
        calls = []
        original = module.client

        def counting_client(service):
            c = original(service)
            if service == "secretsmanager" and not getattr(c, "_counted", False):
                c.meta.events.register("before-call.secrets-manager.GetSecretValue",
                                       lambda **kw: calls.append(1))
                c._counted = True
            return c
        monkeypatch.setattr(module, "client", counting_client)
        module.secret_calls = calls
        module.sm, module.secret_arn = sm, arn
        yield module


def test_handler_returns_the_seeded_shape_and_fetches_the_secret_once(handler, capsys):
    results = [handler.handler({}, None) for _ in range(5)]
    assert all(r["statusCode"] == 200 for r in results)
    body = json.loads(results[0]["body"])
    assert body == {"orders": 3, "partner": "accepted", "db_configured": True}
    assert len(handler.secret_calls) == 1, "one GetSecretValue for five invocations"
    out = capsys.readouterr().out
    assert out.count(rh.RETRIEVED_MESSAGE) == 1
    assert bool(VALID_KEY in out or DB_PASSWORD in out) is False, "a secret value reached the log"


def test_ttl_expiry_refetches(handler, monkeypatch):
    monkeypatch.setenv("SECRET_TTL_SECONDS", "30")
    clock = [1000.0]
    monkeypatch.setattr(handler.time, "monotonic", lambda: clock[0])
    handler.handler({}, None)
    clock[0] += 10
    handler.handler({}, None)
    assert len(handler.secret_calls) == 1
    clock[0] += 31
    handler.handler({}, None)
    assert len(handler.secret_calls) == 2


def test_partner_401_forces_one_refetch_and_picks_up_rotation(handler):
    handler.handler({}, None)
    rotated = "pk-" + "R0t8" * 6
    handler.sm.put_secret_value(SecretId=handler.secret_arn, SecretString=json.dumps(
        {"PARTNER_API_KEY": rotated, "DB_PASSWORD": DB_PASSWORD}))
    Partner.valid = rotated
    result = handler.handler({}, None)
    assert result["statusCode"] == 200
    assert len(handler.secret_calls) == 2, "exactly one forced refetch"
    assert Partner.calls[-2:] == [False, True]


def test_rejected_key_after_refetch_is_reported_not_retried_forever(handler):
    Partner.valid = "something-else-entirely"
    result = handler.handler({}, None)
    assert result["statusCode"] == 502 and json.loads(result["body"])["partner"] == "rejected"
    assert len(handler.secret_calls) == 2


def test_secret_binary_is_decoded(handler, monkeypatch):
    arn = handler.sm.create_secret(Name="bin", SecretBinary=json.dumps(
        {"PARTNER_API_KEY": VALID_KEY}).encode())["ARN"]
    monkeypatch.setenv("SECRET_ID", arn)
    assert handler.get_secret()["PARTNER_API_KEY"] == VALID_KEY


def test_edge_event_reads_secret_id_from_package_config(handler, monkeypatch, tmp_path):
    config = tmp_path / "runbook_config.json"
    config.write_text(json.dumps({"SECRET_ID": handler.secret_arn, "region": REGION}))
    monkeypatch.delenv("SECRET_ID")
    monkeypatch.setattr(handler, "CONFIG_FILE", str(config))
    request = {"uri": "/index.html", "method": "GET", "headers": {}}
    event = {"Records": [{"cf": {"config": {"eventType": "viewer-request"}, "request": request}}]}
    assert handler.handler(event, None) == request
    assert handler.handler(event, None) == request
    assert len(handler.secret_calls) == 1


def test_errors_are_logged_by_class_without_values(handler, monkeypatch, capsys):
    monkeypatch.setenv("SECRET_ID", handler.secret_arn + "-missing")
    with pytest.raises(RuntimeError) as info:
        handler.handler({}, None)
    assert str(info.value) == "request failed: ResourceNotFoundException"
    assert "[ERROR] request failed: ResourceNotFoundException" in capsys.readouterr().out


def test_handler_module_imports_only_stdlib_and_boto3():
    import ast
    tree = ast.parse(open(rh.__file__).read())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= {"json", "os", "time", "urllib", "boto3"}
