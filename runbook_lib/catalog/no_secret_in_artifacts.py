"""``no-secret-in-artifacts``: the run's leak guard (declared here; the runner judges it).

The runner scans every artifact of a run folder for the values the run handled (by keyed
fingerprint) and for anything the secret scanner detects, and builds this check with
:func:`runbook_lib.catalog.make_check` from its verdict.
"""

from __future__ import annotations

from . import CheckSpec

SPEC = CheckSpec(
    id="no-secret-in-artifacts",
    title="No secret value in any artifact of the run",
    proves=("No file of the run folder (notebooks, HTML, JSON, CSV, charts, ledger) holds a value the run handled "
            "(matched by keyed fingerprint) or anything the secret scanner detects."),
    controls=("IA-5", "SC-28"),
    phases=("baseline", "validation", "backout", "closeout"),
    evidence_file="checks/99_leak_guard.json",
    permissions=(),
)
