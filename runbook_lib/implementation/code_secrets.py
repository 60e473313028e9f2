"""Step ``code``: secrets hard-coded in the function's code, which only a code change removes.

The function's package (``$LATEST`` before the snapshot exists, the snapshot after) is scanned
with the run's scanner (its allowlist applies), and every finding is told apart as the team's
own code or an unmodified third-party file (the scanner's ``third_party``, :mod:`runbook_lib.scan_packages`).

* Strategy ``wrapper`` changes no code: each first-party finding is an **advisory** blocked
  row naming the file and line (a code change is needed: ``code_path``, strategy package);
  the other steps still apply and this step's check WARNs.
* Strategies ``package`` and ``reference`` replace the code: the new package is scanned as
  well, and a first-party finding in it blocks the change (nothing is deployed with a secret).

Findings in third-party files are listed with their package and version, never blocking.
This step changes nothing in AWS.
"""

from __future__ import annotations

from .. import functions
from ..exceptions import ChangeRefused, RunbookError
from ..steps import BLOCKED, NONE, Step


def _where(finding) -> str:
    return f"{finding.path}:{finding.line}" if finding.line else str(finding.path)


class CodeSecretsStep(Step):
    name = "code"
    permissions = ("lambda:GetFunction",)

    def __init__(self, ctx):
        self.c = ctx
        self._scans: dict[str, tuple[list, list]] = {}

    def scan(self, data: bytes) -> tuple[list, list]:
        """(first-party findings, [(finding, package)]) of a package, cached by its hash."""
        key = functions.code_sha256(data)
        if key not in self._scans:
            report = self.c.scanner.scan_zip(data)
            self._scans[key] = (report.findings, [(t.finding, t.package) for t in report.third_party])
        return self._scans[key]

    def _original(self) -> bytes:
        snap = self.c.snapshot()
        return functions.version_code(self.c.lam, self.c.function_name, snap.version if snap else "$LATEST")

    def left_in_code(self) -> tuple[list, list]:
        """What the function's code holds once the change is made (its own code if the strategy keeps it)."""
        if self.c.code is not None:
            return self.scan(self.c.code)
        if self.c.strategy.changes_code:
            return [], []  # the reference handler: the runbook's own file, no secret in it
        return self.scan(self._original())

    def plan(self):
        if self.c.scanner is None:
            return [self.c.row(self.name, self.c.function_name, BLOCKED, "the secret scanner is not installed: the "
                               "code cannot be checked for hard-coded secrets")]
        try:
            before_first, _ = self.scan(self._original())
        except RunbookError as exc:
            return [self.c.row(self.name, self.c.function_name, BLOCKED, f"the code could not be read: {exc.message}")]
        first, third = self.left_in_code()
        rows = [self._row(f) for f in first]
        if self.c.strategy.changes_code:
            rows += [self.c.row(self.name, _where(f), NONE, f"{f.title}: goes with the old code (strategy "
                                f"{self.c.strategy.name} replaces it)") for f in before_first]
        rows += [self.c.row(self.name, _where(f), NONE, f"{f.title} in third-party {package.label()}: a WARN in "
                            "validation, not this change's") for f, package in third]
        return rows or [self.c.row(self.name, self.c.function_name, NONE, "no secret in the function's own code")]

    def _row(self, finding):
        if self.c.code is not None:
            return self.c.row(self.name, _where(finding), BLOCKED, f"{finding.title} ({finding.redacted}) is still in "
                              "the code_path package: remove it before deploying the package")
        return self.c.row(self.name, _where(finding), BLOCKED, f"{finding.title} ({finding.redacted}) hard-coded in "
                          f"the code: strategy {self.c.strategy.name} changes no code, so it needs a code change "
                          "(code_path with strategy package); the other steps still apply", advisory=True)

    def apply(self):
        """Nothing to change in AWS: a code change is the code's owner's."""

    def verify(self):
        live = functions.version_code(self.c.lam, self.c.function_name, "$LATEST")
        first, third = self.scan(live)
        if first and self.c.strategy.changes_code:
            raise ChangeRefused(self.c.function_name, "the deployed code holds "
                                + ", ".join(f"{f.title} at {_where(f)}" for f in first))
        parts = []
        if first:
            parts.append("left in the code for its owner (a code change): "
                         + ", ".join(f"{f.title} at {_where(f)}" for f in first))
        if third:
            parts.append("in third-party files: " + ", ".join(f"{f.title} at {_where(f)} ({p.label()})"
                                                              for f, p in third))
        return "; ".join(parts) or "no secret in the deployed code"
