"""The check catalog: every check the runbook can produce, declared once.

A check is declared by a :class:`CheckSpec` (id, title, what a PASS proves, the NIST SP
800-53 controls it supports, the phases it runs in, its evidence file and the IAM
permissions its evidence needs) in a module of this package, Prowler-style: one check per
module, its metadata as data beside the function that judges it. The function takes the
evidence its family collected (the audit's result, validation's evidence, a step's state)
and returns a :class:`Verdict`; :func:`make_check` turns a verdict into the
:class:`~runbook_lib.checks.Check` record a notebook writes, with the title and controls
taken from the spec, so no check can carry metadata of its own.

The catalog finds its modules itself (every module of this package that defines ``SPEC``
or ``SPECS``); an id declared twice is an error at load.

Examples
--------
>>> from runbook_lib import catalog
>>> catalog.spec("least-privilege").controls                           # doctest: +SKIP
('AC-6',)
>>> catalog.make_check("least-privilege", "validation",
...                    catalog.Verdict(catalog.FAIL, "the role can read another secret"),
...                    notebook="03_functional_validation")             # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any

from ..checks import CONTROLS, FAIL, PASS, PHASES, SKIP, STATUSES, WARN, Check

__all__ = ["CheckSpec", "Verdict", "spec", "specs", "make_check", "PASS", "FAIL", "WARN", "SKIP"]


@dataclass(frozen=True)
class CheckSpec:
    """What one check is: declared once, used by every phase that runs it.

    Attributes
    ----------
    id:
        Stable id (``least-privilege``); the key of ``checks.json`` rows.
    title:
        One line, what is checked.
    proves:
        One or two sentences: what a PASS proves, and from which record (for auditors and docs).
    controls:
        NIST SP 800-53 Rev. 5 controls it supports (keys of :data:`runbook_lib.checks.CONTROLS`).
    phases:
        The phases it may run in (``baseline``, ``change``, ``validation``, ``backout``, ``closeout``).
    evidence_file:
        The run-folder file its evidence is written to; empty: the notebook itself.
    permissions:
        IAM actions the evidence needs (the operator policies in ``policies/`` must grant them).
    """

    id: str
    title: str
    proves: str
    controls: tuple[str, ...]
    phases: tuple[str, ...]
    evidence_file: str = ""
    permissions: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = [c for c in self.controls if c not in CONTROLS]
        bad_phases = [p for p in self.phases if p not in PHASES]
        if not self.id or not self.title or not self.proves or not self.controls or not self.phases:
            raise ValueError(f"check spec {self.id!r}: id, title, proves, controls and phases are required")
        if unknown or bad_phases:
            raise ValueError(f"check spec {self.id}: unknown controls {unknown} or phases {bad_phases}")


@dataclass(frozen=True)
class Verdict:
    """A check function's answer: status, the reason (a one-line evidence summary for a PASS), evidence.

    A FAIL, WARN or SKIP needs its reason; a PASS should say what proved it (who, what, how many,
    from which record).
    """

    status: str
    reason: str = ""
    evidence: dict = field(default_factory=dict)
    evidence_file: str | None = None  # overrides the spec's when the evidence landed elsewhere

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"verdict status {self.status!r} not in {STATUSES}")
        if self.status != PASS and not self.reason:
            raise ValueError(f"a {self.status} verdict needs a reason")


_SPECS: dict[str, CheckSpec] = {}


def _load() -> dict[str, CheckSpec]:
    if _SPECS:
        return _SPECS
    found: dict[str, tuple[CheckSpec, str]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        declared = list(getattr(module, "SPECS", ())) + ([module.SPEC] if hasattr(module, "SPEC") else [])
        for item in declared:
            if item.id in found:
                raise ValueError(f"check {item.id} is declared twice: in {found[item.id][1]} and {info.name}")
            found[item.id] = (item, info.name)
    _SPECS.update({check_id: item for check_id, (item, _) in found.items()})
    return _SPECS


def specs() -> list[CheckSpec]:
    """Every declared check, sorted by id."""
    return [_load()[k] for k in sorted(_load())]


def spec(check_id: str) -> CheckSpec:
    """The spec of ``check_id``; an undeclared id is a programming error (``KeyError`` naming it)."""
    try:
        return _load()[check_id]
    except KeyError:
        raise KeyError(f"check {check_id!r} is not in the catalog (runbook_lib/catalog/)") from None


def make_check(check_id: str, phase: str, verdict: Verdict, notebook: str = "",
               evidence: dict[str, Any] | None = None) -> Check:
    """The :class:`Check` record of ``verdict`` for ``check_id`` in ``phase``.

    ``evidence`` is merged under the verdict's own (e.g. the target's name, added by the family).
    """
    declared = spec(check_id)
    if phase not in declared.phases:
        raise ValueError(f"check {check_id} does not run in phase {phase} (declared: {declared.phases})")
    file = declared.evidence_file if verdict.evidence_file is None else verdict.evidence_file
    return Check(id=check_id, title=declared.title, phase=phase, status=verdict.status, reason=verdict.reason,
                 evidence={**(evidence or {}), **verdict.evidence}, controls=list(declared.controls),
                 notebook=notebook, evidence_file=file)
