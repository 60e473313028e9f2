"""Check records: the unit of evidence every notebook produces.

A :class:`Check` says what was checked, whether it held (PASS/FAIL/WARN/SKIP, with a
reason for anything but PASS), the small JSON evidence it rests on, and the NIST 800-53
controls it supports. A notebook collects its checks in a :class:`CheckLog`, which
writes ``checks/<notebook>.json`` in the run folder at every addition; the runner merges
them into ``checks.json``.

Examples
--------
>>> log = CheckLog(run_dir, notebook="03_functional_validation", phase="validation")  # doctest: +SKIP
>>> log.extend(validation.run_checks())   # checks built from the catalog, phase validation  # doctest: +SKIP
>>> log.put(catalog.make_check("no-secret-in-artifacts", "validation", verdict))           # doctest: +SKIP

Checks are built by :func:`runbook_lib.catalog.make_check`, which takes their title and
controls from the catalog: the log has no way to give a check metadata of its own.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable

from .render import escaped_style, readable_table

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
STATUSES = (PASS, FAIL, WARN, SKIP)
PHASES = ("baseline", "change", "validation", "backout", "closeout")

#: NIST SP 800-53 Rev. 5 controls the runbook's checks support, with their titles.
CONTROLS = {
    "AC-6": "Least Privilege",
    "AU-2": "Event Logging",
    "AU-12": "Audit Record Generation",
    "CM-3": "Configuration Change Control",
    "CP-10": "System Recovery and Reconstitution",
    "IA-5": "Authenticator Management",
    "IA-5(1)": "Authenticator Management | Password-based Authentication",
    "IA-5(7)": "Authenticator Management | No Embedded Unencrypted Static Authenticators",
    "IA-7": "Cryptographic Module Authentication",
    "SC-12": "Cryptographic Key Establishment and Management",
    "SC-28": "Protection of Information at Rest",
    "SI-4": "System Monitoring",
}

STATUS_COLOURS = {PASS: "#d4edda", FAIL: "#f8d7da", WARN: "#fff3cd", SKIP: "#e2e3e5"}


@dataclass
class Check:
    id: str
    title: str
    phase: str
    status: str
    reason: str = ""
    evidence: dict = field(default_factory=dict)
    controls: list = field(default_factory=list)
    notebook: str = ""
    evidence_file: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"check {self.id}: status {self.status!r} not in {STATUSES}")
        if self.phase not in PHASES:
            raise ValueError(f"check {self.id}: phase {self.phase!r} not in {PHASES}")
        unknown = [c for c in self.controls if c not in CONTROLS]
        if unknown:
            raise ValueError(f"check {self.id}: unknown controls {unknown}")
        if self.status != PASS and not self.reason:
            raise ValueError(f"check {self.id}: a {self.status} needs a reason")


class CheckLog:
    """The checks of one notebook, written to ``run_dir/checks/<notebook>.json`` as they come."""

    def __init__(self, run_dir: str | Path, notebook: str, phase: str):
        self.path = Path(run_dir) / "checks" / f"{notebook}.json"
        self.notebook = notebook
        self.phase = phase
        self.checks: list[Check] = []
        if self.path.exists():  # a re-run of the notebook replaces its own checks
            self.path.unlink()

    def put(self, check: Check) -> Check:
        """Keep ``check`` as it is (a re-run replaces the check of the same id); its phase must be this log's.

        A check of another phase is refused (``ValueError``): a notebook's file holds the checks of
        its phase only, so a baseline check can never be shown as a validation one.
        """
        if check.phase != self.phase:
            raise ValueError(f"check {check.id} is of phase {check.phase}, this log ({self.notebook}) holds "
                             f"phase {self.phase}")
        if not check.notebook:
            check = replace(check, notebook=self.notebook)
        self.checks = [c for c in self.checks if c.id != check.id] + [check]
        self._save()
        return check

    def extend(self, checks: Iterable[Check]) -> None:
        """:meth:`put` each check: title, controls, phase and evidence as they were built (catalog)."""
        for check in checks:
            self.put(check)

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps([asdict(c) for c in self.checks], indent=2, default=str) + "\n")

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def counts(self) -> dict:
        return {s: sum(1 for c in self.checks if c.status == s) for s in STATUSES}

    def frame(self):
        """The checks as a pandas table coloured by status (for display in a notebook)."""
        return checks_table(self.checks)


def load_checks(run_dir: str | Path) -> list[Check]:
    """Every check written by every notebook of a run, in notebook order."""
    out = []
    for path in sorted((Path(run_dir) / "checks").glob("*.json")):
        out.extend(Check(**c) for c in json.loads(path.read_text()))
    return out


def checks_table(checks: Iterable[Check]):
    """The checks as an HTML-escaped pandas ``Styler``, the status cell coloured, every row with its evidence line.

    ``reason and evidence`` is :func:`~runbook_lib.check_summary.evidence_summary`: the reason of a
    FAIL/WARN/SKIP, the evidence summary of a PASS (with how it was proven), never blank, never cut.
    """
    import pandas as pd

    from .check_summary import evidence_summary

    rows = [{"check": c.id, "status": c.status, "title": c.title,
             "reason and evidence": evidence_summary(c), "controls": ", ".join(c.controls)} for c in checks]
    frame = pd.DataFrame(rows, columns=["check", "status", "title", "reason and evidence", "controls"])
    # a reason quotes names from AWS (zip and layer members): a Styler does not escape them itself
    return readable_table(frame).apply(
        lambda col: [f"background-color: {STATUS_COLOURS.get(v, '')}" for v in col], subset=["status"])


def controls_table(checks: Iterable[Check]):
    """NIST 800-53 control -> the checks that support it -> worst status."""
    import pandas as pd

    order = {FAIL: 0, WARN: 1, PASS: 2, SKIP: 3}
    by_control: dict[str, list[Check]] = {}
    for c in checks:
        for control in c.controls:
            by_control.setdefault(control, []).append(c)
    rows = []
    for control in sorted(by_control, key=lambda k: list(CONTROLS).index(k)):
        group = by_control[control]
        worst = min((c.status for c in group), key=lambda s: order[s])
        rows.append({"control": control, "title": CONTROLS[control],
                     "checks": ", ".join(c.id for c in group), "status": worst})
    frame = pd.DataFrame(rows, columns=["control", "title", "checks", "status"])
    return escaped_style(frame).apply(
        lambda col: [f"background-color: {STATUS_COLOURS.get(v, '')}" for v in col],
        subset=["status"]).hide(axis="index")
