"""CloudFront as the runbook meets it: Lambda@Edge associations kept, deployments that take time.

moto's ``DefaultCacheBehaviour`` (and ``CacheBehaviour``, its subclass) always sets
``LambdaFunctionAssociations`` and ``FunctionAssociations`` to ``{"Quantity": 0}``,
whatever CreateDistribution/UpdateDistribution sent, so a Lambda@Edge trigger never
appears in GetDistribution/GetDistributionConfig. :func:`install` wraps the
constructor so both fields keep what the request held; moto's own serializer then
writes them back.

moto also reports a distribution ``Deployed`` the moment it is created or updated. On
AWS it is ``InProgress`` for minutes while the change reaches the edge locations, and
the runbook waits for it (``edge.wait_deployed``). :func:`install` makes a distribution
``InProgress`` for :func:`deploy_seconds` after each create and update (the setting in
force when the status is read, so lowering it finishes what is deploying).

The patches are applied in the lab process only, once; :func:`moto_drops_associations`
and :func:`moto_deploys_at_once` tell whether moto still needs them.
"""

from __future__ import annotations

import threading
import time

_KEPT_FIELDS = {
    "LambdaFunctionAssociations": "lambda_function_associations",
    "FunctionAssociations": "function_associations",
}
_lock = threading.Lock()
_installed = False
#: Seconds a distribution stays InProgress after a create or update (the lab's default).
DEFAULT_DEPLOY_SECONDS = 1.0
_deploy_seconds = DEFAULT_DEPLOY_SECONDS


def set_deploy_seconds(seconds: float) -> None:
    """How long a distribution is ``InProgress`` after a change (0: deployed at once)."""
    global _deploy_seconds
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise TypeError("cloudfront_deploy_seconds must be a number of seconds, 0 or more")
    _deploy_seconds = float(seconds)


def deploy_seconds() -> float:
    return _deploy_seconds


def install() -> None:
    """Make moto's cache behaviours keep the association fields and distributions take time
    to deploy (idempotent)."""
    global _installed
    from moto.cloudfront import models

    with _lock:
        if _installed:
            return
        _install_deployment_time(models)
        original = models.DefaultCacheBehaviour.__init__

        def __init__(self, config: dict) -> None:
            original(self, config)
            for wire, attribute in _KEPT_FIELDS.items():
                value = config.get(wire)
                if isinstance(value, dict) and value.get("Quantity"):
                    setattr(self, attribute, _normalised(value))

        __init__.__wrapped__ = original  # type: ignore[attr-defined]
        models.DefaultCacheBehaviour.__init__ = __init__
        _installed = True


def installed() -> bool:
    return _installed


def _install_deployment_time(models) -> None:
    """``Distribution.status`` is InProgress until the change has had its deployment time."""
    def status(self) -> str:
        changed = getattr(self, "_lab_changed_at", None)
        return "Deployed" if changed is None or time.monotonic() >= changed + _deploy_seconds else "InProgress"

    def set_status(self, value: str) -> None:
        self._lab_changed_at = None if value == "Deployed" else time.monotonic()

    models.Distribution.status = property(status, set_status)
    backend = models.CloudFrontBackend
    for name in ("create_distribution_with_tags", "update_distribution"):
        original = getattr(backend, name)

        def changed(self, *args, __original=original, **kwargs):
            result = __original(self, *args, **kwargs)
            distribution = result[0] if isinstance(result, tuple) else result
            distribution._lab_changed_at = time.monotonic()
            return result

        changed.__wrapped__ = original  # type: ignore[attr-defined]
        setattr(backend, name, changed)


def moto_deploys_at_once() -> bool:
    """Whether moto's unpatched distribution reports ``Deployed`` right after an update."""
    from moto.cloudfront import models

    # moto's own ManagedState property, which the lab's patch overrides on Distribution only
    probe = models.Distribution.__new__(models.Distribution)
    models.ManagedState.__init__(probe, "cloudfront::distribution", transitions=[("InProgress", "Deployed")])
    probe.advance()
    return models.ManagedState.status.fget(probe) == "Deployed"


def _normalised(value: dict) -> dict:
    items = value.get("Items") or []
    if isinstance(items, dict):  # a single item parsed without its list wrapper
        items = [items]
    return {"Quantity": len(items), "Items": list(items)}


def moto_drops_associations() -> bool:
    """Whether moto's unpatched cache behaviour drops ``LambdaFunctionAssociations``."""
    from moto.cloudfront import models

    constructor = getattr(models.DefaultCacheBehaviour.__init__, "__wrapped__",
                          models.DefaultCacheBehaviour.__init__)
    probe = models.DefaultCacheBehaviour.__new__(models.DefaultCacheBehaviour)
    constructor(probe, {
        "TargetOriginId": "origin", "ViewerProtocolPolicy": "allow-all",
        "LambdaFunctionAssociations": {"Quantity": 1, "Items": [{
            "LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:probe:1",
            "EventType": "viewer-request", "IncludeBody": False}]},
    })
    return probe.lambda_function_associations.get("Quantity") == 0
