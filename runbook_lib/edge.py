"""Lambda@Edge: a published version on a CloudFront distribution's viewer-request trigger.

Lambda@Edge has rules a regional function does not: the function must live in
us-east-1, must have no environment variables (the reference handler then reads its
secret id from ``runbook_config.json`` in the package), no layers, and a viewer trigger
allows at most 5 seconds and 128 MB. The association names a numbered version, never
``$LATEST``.

Removing the association does not delete the replicas CloudFront made of the version:
they go away on their own some hours later, and only then can the version be deleted,
so backout leaves the version in place and says so.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Callable

from .exceptions import AwsCallError
from .session import aws_call
from .waits import attempts_for, poll_seconds

EDGE_REGION = "us-east-1"
EVENT_TYPE = "viewer-request"
VIEWER_MAX_TIMEOUT = 5
VIEWER_MAX_MEMORY = 128
#: botocore's ``distribution_deployed`` waiter: a poll every 20 s, 60 polls (20 minutes).
DEPLOY_DELAY_SECONDS = 20
DEPLOY_MAX_ATTEMPTS = 60
DEPLOY_WAIT_SECONDS = DEPLOY_DELAY_SECONDS * DEPLOY_MAX_ATTEMPTS
#: between deployment polls of the lab: a few progress lines per second of deployment, not one per poll of 50 ms
LOOPBACK_DEPLOY_POLL_SECONDS = 0.25


def edge_problems(config: dict, region: str, environment_after: dict | None = None) -> list[str]:
    """Why this function cannot be a viewer-request Lambda@Edge function as it will be deployed."""
    problems = []
    if region != EDGE_REGION:
        problems.append(f"the function is in {region}; Lambda@Edge functions must be in {EDGE_REGION}")
    if environment_after:
        problems.append("Lambda@Edge forbids environment variables; the function would still have "
                        + ", ".join(sorted(environment_after)))
    if config.get("PackageType") == "Image":
        problems.append("Lambda@Edge does not run container images")
    if "arm64" in (config.get("Architectures") or []):
        problems.append("Lambda@Edge runs x86_64 only")
    if (config.get("VpcConfig") or {}).get("SubnetIds"):
        problems.append("Lambda@Edge functions cannot be attached to a VPC")
    return problems


def get_distribution_config(cf, distribution_id: str) -> tuple[dict, str]:
    with aws_call("GetDistributionConfig", distribution_id, "cloudfront:GetDistributionConfig"):
        response = cf.get_distribution_config(Id=distribution_id)
    return response["DistributionConfig"], response["ETag"]


def distribution_exists(cf, distribution_id: str) -> bool:
    try:
        get_distribution_config(cf, distribution_id)
        return True
    except AwsCallError as exc:
        if exc.code == "NoSuchDistribution":
            return False
        raise


def viewer_request_arn(distribution_config: dict) -> str | None:
    """The function version ARN on the default cache behaviour's viewer-request, if any."""
    associations = distribution_config.get("DefaultCacheBehavior", {}).get("LambdaFunctionAssociations", {})
    for item in associations.get("Items", []) or []:
        if item.get("EventType") == EVENT_TYPE:
            return item.get("LambdaFunctionARN")
    return None


def with_viewer_request(distribution_config: dict, version_arn: str | None) -> dict:
    """A copy of the config whose default behaviour has ``version_arn`` on viewer-request (None removes it).

    Other event types' associations are kept as they are.
    """
    if version_arn is not None and version_arn.endswith(":$LATEST"):
        raise ValueError("Lambda@Edge needs a numbered version, not $LATEST")
    new = copy.deepcopy(distribution_config)
    behaviour = new.setdefault("DefaultCacheBehavior", {})
    items = [i for i in (behaviour.get("LambdaFunctionAssociations", {}).get("Items") or [])
             if i.get("EventType") != EVENT_TYPE]
    if version_arn:
        items.append({"LambdaFunctionARN": version_arn, "EventType": EVENT_TYPE, "IncludeBody": False})
    behaviour["LambdaFunctionAssociations"] = {"Quantity": len(items), **({"Items": items} if items else {})}
    return new


def set_viewer_request(cf, distribution_id: str, version_arn: str | None) -> str | None:
    """Associate (or with None, remove) the viewer-request function; returns the previous ARN."""
    config, etag = get_distribution_config(cf, distribution_id)
    previous = viewer_request_arn(config)
    with aws_call("UpdateDistribution", distribution_id,
                  "cloudfront:UpdateDistribution + lambda:EnableReplication* + lambda:GetFunction"):
        cf.update_distribution(Id=distribution_id, IfMatch=etag,
                               DistributionConfig=with_viewer_request(config, version_arn))
    return previous


def wait_deployed(cf, distribution_id: str, delay: int = DEPLOY_DELAY_SECONDS,
                  max_attempts: int = DEPLOY_MAX_ATTEMPTS, say: Callable[[str], None] | None = None) -> None:
    """Wait, as botocore's ``distribution_deployed`` waiter does, saying how long at every poll.

    The waiter runs one attempt at a time (its own acceptors judge each ``GetDistribution``),
    so the wait shows progress: a deployment takes minutes on AWS, up to ``delay * max_attempts``
    seconds (:data:`DEPLOY_WAIT_SECONDS`; the runner's cell timeout allows it). On a loopback
    endpoint (the lab, whose deployments take about a second) it polls every
    :data:`LOOPBACK_DEPLOY_POLL_SECONDS` instead, as many more times as keep that budget.
    """
    from botocore.exceptions import WaiterError

    fast = poll_seconds(cf, delay, LOOPBACK_DEPLOY_POLL_SECONDS)
    max_attempts, delay = attempts_for(delay, max_attempts, fast), fast
    say = say or _stderr_line
    waiter = cf.get_waiter("distribution_deployed")
    started = time.monotonic()
    for attempt in range(1, max_attempts + 1):
        with aws_call("GetDistribution (waiter distribution_deployed)", distribution_id, "cloudfront:GetDistribution"):
            try:
                waiter.wait(Id=distribution_id, WaiterConfig={"Delay": delay, "MaxAttempts": 1})
            except WaiterError as exc:  # one attempt, not yet Deployed: say so, poll again
                if attempt == max_attempts or "Max attempts exceeded" not in str(exc):
                    raise
                say(f"CloudFront {distribution_id}: deploying, {time.monotonic() - started:.0f} s "
                    f"of at most {delay * max_attempts:g} s")
                time.sleep(delay)
                continue
        if attempt > 1:
            say(f"CloudFront {distribution_id}: deployed after {time.monotonic() - started:.0f} s")
        return


def _stderr_line(line: str) -> None:
    print(f"[runbook] {line}", file=sys.stderr, flush=True)
