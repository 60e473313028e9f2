"""How a change step's assertion becomes a verdict (shared by the ``change-*`` and ``closeout-*`` checks).

A step asserts the state it produced by reading it back from AWS (its ``verify``): the
evidence line names what was read (ARNs, versions, hashes, counts); a failed read-back
is the failure. The change engine runs the assertion; this judges its outcome.
"""

from __future__ import annotations

from . import FAIL, PASS, WARN, Verdict


def judge(detail: str, failure: str = "", warning: str = "") -> Verdict:
    """FAIL with the failure; WARN with the warning; PASS on the evidence line; never PASS on nothing.

    Examples
    --------
    >>> judge("", "policy not attached to orders-api-role").status
    'FAIL'
    >>> judge("version 3 keeps the pre-change code").evidence
    {'detail': 'version 3 keeps the pre-change code'}
    """
    if failure:
        return Verdict(FAIL, failure, {"detail": ""})
    if not detail:
        return Verdict(FAIL, "the step's assertion returned no evidence", {"detail": ""})
    if warning:
        return Verdict(WARN, warning, {"detail": detail})
    return Verdict(PASS, "", {"detail": detail})
