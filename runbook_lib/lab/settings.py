"""The lab's run-time settings: what ``GET|POST /_lab/config`` shows and changes.

| setting | default | what it does |
|---|---|---|
| ``enforce_iam`` | ``False`` | evaluate identity, resource-based, boundary, session and KMS key policies |
| ``trail_delay_seconds`` | ``0`` | hold each CloudTrail event back from ``LookupEvents`` this long |
| ``cloudfront_deploy_seconds`` | ``1`` | a distribution is ``InProgress`` this long after a change |
| ``function_state_seconds`` | ``0.1`` | a function is ``Pending`` after create, ``InProgress`` after an update, this long |

Credentials and trust policies are always checked; they are not settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .function_states import DEFAULT_SECONDS as FUNCTION_STATE_SECONDS
from .function_states import MAX_SECONDS as MAX_FUNCTION_STATE_SECONDS

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ADMIN_USER = "lab-admin"
#: Longest delivery delay the lab accepts (AWS delivers within about 15 minutes).
MAX_TRAIL_DELAY = 3600.0


@dataclass
class LabSettings:
    """Validated run-time settings of one lab."""

    enforce_iam: bool = False
    trail_delay_seconds: float = 0.0
    cloudfront_deploy_seconds: float = 1.0
    function_state_seconds: float = FUNCTION_STATE_SECONDS

    def update(self, changes: dict) -> "LabSettings":
        """Apply ``changes`` after checking every one of them; unknown names are refused."""
        if not isinstance(changes, dict):
            raise TypeError("the lab's config is a JSON object")
        unknown = set(changes) - set(asdict(self))
        if unknown:
            raise KeyError(f"unknown lab setting(s): {', '.join(sorted(unknown))}")
        checked = asdict(self)
        if "enforce_iam" in changes:
            if not isinstance(changes["enforce_iam"], bool):
                raise TypeError("enforce_iam must be true or false")
            checked["enforce_iam"] = changes["enforce_iam"]
        for name, ceiling in (("trail_delay_seconds", MAX_TRAIL_DELAY), ("cloudfront_deploy_seconds", 3600.0),
                              ("function_state_seconds", MAX_FUNCTION_STATE_SECONDS)):
            if name in changes:
                checked[name] = seconds(name, changes[name], ceiling)
        for name, value in checked.items():
            setattr(self, name, value)
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def seconds(name: str, value, ceiling: float) -> float:
    """``value`` as a number of seconds between 0 and ``ceiling``, or a one-line TypeError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= ceiling:
        raise TypeError(f"{name} must be a number of seconds from 0 to {ceiling:.0f}")
    return float(value)
