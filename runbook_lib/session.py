"""Where the runbook talks to: the embedded lab or an AWS account.

A :class:`Target` is built once per notebook from its parameters and hands out boto3
clients. Nothing here runs at import time: sessions and clients are created when a
notebook asks, and library functions take clients as arguments so tests can inject
their own (moto in-process, or a lab on a loopback port).

Examples
--------
>>> target = Target.from_parameters("lab", region="us-east-1",
...                                 endpoint_url="http://127.0.0.1:5000")  # doctest: +SKIP
>>> lam = target.client("lambda")                                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import urlsplit

import boto3
import botocore.session
from botocore.config import Config
from botocore.loaders import create_loader
from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError,
                                 NoCredentialsError, NoRegionError)

from .exceptions import AwsCallError, InputError, LabError

TARGETS = ("lab", "aws")

#: Adaptive retries make throttling slow an audit down instead of failing it.
RETRY_CONFIG = Config(retries={"mode": "adaptive", "max_attempts": 10},
                      connect_timeout=10, read_timeout=70,
                      user_agent_extra="lambda-secrets-runbook")

#: The services the runbook's steps call: :func:`warm_service_models` parses their models ahead.
SERVICES = ("lambda", "secretsmanager", "iam", "sts", "cloudfront", "cloudtrail", "kms", "logs")
_LOADERS: dict = {}


def new_session(**options) -> boto3.session.Session:
    """A boto3 session (``options`` as for ``boto3.session.Session``) whose service models are parsed once per process.

    botocore parses each service's model (megabytes of JSON) again for every session, and the
    runbook makes several per notebook (the target, each assumed role): they share one loader
    here, per data path, so a model is parsed the first time any of them needs it.

    >>> new_session(region_name="us-east-1").region_name
    'us-east-1'
    """
    core = botocore.session.get_session()
    data_path = core.get_config_variable("data_path")
    if data_path not in _LOADERS:
        _LOADERS[data_path] = create_loader(data_path)
    core.register_component("data_loader", _LOADERS[data_path])
    return boto3.session.Session(botocore_session=core, **options)


def warm_service_models(services=SERVICES) -> None:
    """Parse the models of ``services`` now (a fork server's kernels then find them parsed).

    The clients made for it are thrown away; they carry placeholder keys so that nothing looks
    for credentials.
    """
    session = new_session(region_name="us-east-1", aws_access_key_id="warm-up", aws_secret_access_key="warm-up")
    for service in services:
        session.client(service)


@dataclass
class Target:
    """One place the runbook runs against, and the clients to reach it.

    Parameters
    ----------
    name:
        ``"lab"`` or ``"aws"``; used to label evidence.
    region:
        Default region for clients.
    profile:
        Named profile of the boto3 credential chain (``aws`` target), or empty.
    endpoint_url:
        Endpoint every client is pointed at (the lab's address). Empty means boto3's
        own resolution, which honours ``AWS_ENDPOINT_URL`` like any boto3 program.
    """

    name: str
    region: str
    profile: str = ""
    endpoint_url: str = ""
    session: boto3.session.Session | None = field(default=None, repr=False)
    _clients: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_parameters(cls, target: str, region: str = "", profile: str = "",
                        endpoint_url: str = "",
                        session: boto3.session.Session | None = None) -> "Target":
        """Validate notebook parameters and build the target (no AWS call yet)."""
        if target not in TARGETS:
            raise InputError("target", f"{target!r} is not one of {', '.join(TARGETS)}")
        endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL", "")
        if target == "lab" and not endpoint_url:
            raise InputError("endpoint_url", "no lab endpoint: start one with `runbook lab` "
                             "and export the variables it prints, or pass endpoint_url")
        if session is None:
            session = new_session(profile_name=profile or None, region_name=region or None)
        region = region or session.region_name or ""
        if not region:
            raise InputError("region", "no region given and none configured: "
                             "pass region or set AWS_REGION")
        known = session.get_available_regions("lambda") + ["us-gov-west-1", "cn-north-1"]
        if target == "aws" and known and region not in known:
            raise InputError("region", f"unknown region {region!r}")
        return cls(name=target, region=region, profile=profile,
                   endpoint_url=endpoint_url, session=session)

    def client(self, service: str, region: str | None = None, **kwargs):
        """A cached client for ``service`` in ``region`` (default: the target's)."""
        region = region or self.region
        key = (service, region, tuple(sorted(kwargs.items())))
        if key not in self._clients:
            options = {"region_name": region, "config": RETRY_CONFIG}
            if self.endpoint_url:
                options["endpoint_url"] = self.endpoint_url
            options.update(kwargs)
            client = self.session.client(service, **options)
            if is_loopback(options.get("endpoint_url", "")):
                fail_fast_when_refused(client)
            self._clients[key] = client
        return self._clients[key]

    def caller_identity(self) -> dict:
        """``sts:GetCallerIdentity``, turned into a clear error when credentials are missing."""
        with aws_call("GetCallerIdentity", "sts", "sts:GetCallerIdentity"):
            ident = self.client("sts").get_caller_identity()
        return {"account": ident["Account"], "arn": ident["Arn"]}

    def with_session(self, session: boto3.session.Session) -> "Target":
        """The same target reached through another session (an assumed role)."""
        return Target(self.name, self.region, self.profile, self.endpoint_url, session)


def is_loopback(endpoint_url: str) -> bool:
    """Whether ``endpoint_url`` is on this machine (the lab): ``localhost`` or a loopback address."""
    host = urlsplit(endpoint_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fail_fast_when_refused(client) -> None:
    """No retries of a refused connection on ``client``: on a loopback endpoint nothing is listening.

    A connection to a server on this machine is refused at once, and only because the server
    is gone, so the ten backed-off attempts that ride out a network blip (about 25 s) only delay
    the one-line error. Throttling and server errors are still retried.
    """
    def stop_when_refused(caught_exception=None, **_):
        if isinstance(caught_exception, EndpointConnectionError):
            raise caught_exception
        return None

    event = f"needs-retry.{client.meta.service_model.service_id.hyphenize()}"
    client.meta.events.register_first(event, stop_when_refused, unique_id="runbook-fail-fast-when-refused")


@contextlib.contextmanager
def aws_call(operation: str, resource: str, permission: str | None = None) -> Iterator[None]:
    """Turn botocore failures inside the block into one-line :class:`AwsCallError`.

    Examples
    --------
    >>> with aws_call("GetFunction", "orders", "lambda:GetFunction"):  # doctest: +SKIP
    ...     lam.get_function(FunctionName="orders")
    """
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "ClientError")
        raise AwsCallError(operation, resource, code, _short(error.get("Message", "")),
                           permission=permission) from None
    except NoCredentialsError:
        raise AwsCallError(operation, resource, "NoCredentials",
                           "no AWS credentials found: set a profile, SSO login or "
                           "environment variables", permission=permission) from None
    except NoRegionError:
        raise InputError("region", "no region configured: pass region or set AWS_REGION") from None
    except EndpointConnectionError as exc:
        raise LabError(f"{operation} on {resource}: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')} "
                       "(is the lab still running?)") from None
    except BotoCoreError as exc:
        raise AwsCallError(operation, resource, type(exc).__name__, _short(str(exc)),
                           permission=permission) from None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    if isinstance(exc, AwsCallError):
        return exc.code
    return ""


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
