"""What a scan gives back: :class:`Finding` (one secret, never its value) and :class:`ScanReport`.

A finding names where a secret is, which rule matched and what to do about it; the value
itself is represented only by ``redacted`` (:func:`~runbook_lib.redaction.redact`) and a
keyed ``fingerprint`` (:class:`~runbook_lib.redaction.Fingerprinter`), so nothing that
holds a finding can read the value back.

Examples
--------
>>> f = Finding("jwt", "JSON Web Token", "move-to-secrets-manager", "eyJh…(120)", "fp:0", path="a.py", line=3)
>>> f.location, f.to_dict()["line"]
('a.py:3', 3)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Finding:
    """One secret found: where, which rule, what to do; never the value.

    ``path`` + ``line`` locate a finding in a file (``archive.zip!member/path`` inside a
    zip); ``variable`` names an environment variable (``json_key`` the key path when the
    variable held JSON). ``redacted`` and ``fingerprint`` stand for the value.
    """

    rule: str
    title: str
    remediation: str
    redacted: str
    fingerprint: str
    path: str | None = None
    line: int | None = None
    variable: str | None = None
    json_key: str | None = None

    def to_dict(self) -> dict:
        """``path`` + ``line`` (code) or ``variable`` (+ ``json_key``), then rule and value stand-ins."""
        order = ("path", "line", "variable", "json_key", "rule", "title", "remediation", "redacted", "fingerprint")
        data = asdict(self)
        return {k: data[k] for k in order if data[k] is not None}

    @property
    def location(self) -> str:
        if self.variable is not None:
            return self.variable + (f" ({self.json_key})" if self.json_key else "")
        return f"{self.path}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.title} [{self.rule}] {self.redacted} {self.fingerprint}"


@dataclass(frozen=True)
class ThirdPartyFinding:
    """A finding in a file of an installed dependency (``package``: a :class:`~runbook_lib.scan_packages.Package`)."""

    finding: Finding
    package: object

    def to_dict(self) -> dict:
        return {**self.finding.to_dict(), **self.package.to_dict()}

    def __str__(self) -> str:
        return f"{self.finding} in {self.package.label()}"


@dataclass
class ScanReport:
    """Findings of a file/directory/zip scan, what was read, and what was skipped and why.

    ``findings`` are in the package's own (first-party) files; ``third_party`` those in files of
    installed dependencies (:mod:`runbook_lib.scan_packages`), kept apart: someone else's code.
    """

    findings: list[Finding] = field(default_factory=list)
    files_scanned: int = 0
    bytes_scanned: int = 0
    skipped: list[dict] = field(default_factory=list)
    allowlisted: int = 0
    third_party: list[ThirdPartyFinding] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    def merge(self, other: "ScanReport") -> "ScanReport":
        self.findings.extend(other.findings)
        self.files_scanned += other.files_scanned
        self.bytes_scanned += other.bytes_scanned
        self.skipped.extend(other.skipped)
        self.allowlisted += other.allowlisted
        self.third_party.extend(other.third_party)
        return self
