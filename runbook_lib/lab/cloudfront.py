"""Keep CloudFront cache-behaviour fields that moto drops.

moto's ``DefaultCacheBehaviour`` (and ``CacheBehaviour``, its subclass) always sets
``LambdaFunctionAssociations`` and ``FunctionAssociations`` to ``{"Quantity": 0}``,
whatever CreateDistribution/UpdateDistribution sent, so a Lambda@Edge trigger never
appears in GetDistribution/GetDistributionConfig. :func:`install` wraps the
constructor so both fields keep what the request held; moto's own serializer then
writes them back. The patch is applied in the lab process only, once, and
:func:`moto_drops_associations` tells whether moto still needs it.
"""

from __future__ import annotations

import threading

_KEPT_FIELDS = {
    "LambdaFunctionAssociations": "lambda_function_associations",
    "FunctionAssociations": "function_associations",
}
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Make moto's cache behaviours keep the association fields (idempotent)."""
    global _installed
    from moto.cloudfront import models

    with _lock:
        if _installed:
            return
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
