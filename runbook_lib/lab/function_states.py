"""Lambda function states in the lab: ``Pending`` after create, ``InProgress`` after an update.

moto makes every function ``Active`` with ``LastUpdateStatus: Successful`` at once, so a
client's waiters never wait. Lambda takes a moment, and in that moment it refuses what
AWS documents it refuses:

- after CreateFunction the function is ``Pending`` (``StateReasonCode: Creating``):
  Invoke, UpdateFunctionCode, UpdateFunctionConfiguration and PublishVersion answer
  ``ResourceConflictException`` ("...currently in the following state: Pending");
- after UpdateFunctionCode or UpdateFunctionConfiguration ``LastUpdateStatus`` is
  ``InProgress``: further updates and PublishVersion answer ``ResourceConflictException``
  ("An update is in progress for resource: <arn>") while Invoke still runs the previous
  code and configuration.

Both last :attr:`FunctionStates.seconds` (``/_lab/config`` ``function_state_seconds``,
``runbook lab --function-state-seconds``; the setting in force when the state is read, so
lowering it ends what is in transition). :func:`install` makes moto's configuration
answers (GetFunction, GetFunctionConfiguration, ListFunctions, the create and update
responses) show these states.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

#: long enough that a client's first poll right after a change sees the state (a loopback poll takes
#: milliseconds), short because every update of a cycle pays it; tests that watch the states set more
DEFAULT_SECONDS = 0.1
MAX_SECONDS = 60.0
#: Operations refused while a function is Pending / while an update is in progress.
BLOCKED_WHILE_PENDING = ("Invoke", "UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishVersion")
BLOCKED_WHILE_UPDATING = ("UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishVersion")
_CONFLICT_PREFIX = "The operation cannot be performed at this time."


@dataclass
class _Transition:
    kind: str  # "create" or "update"
    started: float  # time.monotonic(); it lasts the seconds in force when it is read
    arn: str
    previous: Any = None  # the FunctionSpec Invoke runs while an update is in progress


def function_name_of(name_or_arn: str) -> str:
    """``name``, ``name:qualifier``, ``123:function:name`` or a full ARN -> ``name``."""
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:") and len(parts) >= 7:
        return parts[6]
    if len(parts) >= 3 and parts[1] == "function":
        return parts[2]
    return parts[0]


class FunctionStates:
    """The functions in transition, keyed by ``(account, region, function name)``."""

    def __init__(self, seconds: float = DEFAULT_SECONDS):
        self.seconds = validate_seconds(seconds)
        self._transitions: dict[tuple, _Transition] = {}
        self._lock = threading.Lock()

    def created(self, key: tuple, arn: str) -> _Transition | None:
        """``key`` is Pending from now; returns the transition it replaced (for :meth:`restore`)."""
        return self._start(key, _Transition("create", time.monotonic(), arn))

    def updated(self, key: tuple, arn: str, previous: Any) -> _Transition | None:
        """``key`` is InProgress from now, Invoke running ``previous``; returns what it replaced."""
        return self._start(key, _Transition("update", time.monotonic(), arn, previous))

    def restore(self, key: tuple, prior: _Transition | None) -> None:
        """Undo :meth:`created`/:meth:`updated` (the call they were started for failed)."""
        with self._lock:
            if prior is None:
                self._transitions.pop(key, None)
            else:
                self._transitions[key] = prior

    def deleted(self, key: tuple) -> None:
        with self._lock:
            self._transitions.pop(key, None)

    def _start(self, key: tuple, transition: _Transition) -> _Transition | None:
        with self._lock:
            prior = self._transitions.pop(key, None)
            if self.seconds > 0:
                self._transitions[key] = transition
            return prior

    def current(self, key: tuple) -> _Transition | None:
        with self._lock:
            transition = self._transitions.get(key)
            if transition is not None and time.monotonic() >= transition.started + self.seconds:
                del self._transitions[key]
                return None
            return transition

    def conflict(self, key: tuple, operation: str) -> str | None:
        """AWS's ResourceConflictException message for ``operation`` now, or None."""
        transition = self.current(key)
        if transition is None:
            return None
        if transition.kind == "create" and operation in BLOCKED_WHILE_PENDING:
            return f"{_CONFLICT_PREFIX} The function is currently in the following state: Pending"
        if transition.kind == "update" and operation in BLOCKED_WHILE_UPDATING:
            return f"{_CONFLICT_PREFIX} An update is in progress for resource: {transition.arn}"
        return None

    def serving(self, key: tuple) -> Any:
        """The previous FunctionSpec while an update is in progress (what Invoke runs), else None."""
        transition = self.current(key)
        return transition.previous if transition is not None and transition.kind == "update" else None

    def overrides(self, key: tuple, on_create: bool) -> dict:
        """The configuration fields Lambda shows for ``key`` now (empty when settled)."""
        transition = self.current(key)
        if transition is None:
            return {}
        if transition.kind == "create":
            fields = {"State": "Pending", "StateReason": "The function is being created.",
                      "StateReasonCode": "Creating"}
            if not on_create:
                fields.update(_in_progress())
            return fields
        return {"State": "Active", **_in_progress()}


def _in_progress() -> dict:
    # the reason text Lambda gives for an update too
    return {"LastUpdateStatus": "InProgress", "LastUpdateStatusReason": "The function is being created.",
            "LastUpdateStatusReasonCode": "Creating"}


def validate_seconds(value: Any) -> float:
    """A transition time in seconds, 0 to :data:`MAX_SECONDS`; TypeError/ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("function_state_seconds must be a number of seconds")
    if not 0 <= value <= MAX_SECONDS:
        raise ValueError(f"function_state_seconds must be between 0 and {MAX_SECONDS:.0f}")
    return float(value)


def seconds_argument(text: str) -> float:
    """``--function-state-seconds`` as argparse reads it (one-line error when out of range)."""
    import argparse

    try:
        return validate_seconds(float(text))
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


_installed: list[FunctionStates] = []


def install(states: FunctionStates) -> None:
    """Make moto's function configurations show ``states`` (in the lab process only)."""
    from moto.awslambda.models import LambdaFunction

    _installed[:] = [states]
    original = LambdaFunction.get_configuration
    if getattr(original, "_lab_states", False):
        return

    def get_configuration(self, on_create: bool = False) -> dict:
        config = original(self, on_create)
        if _installed and str(self.version) == "$LATEST":
            config.update(_installed[0].overrides((self.account_id, self.region, self.function_name),
                                                  on_create))
        return config

    get_configuration._lab_states = True
    LambdaFunction.get_configuration = get_configuration
