"""runbook_lib.lab.moto_speed: what moto recomputes per request or per loader, computed once.

Each cache is checked two ways: it answers what moto answers without it, and a second ask
is served from the cache. The cached data (host names, installed model files, class
definitions) never changes while a lab runs, so there is no invalidation to test; the
server-level tests (test_lab_server.py and the rest) run with all of it installed.
"""

import inspect

import pytest
from moto.core import base_backend, loaders, responses, routing, utils
from moto.moto_server import werkzeug_app
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder

from runbook_lib.lab import moto_speed
from runbook_lib.lab.botocore_data import botocore_loader

HOSTS = ["lambda.us-east-1.amazonaws.com", "secretsmanager.eu-west-1.amazonaws.com", "s3.amazonaws.com",
         "iam.amazonaws.com", "dynamodb", "cloudfront.amazonaws.com", "moto_api", "example.org", None]


@pytest.fixture
def installed(monkeypatch):
    """moto_speed.install() for one test; moto is put back as it ships afterwards."""
    import flask

    monkeypatch.setattr(moto_speed, "_state", {})
    monkeypatch.setattr(utils, "create_loader", utils.create_loader)
    monkeypatch.setattr(responses, "method_names_from_class", responses.method_names_from_class)
    monkeypatch.setattr(base_backend.AccountSpecificBackend, "get_session",
                        base_backend.AccountSpecificBackend.__dict__["get_session"])
    monkeypatch.setattr(routing.SmithyRule, "_compile_builder", routing.SmithyRule._compile_builder)
    monkeypatch.setattr(flask.Flask, "url_rule_class", flask.Flask.url_rule_class)
    moto_speed.install()
    yield


def test_dispatcher_finds_the_backend_moto_finds_for_every_host():
    plain = DomainDispatcherApplication(create_backend_app)
    lab = moto_speed.LabDispatcher(create_backend_app)
    for host in HOSTS:
        assert lab.get_backend_for_host(host) == plain.get_backend_for_host(host), host
    assert lab.get_backend_for_host("lambda.us-east-1.amazonaws.com") == "awslambda"
    assert lab.get_backend_for_host("example.org") is None


def test_dispatcher_asks_moto_once_per_host(monkeypatch):
    lab = moto_speed.LabDispatcher(create_backend_app)
    listed = []
    original = werkzeug_app.backends.list_of_moto_modules
    monkeypatch.setattr(werkzeug_app.backends, "list_of_moto_modules", lambda: listed.append(1) or original())
    assert lab.get_backend_for_host("kms.us-east-1.amazonaws.com") == "kms"
    first = len(listed)
    assert first >= 1
    assert lab.get_backend_for_host("kms.us-east-1.amazonaws.com") == "kms"
    assert lab.get_backend_for_host(None) is None and lab.get_backend_for_host(None) is None
    assert len(listed) == first  # the second kms lookup and None never reached moto's folder listing
    assert lab.get_backend_for_host("sts.amazonaws.com") == "sts"
    assert len(listed) == first + 1  # a new host does


def test_dispatcher_serves_a_request_as_moto_does():
    environ = EnvironBuilder(method="POST", path="/", data="Action=GetCallerIdentity&Version=2011-06-15",
                             headers={"Content-Type": "application/x-www-form-urlencoded",
                                      "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/"
                                                       "sts/aws4_request, SignedHeaders=host, Signature=x"}
                             ).get_environ()
    app = moto_speed.LabDispatcher(create_backend_app).get_application(environ)
    assert app.service == "sts"


def test_install_shares_one_moto_loader(installed):
    assert utils.create_loader() is utils.create_loader()
    assert isinstance(utils.create_loader(), loaders.Loader)  # moto's loader: its models keep moto's extras
    model = utils._load_service_model("lambda", "service-2")
    assert model is utils._load_service_model("lambda", "service-2")  # parsed once
    assert model == loaders.create_loader().load_service_model("lambda", "service-2")  # what a fresh loader reads


def test_install_keeps_each_response_class_method_names(installed):
    from moto.secretsmanager.responses import SecretsManagerResponse

    names = responses.method_names_from_class(SecretsManagerResponse)
    expected = [name for name, _ in inspect.getmembers(SecretsManagerResponse, inspect.isfunction)]
    assert list(names) == expected and "get_secret_value" in names
    hits = responses.method_names_from_class.cache_info().hits
    assert responses.method_names_from_class(SecretsManagerResponse) is names
    assert responses.method_names_from_class.cache_info().hits == hits + 1


def test_install_gives_moto_regions_from_the_shared_loader(installed):
    session = base_backend.AccountSpecificBackend.get_session()
    assert session is base_backend.AccountSpecificBackend.get_session()
    assert session._session.get_component("data_loader") is botocore_loader()
    assert "us-east-1" in session.get_available_regions("secretsmanager")


def test_install_is_idempotent(installed):
    loader = utils.create_loader()
    names = responses.method_names_from_class
    moto_speed.install()
    assert moto_speed.installed()
    assert utils.create_loader() is loader and responses.method_names_from_class is names


def _map(rule_class):
    return Map([rule_class("/2015-03-31/functions/<name>/invocations", endpoint="Invoke", methods=["POST"]),
                rule_class("/2015-03-31/functions/<name>", endpoint="GetFunction", methods=["GET"])])


def test_lazy_builder_rule_matches_and_builds_as_werkzeug_does():
    lazy, plain = _map(moto_speed.LazyBuilderRule).bind("lab"), _map(Rule).bind("lab")
    for path, method in (("/2015-03-31/functions/orders-api/invocations", "POST"),
                         ("/2015-03-31/functions/orders-api", "GET")):
        assert lazy.match(path, method) == plain.match(path, method)
    assert lazy.build("Invoke", {"name": "f"}) == plain.build("Invoke", {"name": "f"}) \
        == "/2015-03-31/functions/f/invocations"
    assert lazy.build("GetFunction", {"name": "f", "Qualifier": "2"}) == \
        plain.build("GetFunction", {"name": "f", "Qualifier": "2"})  # the append-unknown builder too


def test_lazy_builder_compiles_on_first_build_only(monkeypatch):
    compiled = []
    original = Rule._compile_builder
    monkeypatch.setattr(Rule, "_compile_builder", lambda self, unknown=True: compiled.append(unknown)
                        or original(self, unknown))
    adapter = _map(moto_speed.LazyBuilderRule).bind("lab")
    adapter.match("/2015-03-31/functions/x", "GET")
    assert compiled == []  # matching compiles no builder
    adapter.build("GetFunction", {"name": "x"})
    adapter.build("GetFunction", {"name": "y"})
    assert compiled == [True]  # one builder (build appends unknown values by default), once


def test_install_makes_moto_routers_match_as_before(installed):
    # the Lambda router is built from moto's rules after install: it must still name the operation
    from moto.core.request import Request

    environ = EnvironBuilder(method="GET", path="/2015-03-31/functions/orders-api").get_environ()
    router = routing.ServiceOperationRouter(utils.get_service_model("lambda"))
    operation, params = router.match(Request(environ))
    assert operation.name == "GetFunction" and params["FunctionName"] == "orders-api"


@pytest.fixture
def fresh_model_cache(monkeypatch):
    """moto's ``get_service_model`` with an empty cache of its own for one test."""
    import functools

    cached = functools.cache(utils.get_service_model.__wrapped__)
    monkeypatch.setattr(utils, "get_service_model", cached)
    return cached


def test_warm_models_reads_each_model_moto_would_read_on_first_use(fresh_model_cache):
    assert moto_speed.warm_models(("secretsmanager", "kms", "no-such-service")) == ["secretsmanager", "kms"]
    assert fresh_model_cache.cache_info().currsize == 2
    model = utils.get_service_model("secretsmanager")  # moto's first request now: a hit
    assert fresh_model_cache.cache_info().hits == 1
    assert model.operation_names == utils.get_service_model.__wrapped__("secretsmanager").operation_names
    assert "GetSecretValue" in model.operation_names


def test_warm_in_background_reads_the_cycles_models_in_a_daemon_thread(fresh_model_cache):
    thread = moto_speed.warm_in_background(("sts", "logs"))
    thread.join(timeout=60)
    assert thread.daemon and not thread.is_alive()
    assert fresh_model_cache.cache_info().currsize == 2
    assert set(moto_speed.CYCLE_SERVICES) >= {"secretsmanager", "sts", "kms", "cloudtrail", "logs", "organizations"}
