"""How long a notebook's cells may wait on AWS, so that the runner's cell timeout follows the waiters.

A cell that waits on AWS must not hit papermill's per-cell timeout first: the CloudFront
deployment waiter allows :data:`runbook_lib.edge.DEPLOY_WAIT_SECONDS` (20 minutes), validation
polls CloudTrail up to ``trail_wait_seconds`` (900 s by default on AWS) and CloudWatch Logs up to
:data:`runbook_lib.validation_collect.MAX_LOG_WAIT_SECONDS`. :func:`cell_timeout` is the runner's
base timeout plus the longest wait a notebook's cells may do with the parameters it is given.

How often the waits poll is paced for AWS (a function update takes a second or two, a
CloudFront deployment minutes). On a loopback endpoint (the lab) the same change is done in a
fraction of a second, so :func:`poll_seconds` shortens the pause between polls there; the
waits still end only on the state AWS's own waiters accept, and the budget in seconds is
unchanged (:func:`attempts_for`).

Examples
--------
>>> cell_timeout(900, "02_implementation", {}, "aws")
2100
>>> cell_timeout(900, "01_test_plan", {}, "aws")
900
"""

from __future__ import annotations

import math

#: validation's CloudTrail poll, per target, when ``trail_wait_seconds`` is -1 (AWS delivers minutes late)
DEFAULT_TRAIL_WAIT = {"lab": 0, "aws": 900}
#: notebooks whose steps wait for a CloudFront deployment (the edge trigger, its removal)
EDGE_NOTEBOOKS = ("02_implementation", "04_backout")
VALIDATION = "03_functional_validation"
#: seconds between polls of a server on this machine: the lab answers a poll in milliseconds
LOOPBACK_POLL_SECONDS = 0.05


def poll_seconds(client, seconds: float, loopback_seconds: float = LOOPBACK_POLL_SECONDS) -> float:
    """The pause between two polls of ``client``'s endpoint: ``seconds``, or at most ``loopback_seconds`` on loopback.

    >>> class Meta: endpoint_url = "http://127.0.0.1:41231"
    >>> class Client: meta = Meta()
    >>> poll_seconds(Client(), 2)
    0.05
    """
    from .session import is_loopback  # imported here: session loads boto3

    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", "") or ""
    return min(seconds, loopback_seconds) if is_loopback(endpoint) else seconds


def attempts_for(seconds: float, attempts: int, delay: float) -> int:
    """Polls at ``delay`` that wait as long as ``attempts`` polls at ``seconds`` (at least ``attempts``)."""
    if delay <= 0 or delay >= seconds:
        return attempts
    return max(attempts, math.ceil(seconds * attempts / delay))


def longest_wait(notebook: str, parameters: dict, target: str) -> int:
    """The longest a single cell of ``notebook`` may wait on AWS, in seconds."""
    # imported here: both modules load boto3, which the runner needs only once the lab is up
    from .edge import DEPLOY_WAIT_SECONDS
    from .validation_collect import MAX_LOG_WAIT_SECONDS

    if notebook in EDGE_NOTEBOOKS:
        return DEPLOY_WAIT_SECONDS
    if notebook == VALIDATION:
        trail = float(parameters.get("trail_wait_seconds", -1))
        trail = DEFAULT_TRAIL_WAIT.get(target, 900) if trail < 0 else trail
        return int(trail) + MAX_LOG_WAIT_SECONDS
    return 0


def cell_timeout(base: int, notebook: str, parameters: dict, target: str) -> int:
    """``base`` seconds for a cell's own work, plus the longest wait it may do on AWS."""
    return int(base) + longest_wait(notebook, parameters, target)
