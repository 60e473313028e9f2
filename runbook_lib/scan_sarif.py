"""``runbook scan --format sarif``: findings as SARIF 2.1.0, the format GitHub code scanning reads.

One run of one tool: ``tool.driver.rules`` is the scanner's whole rule catalogue
(:data:`runbook_lib.rules.RULES`) with help text, each result names its rule, a level, where
it is (file and ``region.startLine``; an archive member or an environment variable as a
logical location) and ``partialFingerprints`` holding the finding's keyed fingerprint, so a
code-scanning alert keeps its identity across runs when the key is stable
(``--fingerprint-key-file``). A result carries the redacted preview, never the value; paths
that were skipped are tool notifications, so a partial scan says so.

Examples
--------
>>> log = sarif_log([], {"skipped": []}, tool_version="0.1.0")
>>> log["version"], log["runs"][0]["tool"]["driver"]["name"]
('2.1.0', 'runbook-scan')
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import quote

from . import rules as R
from .scan_results import Finding

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "runbook-scan"
#: The key GitHub reads a result's stable identity from (``partialFingerprints``).
FINGERPRINT_KEY = "secretFingerprint/v1"

#: GitHub's ``security-severity`` (CVSS-like, 0-10): AWS credentials and private keys are critical;
#: a random-looking value under a neutral name is a judgement, not a format, hence medium.
SEVERITY = {"aws-access-key-id": "9.5", "aws-secret-access-key": "9.5", "aws-session-token": "9.0",
            "private-key": "9.0", "high-entropy-env-value": "5.5"}
DEFAULT_SEVERITY = "8.0"

HELP = {
    R.REMOVE_USE_ROLE: ("Delete the credential from the code or configuration: a Lambda function gets AWS access "
                        "from its execution role's temporary credentials. Then deactivate and rotate the exposed "
                        "key (`runbook closeout`)."),
    R.MOVE_TO_SECRETS_MANAGER: ("Store the value in AWS Secrets Manager, grant the function's execution role "
                                "secretsmanager:GetSecretValue on that one secret, and read it at run time; then "
                                "rotate the exposed value at its source, since it is in the history."),
}


def rule_descriptor(rule: R.Rule) -> dict:
    """A ``reportingDescriptor`` for one rule: id, description, help text, default level, severity."""
    help_text = f"{rule.title} found. {HELP[rule.remediation]}"
    return {
        "id": rule.id,
        "name": "".join(word.capitalize() for word in rule.id.split("-")),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": f"{rule.title}: {R.REMEDIATION_TEXT[rule.remediation]}."},
        "help": {"text": help_text,
                 "markdown": f"**{rule.title}** found.\n\n{HELP[rule.remediation]}\n\n"
                             f"The finding shows a redacted preview and a keyed fingerprint, never the value."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["security", "secret", rule.remediation],
                       "security-severity": SEVERITY.get(rule.id, DEFAULT_SEVERITY), "precision": "high"},
    }


def artifact_uri(path: str) -> str:
    """A file path as a SARIF URI: relative paths as they are (``/``-separated, escaped), absolute as file://."""
    if Path(path).is_absolute():
        return Path(path).as_uri()
    return quote(PurePosixPath(Path(path).as_posix()).as_posix(), safe="/")


def _location(finding: Finding, env_source: str) -> dict:
    if finding.variable is not None:
        name = finding.variable + (f".{finding.json_key}" if finding.json_key else "")
        location = {"logicalLocations": [{"name": finding.variable, "fullyQualifiedName": name,
                                          "kind": "variable"}]}
        if env_source:
            location["physicalLocation"] = {"artifactLocation": {"uri": artifact_uri(env_source)}}
        return location
    path = finding.path or ""
    if "!" in path:  # a member of a zip archive: the archive is the artifact, the member its logical place
        archive, member = path.split("!", 1)
        return {"physicalLocation": {"artifactLocation": {"uri": artifact_uri(archive)}},
                "logicalLocations": [{"name": member, "fullyQualifiedName": f"{member}:{finding.line}",
                                      "kind": "member"}]}
    return {"physicalLocation": {"artifactLocation": {"uri": artifact_uri(path)},
                                 "region": {"startLine": finding.line or 1}}}


def result(finding: Finding, rule_index: dict[str, int], env_source: str = "") -> dict:
    """One SARIF ``result``: rule, level, message with the redacted preview, location, fingerprint."""
    where = finding.location if finding.path and "!" in finding.path else ""
    message = (f"{finding.title} ({finding.redacted}){' in ' + where if where else ''}: "
               f"{R.REMEDIATION_TEXT.get(finding.remediation, finding.remediation)}")
    return {"ruleId": finding.rule, "ruleIndex": rule_index[finding.rule], "level": "error",
            "message": {"text": message}, "locations": [_location(finding, env_source)],
            "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
            "properties": {"redacted": finding.redacted, "remediation": finding.remediation}}


def sarif_log(findings: list[Finding], summary: dict, tool_version: str, env_source: str = "") -> dict:
    """The whole SARIF log of one scan (``summary``: what :func:`runbook_lib.scan_cli.run_scan` counted)."""
    rules = list(R.RULES.values())
    rule_index = {rule.id: i for i, rule in enumerate(rules)}
    notifications = [{"level": "note", "message": {"text": f"skipped {skip['path']}: {skip['reason']}"},
                      "locations": [{"physicalLocation": {"artifactLocation": {"uri": artifact_uri(skip["path"])}}}]}
                     for skip in summary.get("skipped", [])]
    invocation = {"executionSuccessful": True, "toolExecutionNotifications": notifications}
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {"name": TOOL_NAME, "version": tool_version, "semanticVersion": tool_version,
                                "rules": [rule_descriptor(r) for r in rules]}},
            "invocations": [invocation],
            "results": [result(f, rule_index, env_source) for f in findings],
            "columnKind": "unicodeCodePoints",
        }],
    }
