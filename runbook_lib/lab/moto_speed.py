"""What moto's server recomputes on every request or every loader, computed once in the lab.

Measured over one ``runbook run --target lab`` (about 300 AWS calls, see docs/lab.md
"Speed"), moto's server spent more of the lab's CPU on work whose answer never changes
than on the calls themselves:

- :class:`LabDispatcher`: moto's ``DomainDispatcherApplication`` lists moto's ~200 package
  folders (one ``stat`` each) and then tries its URL patterns to find the backend of a
  host, twice per request. The answer depends on the host name alone, so it is kept per
  host.
- :func:`install`: moto builds a new botocore ``Loader`` each time it reads a service or
  paginator model, and each new loader lists every botocore service folder again;
  ``BaseResponse.call_action`` runs ``inspect.getmembers`` over the response class on
  every request; and moto's region lists come from a botocore session of its own. The
  lab keeps one moto loader, the method names of each response class, and gives moto a
  session on the lab's one botocore loader (:mod:`.botocore_data`).
- :func:`lazy_builder`: werkzeug compiles two URL *builders* (Python generated and
  ``exec``-ed) for each of the ~300 rules moto's Lambda and CloudFront routers and Flask
  apps add, and moto only *matches* URLs: the builders are compiled on first use instead.

- :func:`warm_models`: moto reads a service's model (parsed JSON, tens of milliseconds
  each) on the first request to that service. The seed reaches some services; the rest
  (Secrets Manager, STS, KMS, CloudTrail, Logs, Organizations) were read during the
  notebooks' first calls. The lab reads them in a background thread once it is ready
  (:func:`warm_in_background`), while the runner starts its first kernel.

Everything kept here is read from files installed with moto and botocore, or from class
definitions: none of it changes while the lab runs, so nothing is ever invalidated.
Installed in the lab process only (:meth:`~.server.LabServer.start`); tests and other
processes keep moto as it ships.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from werkzeug.routing import Rule

from .botocore_data import botocore_session

__all__ = ["CYCLE_SERVICES", "LabDispatcher", "LazyBuilderRule", "install", "installed", "lazy_builder",
           "warm_in_background", "warm_models"]

#: the services a runbook cycle calls (their botocore names; ``ec2`` only in an inventory, and slow to read)
CYCLE_SERVICES = ("secretsmanager", "lambda", "iam", "sts", "kms", "cloudtrail", "logs", "dynamodb", "s3",
                  "cloudfront", "organizations")

_lock = threading.Lock()
_state: dict[str, Any] = {}


def installed() -> bool:
    """Whether :func:`install` has run in this process."""
    return bool(_state.get("installed"))


def install() -> None:
    """Make moto read each model once and find each response class's methods once (idempotent)."""
    with _lock:
        if _state.get("installed"):
            return
        import boto3
        import flask
        from moto.core import base_backend, loaders, responses, routing, utils

        moto_loader = loaders.create_loader()
        utils.create_loader = lambda: moto_loader  # moto's models carry moto's extras: a loader of their own
        original = responses.method_names_from_class
        responses.method_names_from_class = functools.lru_cache(maxsize=None)(
            lambda clazz: tuple(original(clazz)))
        routing.SmithyRule._compile_builder = lazy_builder
        flask.Flask.url_rule_class = LazyBuilderRule
        session = boto3.Session(botocore_session=botocore_session())
        # moto asks this session only for partitions and regions (the backends' region lists)
        base_backend.AccountSpecificBackend.get_session = classmethod(lambda cls: session)
        _state["installed"] = True


def warm_models(services=CYCLE_SERVICES) -> list[str]:
    """Read moto's service model of each of ``services`` now, as moto would on its first request.

    moto keeps each model for the life of the process (``moto.core.utils.get_service_model``
    is cached), so this only moves the reading earlier. Returns the services read; a model
    moto cannot read is left to fail on first use, as before.
    """
    from moto.core import utils

    warmed = []
    for name in services:
        try:
            utils.get_service_model(name)
        except Exception:  # noqa: BLE001 (moto's own first request will say why)
            continue
        warmed.append(name)
    return warmed


def warm_in_background(services=CYCLE_SERVICES) -> threading.Thread:
    """:func:`warm_models` in a daemon thread (the lab answers requests meanwhile)."""
    thread = threading.Thread(target=warm_models, args=(tuple(services),), name="lab-warm-models", daemon=True)
    thread.start()
    return thread


def lazy_builder(rule: Rule, append_unknown: bool = True):
    """``Rule._compile_builder`` that compiles the URL builder on its first use.

    werkzeug compiles two URL builders (generated Python code) for every rule it adds to
    a map; moto's routers and Flask apps only match URLs, so most are never called.
    """
    compiled: list = []

    def build(bound_rule: Rule, *args: Any, **kwargs: Any):
        if not compiled:
            compiled.append(Rule._compile_builder(bound_rule, append_unknown).__get__(bound_rule, None))
        return compiled[0](*args, **kwargs)

    return build


class LazyBuilderRule(Rule):
    """werkzeug's ``Rule`` with :func:`lazy_builder` (the rule class of moto's Flask apps in the lab)."""

    _compile_builder = lazy_builder


class LabDispatcher(DomainDispatcherApplication):
    """moto's ``DomainDispatcherApplication`` that finds a host's backend once per host.

    Parameters
    ----------
    create_app:
        moto's ``create_backend_app``.

    Examples
    --------
    >>> from moto.moto_server.werkzeug_app import create_backend_app
    >>> LabDispatcher(create_backend_app).get_backend_for_host("lambda.us-east-1.amazonaws.com")
    'awslambda'
    """

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self.backend_by_host: dict[Any, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        # moto calls this under its own lock (get_application): no second lock needed
        if host not in self.backend_by_host:
            self.backend_by_host[host] = super().get_backend_for_host(host)
        return self.backend_by_host[host]
