"""One change at a time per function: the ledger's lock and a lock tag on the function.

Both hold the same owner token, which says who holds them and lets anyone tell whether
that holder is still alive: what it does, its run folder, its host, its process id and
that process's start time (a reused pid is not the holder)::

    apply run=20261201T100000Z-lab host=ci-7 pid=4242 started=1764583200.51

Lambda tags have no compare-and-set: two runs that both read "free" both write, and the
last write wins. So the tag is written, left :data:`LOCK_SETTLE_SECONDS` to settle, and
read back; the run whose tag was overwritten refuses before changing anything. The embedded
lab answers on loopback and is consistent at once, so there the window only has to cover a
competitor's read-then-write, one local round trip: :data:`LAB_LOCK_SETTLE_SECONDS`.

A holder that died (a killed kernel) leaves both locks behind. :func:`unlock` releases
them after checking that no live process holds them; a holder on another host cannot be
checked from here, so releasing its lock needs ``force``. Refusals name the holder and
say which of the two applies (wait for it, or ``runbook unlock RUN_DIR``).

Examples
--------
>>> with holding(ctx, "apply"):                      # doctest: +SKIP
...     run the steps
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Iterator

import psutil

from .. import functions
from ..exceptions import AwsCallError, ChangeRefused, InputError
from ..session import aws_call

LOCK_TAG = "lambda-secrets-runbook-lock"
#: Seconds between writing the lock tag and reading it back (see :func:`acquire_function_lock`).
LOCK_SETTLE_SECONDS = 1.0
#: The same on the embedded lab (``target == "lab"``).
LAB_LOCK_SETTLE_SECONDS = 0.2
PERMISSIONS = ("lambda:ListTags", "lambda:TagResource", "lambda:UntagResource")


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: the change, its run folder, and the process (host, pid, start time)."""

    what: str
    run: str
    host: str
    pid: int
    started: float

    @classmethod
    def this_process(cls, what: str, run: str) -> "LockOwner":
        return cls(_safe(what), _safe(run) or "-", _safe(socket.gethostname()) or "-", os.getpid(),
                   round(psutil.Process().create_time(), 2))

    def token(self) -> str:
        return f"{self.what} run={self.run} host={self.host} pid={self.pid} started={self.started:.2f}"

    @classmethod
    def parse(cls, token: str | None) -> "LockOwner | None":
        """The owner a token names; None for a token this runbook did not write (or an older format)."""
        what, _, rest = (token or "").partition(" ")
        fields = dict(part.partition("=")[::2] for part in rest.split(" ") if "=" in part)
        try:
            return cls(what, fields["run"], fields["host"], int(fields["pid"]), float(fields["started"]))
        except (KeyError, ValueError):
            return None

    def alive(self) -> bool | None:
        """Is the holding process still running? None: it runs on another host, which cannot be asked."""
        if self.host != _safe(socket.gethostname()):
            return None
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            # the start time tells the holder from a later process that reuses its pid
            return abs(process.create_time() - self.started) <= 1.0
        except psutil.NoSuchProcess:
            return False

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started))
        return f"{self.what} of run {self.run} (pid {self.pid} on host {self.host}, started {started})"


#: Characters a Lambda tag value may hold besides letters and digits (space and ``=`` separate fields).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:/+\-@]")


def _safe(text: str) -> str:
    return _UNSAFE.sub("-", str(text))[:60]


def holder_note(token: str, what: str) -> str:
    """One clause on a lock held by ``token``: who, and what the operator can do about it."""
    owner = LockOwner.parse(token)
    if owner is None:
        return (f"{what} is held by {token!r}, which this runbook cannot check: release it with "
                "`runbook unlock RUN_DIR --force` once you know that run is dead")
    state = owner.alive()
    if state:
        return f"{what} is held by {owner.describe()}, which is still running: wait for it to finish"
    if state is False:
        return (f"{what} is held by {owner.describe()}, whose process is gone: release it with "
                "`runbook unlock RUN_DIR`, then try again")
    return (f"{what} is held by {owner.describe()}, on another host: run `runbook unlock RUN_DIR` there, or "
            "`runbook unlock RUN_DIR --force` once you know that run is dead")


# -- the function's lock tag -------------------------------------------------------------------
def acquire_function_lock(lam, function_arn: str, owner: str, settle_seconds: float = LOCK_SETTLE_SECONDS) -> None:
    """Tag the function with ``owner`` as its lock holder; refuse when another run holds it."""
    name = function_arn.rsplit(":", 1)[-1]
    holder = functions.function_tags(lam, function_arn).get(LOCK_TAG)
    if holder and holder != owner:
        raise ChangeRefused(name, f"another runbook run is changing this function: "
                            + holder_note(holder, f"the lock tag {LOCK_TAG}"))
    with aws_call("TagResource", function_arn, "lambda:TagResource"):
        lam.tag_resource(Resource=function_arn, Tags={LOCK_TAG: owner})
    time.sleep(settle_seconds)  # let a concurrent run's write land before reading back
    holder = functions.function_tags(lam, function_arn).get(LOCK_TAG)
    if holder != owner:
        raise ChangeRefused(name, "another runbook run took the lock on this function at the same time: "
                            + holder_note(holder or "", f"the lock tag {LOCK_TAG}"))


def release_function_lock(lam, function_arn: str, owner: str) -> bool:
    """Remove the lock tag if ``owner`` holds it; True when it was removed."""
    try:
        if functions.function_tags(lam, function_arn).get(LOCK_TAG) == owner:
            with aws_call("UntagResource", function_arn, "lambda:UntagResource"):
                lam.untag_resource(Resource=function_arn, TagKeys=[LOCK_TAG])
            return True
    except (AwsCallError, InputError):
        pass  # a lock that cannot be released is explained to the next run that meets it
    return False


# -- both locks, for the length of a change ------------------------------------------------------
@contextlib.contextmanager
def holding(ctx, what: str) -> Iterator[str]:
    """Hold the ledger's lock and the function's lock tag (when the function exists) for a change."""
    owner = LockOwner.this_process(what, ctx.ledger.path.parent.name).token()
    holder = ctx.ledger.lock_holder()
    if holder and holder != owner:
        raise ChangeRefused(str(ctx.ledger.path), holder_note(holder, "the run's ledger lock"))
    ctx.ledger.acquire(owner)
    function_arn = None
    try:
        if ctx.function_exists():
            function_arn = ctx.function_arn
            settle = LAB_LOCK_SETTLE_SECONDS if ctx.target.name == "lab" else LOCK_SETTLE_SECONDS
            acquire_function_lock(ctx.lam, function_arn, owner, settle)
        yield owner
    finally:
        if function_arn and ctx.function_exists():
            release_function_lock(ctx.lam, function_arn, owner)
        ctx.ledger.release(owner)


# -- releasing a dead run's locks ------------------------------------------------------------------
def unlock(ledger, lam=None, function_name: str = "", force: bool = False) -> list[str]:
    """Release the locks of a run whose holder is gone; return what was done, one line each.

    The ledger's lock is checked first; the function's lock tag (with ``lam``) is released
    when it is held by the same owner, or by a dead holder of the same run folder. A live
    holder, or one on another host without ``force``, is refused before anything changes.
    """
    token = ledger.lock_holder()
    tag_token, function_arn = None, None
    if lam is not None and function_name and functions.exists(lam, function_name):
        function_arn = functions.get_configuration(lam, function_name)["FunctionArn"]
        tag_token = functions.function_tags(lam, function_arn).get(LOCK_TAG)
    run = _safe(ledger.path.parent.name)
    tag_owner = LockOwner.parse(tag_token)
    if tag_token and tag_token != token and not (tag_owner and tag_owner.run == run):
        tag_token = None  # another run folder's lock: not this run's to release
    for held, what, resource in ((token, "the run's ledger lock", str(ledger.path)),
                                 (tag_token, f"the lock tag {LOCK_TAG}", function_name)):
        if held:
            _refuse_unless_dead(held, what, resource, force)
    done = []
    if token:
        ledger.release(token)
        done.append(f"released the ledger lock of {_who(token)}")
    if tag_token and release_function_lock(lam, function_arn, tag_token):
        done.append(f"released the lock tag {LOCK_TAG} on {function_name} ({_who(tag_token)})")
    return done or ["no lock held by this run: nothing to release"]


def _refuse_unless_dead(token: str, what: str, resource: str, force: bool) -> None:
    """A live holder is never released; one that cannot be checked only with ``force``."""
    owner = LockOwner.parse(token)
    state = owner.alive() if owner else None
    if state or (state is None and not force):
        raise ChangeRefused(resource, holder_note(token, what) + "; nothing was released")


def _who(token: str) -> str:
    owner = LockOwner.parse(token)
    return owner.describe() if owner else repr(token)
