"""``no-secrets-in-code``: no secret in the code packages and layers (baseline and validation).

The baseline judges the audit's scan of every package and layer it read; validation scans
the migrated function's deployed package again (downloaded from ``GetFunction``'s
``Code.Location``) and each of its layers. A secret in a layer only WARNs in validation:
layers are shared, and migrating one is a change of its own. A finding in an unmodified
file of an installed dependency (its ``dist-info/RECORD`` hash still matches, or its
``node_modules/<package>``) is someone else's published code: a WARN naming the package and
version, never a FAIL; a dependency file changed after installation counts as the package's own.
"""

from __future__ import annotations

from ..wording import counted
from . import FAIL, PASS, SKIP, WARN, CheckSpec, Verdict
from .common import listed, unavailable, where_list
from .no_secrets_in_environment import gap_note

SPEC = CheckSpec(
    id="no-secrets-in-code",
    title="No secret in the code package or layers",
    proves=("The secret scanner finds no secret in the code packages and layers Lambda serves "
            "(GetFunction and GetLayerVersion download locations), every file of them read."),
    controls=("IA-5", "IA-5(7)"),
    phases=("baseline", "validation"),
    evidence_file="findings.json",
    permissions=("lambda:GetFunction", "lambda:GetLayerVersion"),
)


def judge_baseline(result) -> Verdict:
    """The audit's package and layer findings, and whether everything could be read."""
    if not (result.include_code or result.include_layers):
        return Verdict(SKIP, "include_code and include_layers are False: packages were not read", evidence_file="")
    found = [f for f in result.finding_records if f["location"] in ("code", "layer")]
    evidence = {"findings": len(found), "functions": where_list(found, limit=50)}
    note = gap_note(result)
    third = [f for f in getattr(result, "third_party_records", []) if f["location"] in ("code", "layer")]
    if third:
        evidence["third_party"] = len(third)
    if found:
        functions = len({(f.get("account"), f.get("region"), f["function"]) for f in found})
        return Verdict(FAIL, f"{counted(len(found), 'secret')} in code packages and layers of "
                             f"{counted(functions, 'function')}: "
                             f"{listed(where_list(found, limit=len(found)), limit=6)}{note}", evidence)
    if third:
        return Verdict(WARN, f"{len(third)} finding(s) only in unmodified third-party files: "
                             f"{third_party_list(third)}{note}", evidence)
    if note:
        return Verdict(WARN, "no secret found in the code packages and layers that could be read" + note, evidence)
    return Verdict(PASS, f"{counted(result.downloads, 'package and layer', 'packages and layers')} of "
                         f"{counted(len(result.functions), 'function')} "
                         "scanned: no secret", evidence)


def third_party_list(rows: list[dict]) -> str:
    """``package version (path:line)`` per finding, a few of them."""
    return listed((f"{r['package']} {r['package_version']} ({r.get('where') or _where(r)})" for r in rows), 4, ", ")


def _where(row: dict) -> str:
    return f"{row.get('path', '')}:{row['line']}" if row.get("line") else str(row.get("path", ""))


def judge_validation(ev) -> Verdict:
    """The deployed package (FAIL on a finding) and its layers (WARN on a finding or an unreadable layer)."""
    evidence: dict = {"code_sha256": ev.config.get("CodeSha256", ""),
                      "package_type": ev.config.get("PackageType", "Zip")}
    if ev.snapshot_code_sha256:
        evidence["code_changed_since_snapshot"] = ev.snapshot_code_sha256 != evidence["code_sha256"]
    missing = unavailable(ev, "function", "code", evidence_file="")
    if missing:
        return Verdict(missing.status, missing.reason, evidence, evidence_file="")
    if ev.code is None:
        return Verdict(SKIP, "the function is a container image: scan the image in its registry "
                             "(no zip package to download)", evidence, evidence_file="")
    evidence.update(ev.code)
    evidence["layers"] = ev.layers
    if ev.code["findings"]:
        paths = sorted({f["path"] or "" for f in ev.code["findings"]})
        return Verdict(FAIL, f"{len(ev.code['findings'])} finding(s) in the deployed package: {', '.join(paths)}",
                       evidence, evidence_file="")
    warnings = []
    dirty = [layer["layer"] for layer in ev.layers if layer.get("findings")]
    if dirty:
        warnings.append(f"the function's own package is clean, but layer(s) {', '.join(dirty)} hold findings: "
                        "layers are shared, migrate them in their own change")
    third = list(ev.code.get("third_party") or []) + [t for layer in ev.layers for t in layer.get("third_party") or []]
    if third:
        warnings.append(f"{len(third)} finding(s) in unmodified third-party files, not the team's code: "
                        + third_party_list(third))
    unread = [f"{layer['layer']} ({layer['error']})" for layer in ev.layers if "error" in layer]
    if unread:
        warnings.append(f"layer(s) not read: {listed(unread, 3)}")
    if ev.code["skipped"]:
        warnings.append(f"{len(ev.code['skipped'])} file(s) of the package were not scanned: "
                        + listed((s.get("path", "") for s in ev.code["skipped"]), 3, ", "))
    if warnings:
        return Verdict(WARN, "; ".join(warnings), evidence, evidence_file="")
    return Verdict(PASS, f"{ev.code['files_scanned']} file(s) of the deployed package and {len(ev.layers)} layer(s) "
                         "scanned: no secret", evidence, evidence_file="")
