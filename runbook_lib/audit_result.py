"""What an audit found: inventory, findings, coverage, the baseline checks, the evidence files.

:class:`AuditResult` is what :meth:`runbook_lib.audit.Audit.run` returns; its checks come
from the catalog (``no-secrets-in-environment``, ``no-secrets-in-code``,
``audit-coverage-complete``, judged by their modules in :mod:`runbook_lib.catalog`).
:func:`baseline_invocation` records the migrated function's response shape for the
validation's parity check.

Examples
--------
>>> result = Audit(target).run()                                  # doctest: +SKIP
>>> result.write(run_dir); result.record(ledger, "orders-api")    # doctest: +SKIP
>>> [c.status for c in result.checks()]                           # doctest: +SKIP
['FAIL', 'FAIL', 'PASS']
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import render
from .charts import CHART_FUNCTIONS, findings_chart  # noqa: F401 - CHART_FUNCTIONS: callers read it here
from .catalog import audit_coverage_complete, make_check, no_secrets_in_code, no_secrets_in_environment
from .checks import Check
from .exceptions import RunbookError
from .inventory import FAILING_STATUSES, LISTING_CALLS, WARNING_STATUSES, Gap
from .session import Target

FINDING_COLUMNS = ["account", "region", "function", "version", "location", "where", "layer",
                   "rule", "title", "remediation", "redacted", "fingerprint", "edge_candidate"]
INVENTORY_COLUMNS = ["account", "region", "function", "runtime", "package_type", "last_modified",
                     "role", "code_size", "layers", "versions", "aliases", "edge_candidate", "edge_reason",
                     "environment", "code", "layer_scan", "findings"]
COVERAGE_COLUMNS = ["account", "region", "subject", "call", "status", "reason", "permission"]


@dataclass
class FunctionScan:
    """What the audit saw of one function: an inventory row."""

    account: str
    region: str
    function: str
    arn: str
    runtime: str
    package_type: str
    last_modified: str
    role: str
    code_size: int
    layers: list
    versions: list
    aliases: dict = field(default_factory=dict)
    edge_reason: str = ""
    environment: str = "scanned"
    code: str = "not requested"
    layer_scan: str = "none"
    findings: int = 0

    def row(self) -> dict:
        out = asdict(self)
        out["layers"] = len(self.layers)
        out["versions"] = ", ".join(self.versions)
        out["aliases"] = ", ".join(f"{a}->{v}" for a, v in sorted(self.aliases.items()))
        out["edge_candidate"] = bool(self.edge_reason)
        return out


def version_key(version: str):
    return (0, 0) if version == "$LATEST" else (1, int(version) if version.isdigit() else 0)


def finding_row(finding, record: FunctionScan, location: str, version: str, layer: str = "") -> dict:
    # Copy named fields only: whatever else a Finding may carry stays in the scanner.
    where = (finding.variable if location == "environment"
             else f"{finding.path}:{finding.line}" if finding.line else str(finding.path))
    return {"account": record.account, "region": record.region, "function": record.function,
            "function_arn": record.arn, "version": version, "location": location, "where": where,
            "layer": layer, "variable": finding.variable or "", "path": finding.path or "",
            "line": finding.line or 0, "rule": finding.rule, "title": finding.title,
            "remediation": finding.remediation, "redacted": finding.redacted,
            "fingerprint": finding.fingerprint, "edge_candidate": False}



def third_party_row(item, record: FunctionScan, location: str, version: str, layer: str = "") -> dict:
    """A finding in an installed dependency's file: the finding's row plus the package that owns the file."""
    return {**finding_row(item.finding, record, location, version, layer), **item.package.to_dict()}


def complete(record: FunctionScan) -> bool:
    return (record.environment == "scanned" and record.code in ("scanned", "not requested")
            and record.layer_scan in ("scanned", "none"))


class AuditResult:
    """What an :class:`Audit` found: inventory, findings, coverage, checks and evidence files."""

    def __init__(self, functions: list[FunctionScan], findings: list[dict], gaps: list[Gap],
                 api_calls: dict, elapsed: float, regions_done: list, include_code: bool = True,
                 include_layers: bool = True, downloads: int = 0):
        self.functions = functions
        # rows of findings in unmodified dependency files (they name a package) are kept apart
        self.finding_records = [f for f in findings if "package" not in f]
        self.third_party_records = [f for f in findings if "package" in f]
        self.gaps = gaps
        self.api_calls = api_calls
        self.elapsed = elapsed
        self.regions_done = regions_done
        self.include_code = include_code
        self.include_layers = include_layers
        self.downloads = downloads

    # -- tables ----------------------------------------------------------------------------
    @property
    def inventory(self):
        import pandas as pd
        return pd.DataFrame([f.row() for f in self.functions], columns=INVENTORY_COLUMNS)

    @property
    def findings(self):
        import pandas as pd
        return pd.DataFrame(self.finding_records, columns=FINDING_COLUMNS)

    @property
    def coverage(self):
        """One summary row per account and region, then one row per gap (denied call, skip, error)."""
        import pandas as pd
        rows = []
        for account, region in self.regions_done:
            mine = [f for f in self.functions if (f.account, f.region) == (account, region)]
            full = sum(complete(f) for f in mine)
            skipped = sum(f.code == "not-scanned" for f in mine)
            rows.append({"account": account, "region": region, "subject": f"{len(mine)} functions",
                         "call": "ListFunctions", "status": "complete" if full == len(mine) else "partial",
                         "reason": f"seen {len(mine)}, fully scanned {full}, code not scanned {skipped}, "
                                   f"partial {len(mine) - full - skipped}", "permission": ""})
        rows += [g.to_dict() for g in self.gaps]
        return pd.DataFrame(rows, columns=COVERAGE_COLUMNS)

    @property
    def summary(self) -> dict:
        seen = len(self.functions)
        full = sum(complete(f) for f in self.functions)
        beyond = sum(n for op, n in self.api_calls.items() if op not in LISTING_CALLS)
        by_location: dict[str, int] = {}
        for f in self.finding_records:
            by_location[f["location"]] = by_location.get(f["location"], 0) + 1
        return {
            "accounts": len({a for a, _ in self.regions_done}), "regions": len(self.regions_done),
            "functions_seen": seen, "functions_fully_scanned": full,
            "functions_code_not_scanned": sum(f.code == "not-scanned" for f in self.functions),
            "functions_partial": sum(not complete(f) and f.code != "not-scanned" for f in self.functions),
            "gaps_failing": sum(g.status in FAILING_STATUSES for g in self.gaps),
            "gaps_warning": sum(g.status in WARNING_STATUSES for g in self.gaps),
            "findings": len(self.finding_records), "findings_by_location": by_location,
            "third_party_findings": len(self.third_party_records),
            "functions_with_findings": len({(f["account"], f["region"], f["function"])
                                            for f in self.finding_records}),
            "api_calls": sum(self.api_calls.values()), "api_calls_by_operation": dict(sorted(self.api_calls.items())),
            "api_calls_per_function_beyond_listing": round(beyond / seen, 3) if seen else 0.0,
            "packages_downloaded": self.downloads,
            "elapsed_seconds": round(self.elapsed, 3),
            "functions_per_second": round(seen / self.elapsed, 1) if self.elapsed > 0 else 0.0,
        }

    # -- checks ----------------------------------------------------------------------------
    def checks(self, phase: str = "baseline") -> list[Check]:
        """``no-secrets-in-environment``, ``no-secrets-in-code``, ``audit-coverage-complete`` (catalog)."""
        return [make_check(no_secrets_in_environment.SPEC.id, phase, no_secrets_in_environment.judge_baseline(self)),
                make_check(no_secrets_in_code.SPEC.id, phase, no_secrets_in_code.judge_baseline(self)),
                make_check(audit_coverage_complete.SPEC.id, phase, audit_coverage_complete.judge_baseline(self))]

    # -- evidence --------------------------------------------------------------------------
    def write(self, run_dir) -> dict:
        """Write findings.json, findings.csv, inventory.csv and coverage.json; return their paths."""
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        summary = self.summary
        paths = {name: folder / name for name in ("findings.json", "findings.csv", "inventory.csv",
                                                  "coverage.json")}
        paths["findings.json"].write_text(json.dumps({"summary": summary, "findings": self.finding_records,
                                                      "third_party": self.third_party_records},
                                                     indent=2, default=str) + "\n")
        import pandas as pd
        # names and tags come from the audited account: a cell must not act as a spreadsheet formula
        findings = pd.DataFrame(self.finding_records,
                                columns=FINDING_COLUMNS + ["function_arn", "variable", "path", "line"])
        render.csv_safe_frame(findings).to_csv(paths["findings.csv"], index=False)
        render.csv_safe_frame(self.inventory).to_csv(paths["inventory.csv"], index=False)
        functions = [{k: getattr(f, k) for k in ("account", "region", "function", "versions", "aliases",
                                                 "environment", "code", "layer_scan")} for f in self.functions]
        paths["coverage.json"].write_text(json.dumps(
            {"summary": summary, "regions": [{"account": a, "region": r} for a, r in self.regions_done],
             "gaps": [g.to_dict() for g in self.gaps], "functions": functions}, indent=2, default=str) + "\n")
        return {k: str(v) for k, v in paths.items()}

    def record(self, ledger, function_name: str = "") -> None:
        """Put findings, migration candidates and edge candidates in the ledger's baseline."""
        keep = ("account", "region", "function", "function_arn", "version", "location", "where", "layer",
                "variable", "path", "line", "rule", "remediation", "redacted", "fingerprint", "edge_candidate")
        findings = [{k: f[k] for k in keep} for f in self.finding_records]
        candidates = sorted({f["function"] for f in findings})
        edge = sorted({f.function for f in self.functions if f.edge_reason})
        values = {"findings": findings, "candidates": candidates, "edge_candidates": edge,
                  "audit_summary": self.summary}
        if function_name:
            mine = [f for f in findings if function_name in (f["function"], f["function_arn"])]
            latest = [f for f in mine if f["version"] == "$LATEST"]
            values["target_function"] = {
                "function": function_name,
                "audited": any(function_name in (f.function, f.arn) for f in self.functions),
                "environment_variables": sorted({f["variable"] for f in latest if f["location"] == "environment"}),
                "code_findings": [f["where"] for f in latest if f["location"] == "code"],
                "layer_findings": [f"{f['layer']} {f['where']}" for f in latest if f["location"] == "layer"],
                "old_versions_with_findings": sorted({f["version"] for f in mine if f["version"] != "$LATEST"},
                                                     key=version_key),
                "edge_candidate": function_name in edge,
            }
        ledger.set_baseline(**values)

    def chart(self, path=None):
        """Findings by rule and by function as a :class:`~runbook_lib.charts.Chart` (PNG; written to ``path``).

        :func:`runbook_lib.charts.findings_chart` draws it: the :data:`CHART_FUNCTIONS` functions
        (and rules) with the most findings, integer count ticks, and a title saying how many it
        leaves out; at hundreds of functions a bar each is unreadable and slow to draw, and
        ``findings.json``/``findings.csv`` list every one.
        """
        return findings_chart(self.finding_records, path)


# -- baseline invocation -------------------------------------------------------------------
def baseline_invocation(target: Target, function_name: str, ledger=None, payload=None) -> dict:
    """Invoke the function once and record its response shape (never its values) for the parity check.

    Uses :func:`runbook_lib.evidence.invoke_function`, so baseline and validation shapes
    come from one function. An error (denied, missing function, function error) becomes
    the baseline status instead of an exception: the test plan completes, and validation
    knows there is no usable baseline.

    Returns
    -------
    dict
        function, baseline_status (``"ok"`` or why not), response_shape, and the invocation
        record (status codes, duration, shape; no response body).
    """
    from .evidence import invocation_failures, invoke_function
    out = {"function": function_name, "baseline_status": "", "response_shape": None, "invocation": None}
    try:
        invocation = invoke_function(target.client("lambda"), function_name, payload or {}, 1)[0]
    except RunbookError as exc:
        out["baseline_status"] = f"not-invoked: {exc}"
    else:
        failures = invocation_failures([invocation])
        out.update(invocation=invocation, response_shape=invocation["response_shape"],
                   baseline_status="ok" if not failures else "failed: " + "; ".join(failures))
    if ledger is not None:
        ledger.set_baseline(response_shape=out["response_shape"], baseline_status=out["baseline_status"],
                            baseline_invocation=out["invocation"])
    return out
