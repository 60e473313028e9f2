"""The test plan's audit: which Lambda functions hold secrets, and what could not be read.

For every function of the regions (and accounts) asked for, the audit scans the
environment variables of ``$LATEST`` and of every published version (they come with
the paged listing), downloads the code package from GetFunction's ``Code.Location``
and scans it in memory, and scans each layer version once however many functions
share it. Container images and packages over the size limit are listed as not
scanned, with the reason. Every failure is a coverage row (:class:`~runbook_lib.inventory.Gap`),
never a traceback and never a silent gap. Values never leave the scanner: findings
carry a redacted preview and a keyed fingerprint.

API budget: one ``GetFunction`` per function (code URL and tags; plus one per published
version with distinct code when ``include_versions``), one paged ``ListAliases`` per
function that has published versions, one ``GetLayerVersion`` per
distinct layer version, one download per distinct package; listings are paged.

Examples
--------
>>> audit = Audit(target, regions=["us-east-1"], progress=print_progress)   # doctest: +SKIP
>>> result = audit.run()                                                    # doctest: +SKIP
>>> result.findings[["function", "where", "rule", "remediation"]]           # doctest: +SKIP
>>> result.write(run_dir); result.record(ledger, "orders-api")              # doctest: +SKIP
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .checks import FAIL, PASS, SKIP, WARN, Check
from .exceptions import RunbookError
from .inventory import (FAILING_STATUSES, LISTING_CALLS, WARNING_STATUSES, AccountScope,
                        CallCounter, Gap, cloudfront_associations, edge_reason, gap_from_error,
                        group_versions, list_function_configurations, resolve_accounts,
                        resolve_regions, unqualified_arn)
from .session import Target, aws_call

DEFAULT_MAX_PACKAGE_BYTES = 250 * 1024 * 1024
FINDING_COLUMNS = ["account", "region", "function", "version", "location", "where", "layer",
                   "rule", "title", "remediation", "redacted", "fingerprint", "edge_candidate"]
INVENTORY_COLUMNS = ["account", "region", "function", "runtime", "package_type", "last_modified",
                     "role", "code_size", "layers", "versions", "aliases", "edge_candidate", "edge_reason",
                     "environment", "code", "layer_scan", "findings"]
COVERAGE_COLUMNS = ["account", "region", "subject", "call", "status", "reason", "permission"]
# Errors a disabled opt-in region answers with when "all" fell back to the partition list.
_NOT_ENABLED_CODES = ("UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure")

Progress = Callable[[int, int, str], None]
Downloader = Callable[[str, int], bytes]


class PackageTooLarge(Exception):
    pass


def download_package(url: str, limit: int, timeout: float = 60.0) -> bytes:
    """Fetch a code package (presigned S3 URL on AWS, loopback URL in the lab), at most ``limit`` bytes.

    Errors never carry the URL: a presigned URL holds a session token.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "lambda-secrets-runbook"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https or lab loopback)
            data = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise RunbookError(f"download of the package failed: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RunbookError(f"download of the package failed: {type(exc).__name__} "
                           f"({str(reason).split('http')[0].strip()[:120]})") from None
    if len(data) > limit:
        raise PackageTooLarge(f"package larger than the {limit} byte limit")
    return data


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


class _Once:
    """Compute each key once across threads; later callers wait for the first one's result."""

    def __init__(self):
        self._lock = threading.Lock()
        self._slots: dict = {}

    @property
    def computed(self) -> int:
        return sum(1 for _, result in self._slots.values() if result and result[0] == "ok")

    def get(self, key, compute):
        with self._lock:
            slot = self._slots.get(key)
            first = slot is None
            if first:
                slot = self._slots[key] = [threading.Event(), None]
        if first:
            try:
                slot[1] = ("ok", compute())
            except PackageTooLarge as exc:
                slot[1] = ("not-scanned", str(exc))
            except RunbookError as exc:
                slot[1] = ("error", exc)
            finally:
                slot[0].set()
        else:
            slot[0].wait()
        return slot[1], first


class Audit:
    """An audit of Lambda functions for secrets; :meth:`run` returns an :class:`AuditResult`.

    Parameters
    ----------
    target:
        Where to look (:class:`~runbook_lib.session.Target`).
    regions:
        Region names, or ``"all"`` / ``["all"]`` for every region enabled in each account.
    function_names:
        Only these functions (names or ARNs); empty means all. A name found nowhere is a coverage row.
    include_code, include_layers:
        Download and scan code packages / layer versions.
    include_versions:
        Also scan the code of every published version (their environment variables are always scanned).
    max_workers:
        Bound on concurrent API calls and downloads.
    accounts:
        Account ids, or ``["organization"]`` for every active account of the organization; empty
        means the caller's account. Member accounts are reached by assuming ``assume_role_name``.
    scanner:
        A :class:`runbook_lib.scanning.Scanner`; default one with the run's fingerprint key.
    progress:
        ``progress(done, total, label)`` called from the calling thread as functions finish.
    downloader:
        ``downloader(url, limit) -> bytes`` (tests inject one); default :func:`download_package`.
    """

    def __init__(self, target: Target, regions=None, function_names=(), include_code: bool = True,
                 include_layers: bool = True, include_versions: bool = False, max_workers: int = 8,
                 accounts=(), assume_role_name: str = "", scanner=None,
                 progress: Progress | None = None, max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES,
                 downloader: Downloader | None = None):
        if scanner is None:
            from .redaction import Fingerprinter
            from .scanning import Scanner
            scanner = Scanner(fingerprinter=Fingerprinter())
        self.target = target
        self.regions = regions or [target.region]
        self.function_names = [n for n in (function_names or []) if n]
        self.include_code = include_code
        self.include_layers = include_layers
        self.include_versions = include_versions
        self.max_workers = max(1, int(max_workers))
        self.accounts = accounts or []
        self.assume_role_name = assume_role_name
        self.scanner = scanner
        self.progress = progress or (lambda done, total, label="": None)
        self.max_package_bytes = max_package_bytes
        self.downloader = downloader or download_package
        self._once = _Once()
        # one scan at a time: the scanner's compiled database shares one scratch space
        # (hyperscan raises ScratchInUseError on concurrent use); API calls and downloads
        # stay concurrent, and they are where the time goes
        self._scan_lock = threading.Lock()

    # -- orchestration ---------------------------------------------------------------------
    def run(self) -> "AuditResult":
        started = time.monotonic()
        counter = CallCounter()
        try:
            functions, findings, gaps, regions_done = self._run(counter)
        finally:
            counter.detach_all()
        elapsed = time.monotonic() - started
        return AuditResult(functions, findings, gaps, dict(counter.by_operation), elapsed,
                           regions_done, self.include_code, self.include_layers, self._once.computed)

    def _run(self, counter: CallCounter):
        scopes, gaps = resolve_accounts(self.target, self.accounts, self.assume_role_name, counter)
        region_jobs = []
        for scope in scopes:
            regions, more, fell_back = resolve_regions(scope, self.regions, counter)
            gaps += more
            for region in regions:
                region_jobs.append((scope, region, scope.client("lambda", region, counter), fell_back))
            if "us-east-1" in regions:
                scope.client("cloudfront", "us-east-1", counter)
        functions: list[FunctionScan] = []
        findings: list[dict] = []
        listed: list[tuple] = []
        associations: dict[str, dict] = {}
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="audit") as pool:
            list_futures = {pool.submit(list_function_configurations, lam): (scope, region, fell_back)
                            for scope, region, lam, fell_back in region_jobs}
            edge_futures = {pool.submit(cloudfront_associations, scope, counter): scope
                            for scope in scopes if ("cloudfront", "us-east-1") in scope.clients}
            for future in as_completed(edge_futures):
                found, more = future.result()
                associations[edge_futures[future].account] = found
                gaps += more
            for future in as_completed(list_futures):
                scope, region, fell_back = list_futures[future]
                try:
                    listed.append((scope, region, group_versions(future.result())))
                except RunbookError as exc:
                    gap = gap_from_error(exc, scope.account, region, "functions", "ListFunctions",
                                         "lambda:ListFunctions")
                    if fell_back and getattr(exc, "code", "") in _NOT_ENABLED_CODES:
                        gap.status = "region-not-enabled"
                    gaps.append(gap)
            work, more = self._select(listed, [(s, r) for s, r, _, _ in region_jobs])
            gaps += more
            total = len(work)
            self.progress(0, total, "listed")
            futures = [pool.submit(self._audit_function, scope, region, group,
                                   associations.get(scope.account, {}))
                       for scope, region, group in work]
            for done, future in enumerate(as_completed(futures), start=1):
                record, rows, more = future.result()
                functions.append(record)
                findings += rows
                gaps += more
                self.progress(done, total, record.function)
        order = lambda r: (r.account, r.region, r.function)  # noqa: E731
        functions.sort(key=order)
        findings.sort(key=lambda f: (f["account"], f["region"], f["function"], f["location"],
                                     _version_key(f["version"]), f["where"], f["rule"]))
        regions_done = sorted({(s.account, r) for s, r, _ in listed})
        return functions, findings, gaps, regions_done

    def _select(self, listed, attempted):
        """The functions to audit, and a not-found row for each asked-for name found nowhere."""
        work = [(scope, region, group) for scope, region, groups in listed for group in groups.values()]
        if not self.function_names:
            return work, []
        wanted = set(self.function_names)
        work = [w for w in work if w[2]["latest"]["FunctionName"] in wanted
                or unqualified_arn(w[2]["latest"]["FunctionArn"]) in wanted]
        seen = {w[2]["latest"]["FunctionName"] for w in work} | {
            unqualified_arn(w[2]["latest"]["FunctionArn"]) for w in work}
        where = ", ".join(sorted({f"{s.account}/{r}" for s, r in attempted})) or "no region"
        gaps = [Gap("", "", name, "ListFunctions", "not-found",
                    f"function {name!r} not found in {where}", "lambda:ListFunctions")
                for name in self.function_names if name not in seen]
        return work, gaps

    # -- one function --------------------------------------------------------------------
    def _audit_function(self, scope: AccountScope, region: str, group: dict, associations: dict):
        latest, versions = group["latest"], group["versions"]
        lam = scope.clients[("lambda", region)]
        name = latest["FunctionName"]
        record = FunctionScan(
            account=scope.account, region=region, function=name,
            arn=unqualified_arn(latest["FunctionArn"]), runtime=latest.get("Runtime", ""),
            package_type=latest.get("PackageType", "Zip"), last_modified=latest.get("LastModified", ""),
            role=latest.get("Role", ""), code_size=int(latest.get("CodeSize") or 0),
            layers=[layer["Arn"] for layer in latest.get("Layers") or []],
            versions=[v["Version"] for v in versions])
        rows: list[dict] = []
        gaps: list[Gap] = []
        ctx = (scope.account, region)
        for cfg in [latest] + versions:
            version = cfg.get("Version", "$LATEST")
            env = cfg.get("Environment") or {}
            if env.get("Error"):
                code = env["Error"].get("ErrorCode", "Error")
                gaps.append(Gap(*ctx, f"{name}:{version}", "ListFunctions",
                                "denied" if "AccessDenied" in code or "KMS" in code else "error",
                                f"environment variables of {name}:{version} not readable: {code}",
                                "kms:Decrypt"))
                record.environment = "partial"
            with self._scan_lock:
                env_findings = self.scanner.scan_environment(env.get("Variables") or {})
            for finding in env_findings:
                rows.append(_finding_row(finding, record, "environment", version))
        tags, location = {}, ""
        if self.include_code or region == "us-east-1":
            try:
                with aws_call("GetFunction", name, "lambda:GetFunction"):
                    got = lam.get_function(FunctionName=record.arn)
                tags, location = got.get("Tags") or {}, (got.get("Code") or {}).get("Location", "")
            except RunbookError as exc:
                gap = gap_from_error(exc, *ctx, name, "GetFunction", "lambda:GetFunction")
                if self.include_code:
                    gap.reason += "; code package not scanned"
                    record.code = gap.status
                gaps.append(gap)
        record.edge_reason = edge_reason(region, record.arn, name, tags, associations)
        if versions:  # which published versions are still reachable through an alias (residue sweep)
            try:
                with aws_call("ListAliases", name, "lambda:ListAliases"):
                    record.aliases = {a["Name"]: a["FunctionVersion"]
                                      for page in lam.get_paginator("list_aliases").paginate(FunctionName=name)
                                      for a in page.get("Aliases", [])}
            except RunbookError as exc:
                gaps.append(gap_from_error(exc, *ctx, name, "ListAliases", "lambda:ListAliases"))
        if self.include_code and record.code == "not requested":
            record.code = self._scan_code(lam, record, latest, "$LATEST", location, rows, gaps)
            if self.include_versions:
                for cfg in versions:
                    status = self._scan_code(lam, record, cfg, cfg["Version"], None, rows, gaps)
                    if status != "scanned" and record.code == "scanned":
                        record.code = "partial"
        if self.include_layers:
            layer_arns = dict.fromkeys(record.layers)
            if self.include_versions:
                layer_arns.update(dict.fromkeys(l["Arn"] for v in versions for l in v.get("Layers") or []))
            sizes = {l["Arn"]: l.get("CodeSize", 0) for c in [latest] + versions for l in c.get("Layers") or []}
            statuses = [self._scan_layer(lam, record, arn, sizes.get(arn, 0), rows, gaps) for arn in layer_arns]
            record.layer_scan = ("none" if not statuses else "scanned" if all(s == "scanned" for s in statuses)
                                 else "partial")
        for row in rows:
            row["edge_candidate"] = bool(record.edge_reason)
        record.findings = len(rows)
        return record, rows, gaps

    def _scan_code(self, lam, record: FunctionScan, cfg: dict, version: str, location: str | None,
                   rows: list, gaps: list) -> str:
        ctx = (record.account, record.region)
        label = f"{record.function}:{version}"
        if cfg.get("PackageType", "Zip") == "Image":
            gaps.append(Gap(*ctx, label, "", "not-scanned",
                            "container image: the code is not a zip package; scan the image in the registry"))
            return "not-scanned"
        size = int(cfg.get("CodeSize") or 0)
        if size > self.max_package_bytes:
            gaps.append(Gap(*ctx, label, "", "not-scanned",
                            f"package of {size} bytes is over the {self.max_package_bytes} byte limit"))
            return "not-scanned"

        def fetch():
            url = location
            if url is None:  # a published version whose code differs from $LATEST's
                with aws_call("GetFunction", label, "lambda:GetFunction"):
                    url = lam.get_function(FunctionName=record.arn, Qualifier=version)["Code"].get("Location", "")
            if not url:
                raise RunbookError("GetFunction returned no Code.Location")
            return self._scan_package(self.downloader(url, self.max_package_bytes))

        key = ("code", cfg.get("CodeSha256") or f"{record.arn}:{version}")
        return self._attribute(key, fetch, record, "code", version, "", label, rows, gaps)

    def _scan_layer(self, lam, record: FunctionScan, arn: str, size: int, rows: list, gaps: list) -> str:
        layer = ":".join(arn.split(":")[6:8])  # name:version
        if size > self.max_package_bytes:
            gaps.append(Gap(record.account, record.region, f"layer {layer} (used by {record.function})", "",
                            "not-scanned", f"layer of {size} bytes is over the {self.max_package_bytes} byte limit"))
            return "not-scanned"

        def fetch():
            # GetLayerVersion with the layer's ARN works across accounts like GetLayerVersionByArn,
            # and moto (so the lab) serves it
            layer_arn, number = arn.rsplit(":", 1)
            with aws_call("GetLayerVersion", arn, "lambda:GetLayerVersion"):
                url = lam.get_layer_version(LayerName=layer_arn, VersionNumber=int(number)
                                            )["Content"].get("Location", "")
            if not url:
                raise RunbookError(f"GetLayerVersion on {arn} returned no Content.Location")
            return self._scan_package(self.downloader(url, self.max_package_bytes))

        return self._attribute(("layer", arn), fetch, record, "layer", "$LATEST", layer,
                               f"layer {layer} (used by {record.function})", rows, gaps)

    def _scan_package(self, data: bytes):
        # no label: finding paths stay relative to the package root ("app.py:3")
        with self._scan_lock:
            return self.scanner.scan_zip(data)

    def _attribute(self, key, fetch, record, location, version, layer, label, rows, gaps) -> str:
        """Scan a package once and attribute its findings (and failures) to this function."""
        (status, value), first = self._once.get(key, fetch)
        ctx = (record.account, record.region)
        if status == "ok":
            rows += [_finding_row(f, record, location, version, layer) for f in value.findings]
            if first:  # a package's skipped files are one coverage row each, not one per user
                gaps += [Gap(*ctx, f"{label} {s.get('path', '')}", "", "file-not-scanned",
                             str(s.get("reason", "")))
                         for s in getattr(value, "skipped", []) or []]
            return "scanned"
        if status == "not-scanned":
            gaps.append(Gap(*ctx, label, "download", "not-scanned", value))
            return "not-scanned"
        gap = gap_from_error(value, *ctx, label, getattr(value, "operation", "download"))
        gaps.append(gap)
        return gap.status


def _version_key(version: str):
    return (0, 0) if version == "$LATEST" else (1, int(version) if version.isdigit() else 0)


def _finding_row(finding, record: FunctionScan, location: str, version: str, layer: str = "") -> dict:
    # Copy named fields only: whatever else a Finding may carry stays in the scanner.
    where = (finding.variable if location == "environment"
             else f"{finding.path}:{finding.line}" if finding.line else str(finding.path))
    return {"account": record.account, "region": record.region, "function": record.function,
            "function_arn": record.arn, "version": version, "location": location, "where": where,
            "layer": layer, "variable": finding.variable or "", "path": finding.path or "",
            "line": finding.line or 0, "rule": finding.rule, "title": finding.title,
            "remediation": finding.remediation, "redacted": finding.redacted,
            "fingerprint": finding.fingerprint, "edge_candidate": False}



def _complete(record: FunctionScan) -> bool:
    return (record.environment == "scanned" and record.code in ("scanned", "not requested")
            and record.layer_scan in ("scanned", "none"))


class AuditResult:
    """What an :class:`Audit` found: inventory, findings, coverage, checks and evidence files."""

    def __init__(self, functions: list[FunctionScan], findings: list[dict], gaps: list[Gap],
                 api_calls: dict, elapsed: float, regions_done: list, include_code: bool = True,
                 include_layers: bool = True, downloads: int = 0):
        self.functions = functions
        self.finding_records = findings
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
            full = sum(_complete(f) for f in mine)
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
        full = sum(_complete(f) for f in self.functions)
        beyond = sum(n for op, n in self.api_calls.items() if op not in LISTING_CALLS)
        by_location: dict[str, int] = {}
        for f in self.finding_records:
            by_location[f["location"]] = by_location.get(f["location"], 0) + 1
        return {
            "accounts": len({a for a, _ in self.regions_done}), "regions": len(self.regions_done),
            "functions_seen": seen, "functions_fully_scanned": full,
            "functions_code_not_scanned": sum(f.code == "not-scanned" for f in self.functions),
            "functions_partial": sum(not _complete(f) and f.code != "not-scanned" for f in self.functions),
            "gaps_failing": sum(g.status in FAILING_STATUSES for g in self.gaps),
            "gaps_warning": sum(g.status in WARNING_STATUSES for g in self.gaps),
            "findings": len(self.finding_records), "findings_by_location": by_location,
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
        env = [f for f in self.finding_records if f["location"] == "environment"]
        code = [f for f in self.finding_records if f["location"] in ("code", "layer")]
        failing = [g for g in self.gaps if g.status in FAILING_STATUSES]
        warning = [g for g in self.gaps if g.status in WARNING_STATUSES]
        gap_note = (f"; not everything could be read ({len(failing)} gaps, see audit-coverage-complete)"
                    if failing else "")
        out = [Check("no-secrets-in-environment", "No secret in any function's environment variables",
                     phase, *_finding_status(env, "environment variables", gap_note),
                     evidence={"findings": len(env), "functions": _where_list(env, limit=50)},
                     controls=["IA-5", "SC-28"], evidence_file="findings.json")]
        if not (self.include_code or self.include_layers):
            out.append(Check("no-secrets-in-code", "No secret in any code package or layer", phase, SKIP,
                             "include_code and include_layers are False: packages were not read",
                             controls=["IA-5"]))
        else:
            out.append(Check("no-secrets-in-code", "No secret in any code package or layer", phase,
                             *_finding_status(code, "code packages and layers", gap_note),
                             evidence={"findings": len(code), "functions": _where_list(code, limit=50)},
                             controls=["IA-5"], evidence_file="findings.json"))
        summary = self.summary
        evidence = {k: summary[k] for k in ("accounts", "regions", "functions_seen", "functions_fully_scanned",
                                            "functions_code_not_scanned", "functions_partial",
                                            "gaps_failing", "gaps_warning")}
        if failing:
            status, reason = FAIL, f"{len(failing)} things could not be read: " + _gap_list(failing)
        elif warning:
            status, reason = WARN, f"{len(warning)} things were not scanned: " + _gap_list(warning)
        else:
            status = PASS
            reason = (f"{summary['functions_seen']} functions in {summary['regions']} regions of "
                      f"{summary['accounts']} accounts fully read")
        out.append(Check("audit-coverage-complete", "Every function, package and layer asked for was read",
                         phase, status, reason, evidence=evidence, controls=["SI-4"],
                         evidence_file="coverage.json"))
        return out

    # -- evidence --------------------------------------------------------------------------
    def write(self, run_dir) -> dict:
        """Write findings.json, findings.csv, inventory.csv and coverage.json; return their paths."""
        folder = Path(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        summary = self.summary
        paths = {name: folder / name for name in ("findings.json", "findings.csv", "inventory.csv",
                                                  "coverage.json")}
        paths["findings.json"].write_text(json.dumps({"summary": summary, "findings": self.finding_records},
                                                     indent=2, default=str) + "\n")
        import pandas as pd
        pd.DataFrame(self.finding_records, columns=FINDING_COLUMNS + ["function_arn", "variable", "path", "line"]
                     ).to_csv(paths["findings.csv"], index=False)
        self.inventory.to_csv(paths["inventory.csv"], index=False)
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
                                                     key=_version_key),
                "edge_candidate": function_name in edge,
            }
        ledger.set_baseline(**values)

    def chart(self, path=None):
        """Findings by rule and by function, as a matplotlib Figure (saved as PNG when ``path`` is given)."""
        from matplotlib.figure import Figure
        fig = Figure(figsize=(11, 4), layout="constrained")
        left, right = fig.subplots(1, 2)
        for ax, key, title in ((left, "rule", "Findings by rule"), (right, "function", "Findings by function")):
            counts: dict[str, int] = {}
            for f in self.finding_records:
                counts[f[key]] = counts.get(f[key], 0) + 1
            ax.set_title(title)
            if counts:
                labels = sorted(counts, key=lambda k: (counts[k], k))
                ax.barh(labels, [counts[k] for k in labels], color="#c0392b")
                ax.set_xlabel("findings")
            else:
                ax.text(0.5, 0.5, "no findings", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
        if path:
            fig.savefig(path, dpi=100, metadata={"Software": None})
        return fig


def _finding_status(findings: list[dict], what: str, gap_note: str) -> tuple[str, str]:
    if findings:
        return FAIL, (f"{len(findings)} secrets in {what} of {len({f['function'] for f in findings})} "
                      f"functions: {_where_list(findings, limit=6, text=True)}{gap_note}")
    if gap_note:
        return WARN, f"no secret found in the {what} that could be read" + gap_note
    return PASS, ""


def _where_list(findings: list[dict], limit: int, text: bool = False):
    by_function: dict[str, list[str]] = {}
    for f in findings:
        label = f["function"] + ("" if f["version"] == "$LATEST" else f":{f['version']}")
        where = f["where"] if f["location"] != "layer" else f"{f['layer']} {f['where']}"
        by_function.setdefault(label, [])
        if where not in by_function[label]:
            by_function[label].append(where)
    items = [f"{fn} ({', '.join(w)})" for fn, w in list(by_function.items())[:limit]]
    if not text:
        return items
    more = len(by_function) - limit
    return "; ".join(items) + (f"; and {more} more" if more > 0 else "")


def _gap_list(gaps: list[Gap], limit: int = 6) -> str:
    items = []
    for g in gaps[:limit]:
        where = "/".join(p for p in (g.account, g.region) if p)
        items.append(f"{g.subject}{' in ' + where if where else ''}: {g.reason}")
    more = len(gaps) - limit
    return "; ".join(items) + (f"; and {more} more" if more > 0 else "")


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
