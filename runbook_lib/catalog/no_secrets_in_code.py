"""``no-secrets-in-code``: no secret in the code packages and layers (baseline and validation).

The baseline judges the audit's scan of every package and layer it read; validation scans
the migrated function's deployed package again (downloaded from ``GetFunction``'s
``Code.Location``) and each of its layers. A secret in a layer only WARNs in validation:
layers are shared, and migrating one is a change of its own.
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
    if found:
        functions = len({(f.get("account"), f.get("region"), f["function"]) for f in found})
        return Verdict(FAIL, f"{counted(len(found), 'secret')} in code packages and layers of "
                             f"{counted(functions, 'function')}: "
                             f"{listed(where_list(found, limit=len(found)), limit=6)}{note}", evidence)
    if note:
        return Verdict(WARN, "no secret found in the code packages and layers that could be read" + note, evidence)
    return Verdict(PASS, f"{counted(result.downloads, 'package and layer', 'packages and layers')} of "
                         f"{counted(len(result.functions), 'function')} "
                         "scanned: no secret", evidence)


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
