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

import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from typing import Callable

from .audit_result import AuditResult, FunctionScan, finding_row, third_party_row, version_key
from .audit_result import baseline_invocation  # noqa: F401 - the test plan imports it from here
from .exceptions import RunbookError
from .inventory import (AccountScope, CallCounter, Gap, cloudfront_associations, edge_reason, gap_from_error,
                        group_versions, list_function_configurations, resolve_accounts, resolve_regions,
                        unqualified_arn)
from .session import Target, aws_call

DEFAULT_MAX_PACKAGE_BYTES = 250 * 1024 * 1024
# Errors a disabled opt-in region answers with when "all" fell back to the partition list.
_NOT_ENABLED_CODES = ("UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure")

Progress = Callable[[int, int, str], None]
Downloader = Callable[[str, int], bytes]


class PackageTooLarge(Exception):
    pass


@dataclass
class SkippedFileGap(Gap):
    """A file of a package the scanner left out: one coverage row per package, not one per user.

    Every function using the package reports it; :meth:`Audit.run` keeps the row of the first
    function in the audit's order, so which one names it does not depend on thread scheduling.
    """

    package: tuple = ()  # (the package's key, the file's path)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "package"}


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


def merge_outcomes(outcomes: list[tuple]) -> tuple[list[FunctionScan], list[dict], list[Gap]]:
    """Functions, finding rows and gaps of ``(record, rows, gaps)`` outcomes, in the audit's order.

    Functions by account, region and name; findings by function, then location, version, place
    and rule; each function's gaps in that order, a skipped file of a shared package once (under
    the first function that uses it). The order never depends on which thread finished first.
    """
    outcomes = sorted(outcomes, key=lambda o: (o[0].account, o[0].region, o[0].function))
    findings = [row for _, rows, _ in outcomes for row in rows]
    findings.sort(key=lambda f: (f["account"], f["region"], f["function"], f["location"],
                                 version_key(f["version"]), f["where"], f["rule"]))
    gaps, reported = [], set()
    for gap in (gap for _, _, more in outcomes for gap in more):
        if isinstance(gap, SkippedFileGap):
            if gap.package in reported:
                continue
            reported.add(gap.package)
        gaps.append(gap)
    return [record for record, _, _ in outcomes], findings, gaps


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
            except Exception as exc:  # noqa: BLE001 - one unreadable package must not end the audit
                # a coverage row naming the error's type only: its message may quote the package
                slot[1] = ("error", RunbookError(f"reading the package failed: {type(exc).__name__}"))
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
    allowlist_path:
        A committed allowlist file the default scanner applies (``runbook run --allowlist``).
    progress:
        ``progress(done, total, label)`` called from the calling thread as functions finish.
    downloader:
        ``downloader(url, limit) -> bytes`` (tests inject one); default :func:`download_package`.
    """

    def __init__(self, target: Target, regions=None, function_names=(), include_code: bool = True,
                 include_layers: bool = True, include_versions: bool = False, max_workers: int = 8,
                 accounts=(), assume_role_name: str = "", scanner=None,
                 progress: Progress | None = None, max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES,
                 downloader: Downloader | None = None, allowlist_path: str = ""):
        if scanner is None:
            from .redaction import Fingerprinter
            from .scanning import Scanner
            scanner = Scanner(fingerprinter=Fingerprinter(), allowlist=allowlist_path or None)
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
        listed: list[tuple] = []
        associations: dict[str, dict] = {}
        with ThreadPoolExecutor(self.max_workers, thread_name_prefix="audit") as pool:
            list_futures = {pool.submit(list_function_configurations, lam): (scope, region, fell_back)
                            for scope, region, lam, fell_back in region_jobs}
            edge_futures = {pool.submit(cloudfront_associations, scope, counter): scope
                            for scope in scopes if ("cloudfront", "us-east-1") in scope.clients}
            # results are taken in submission order, not completion order: the coverage rows of a
            # run come out in the same order however the threads were scheduled
            for future, scope in edge_futures.items():
                found, more = future.result()
                associations[scope.account] = found
                gaps += more
            for future, (scope, region, fell_back) in list_futures.items():
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
            outcomes = self._audit_functions(pool, work, associations)
        functions, findings, more = merge_outcomes(outcomes)
        gaps += more
        regions_done = sorted({(s.account, r) for s, r, _ in listed})
        return functions, findings, gaps, regions_done

    def _audit_functions(self, pool, work: list[tuple], associations: dict) -> list[tuple]:
        """Audit each function on the pool; ``(record, finding rows, gaps)`` per function, as they finish.

        An AWS error reading one function is a gap of that function (``_audit_function`` turns
        every :class:`RunbookError` into one), so the others are still audited.
        """
        total = len(work)
        self.progress(0, total, "listed")
        futures = [pool.submit(self._audit_function, scope, region, group, associations.get(scope.account, {}))
                   for scope, region, group in work]
        outcomes = []
        for done, future in enumerate(as_completed(futures), start=1):
            outcomes.append(future.result())
            self.progress(done, total, outcomes[-1][0].function)
        return outcomes

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
        """One function: every version's variables, GetFunction (code URL, tags), aliases, code, layers."""
        latest, versions = group["latest"], group["versions"]
        lam = scope.clients[("lambda", region)]
        record = FunctionScan(
            account=scope.account, region=region, function=latest["FunctionName"],
            arn=unqualified_arn(latest["FunctionArn"]), runtime=latest.get("Runtime", ""),
            package_type=latest.get("PackageType", "Zip"), last_modified=latest.get("LastModified", ""),
            role=latest.get("Role", ""), code_size=int(latest.get("CodeSize") or 0),
            layers=[layer["Arn"] for layer in latest.get("Layers") or []],
            versions=[v["Version"] for v in versions])
        rows: list[dict] = []
        gaps: list[Gap] = []
        self._scan_environments(record, [latest] + versions, rows, gaps)
        location = self._read_function(lam, record, associations, gaps)
        if versions:  # which published versions are still reachable through an alias (residue sweep)
            self._read_aliases(lam, record, gaps)
        if self.include_code and record.code == "not requested":
            record.code = self._scan_code(lam, record, latest, "$LATEST", location, rows, gaps)
            if self.include_versions:
                for cfg in versions:
                    status = self._scan_code(lam, record, cfg, cfg["Version"], None, rows, gaps)
                    if status != "scanned" and record.code == "scanned":
                        record.code = "partial"
        if self.include_layers:
            self._scan_layers(lam, record, latest, versions, rows, gaps)
        for row in rows:
            row["edge_candidate"] = bool(record.edge_reason)
        record.findings = len(rows)
        return record, rows, gaps

    def _scan_environments(self, record: FunctionScan, configs: list[dict], rows: list, gaps: list) -> None:
        """The variables of $LATEST and every published version (they came with the listing)."""
        for cfg in configs:
            version = cfg.get("Version", "$LATEST")
            env = cfg.get("Environment") or {}
            if env.get("Error"):
                code = env["Error"].get("ErrorCode", "Error")
                gaps.append(Gap(record.account, record.region, f"{record.function}:{version}", "ListFunctions",
                                "denied" if "AccessDenied" in code or "KMS" in code else "error",
                                f"environment variables of {record.function}:{version} not readable: {code}",
                                "kms:Decrypt"))
                record.environment = "partial"
            rows += [finding_row(f, record, "environment", version)
                     for f in self.scanner.scan_environment(env.get("Variables") or {})]

    def _read_function(self, lam, record: FunctionScan, associations: dict, gaps: list) -> str:
        """GetFunction: the code's URL and the tags (for the edge candidate); returns the URL."""
        tags, location = {}, ""
        if self.include_code or record.region == "us-east-1":
            try:
                with aws_call("GetFunction", record.function, "lambda:GetFunction"):
                    got = lam.get_function(FunctionName=record.arn)
                tags, location = got.get("Tags") or {}, (got.get("Code") or {}).get("Location", "")
            except RunbookError as exc:
                gap = gap_from_error(exc, record.account, record.region, record.function, "GetFunction",
                                     "lambda:GetFunction")
                if self.include_code:
                    gap.reason += "; code package not scanned"
                    record.code = gap.status
                gaps.append(gap)
        record.edge_reason = edge_reason(record.region, record.arn, record.function, tags, associations)
        return location

    def _read_aliases(self, lam, record: FunctionScan, gaps: list) -> None:
        try:
            with aws_call("ListAliases", record.function, "lambda:ListAliases"):
                record.aliases = {a["Name"]: a["FunctionVersion"]
                                  for page in lam.get_paginator("list_aliases").paginate(FunctionName=record.function)
                                  for a in page.get("Aliases", [])}
        except RunbookError as exc:
            gaps.append(gap_from_error(exc, record.account, record.region, record.function, "ListAliases",
                                       "lambda:ListAliases"))

    def _scan_layers(self, lam, record: FunctionScan, latest: dict, versions: list, rows: list, gaps: list) -> None:
        layer_arns = dict.fromkeys(record.layers)
        if self.include_versions:
            layer_arns.update(dict.fromkeys(la["Arn"] for v in versions for la in v.get("Layers") or []))
        sizes = {la["Arn"]: la.get("CodeSize", 0) for c in [latest] + versions for la in c.get("Layers") or []}
        statuses = [self._scan_layer(lam, record, arn, sizes.get(arn, 0), rows, gaps) for arn in layer_arns]
        record.layer_scan = ("none" if not statuses else "scanned" if all(s == "scanned" for s in statuses)
                             else "partial")

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
        # no label: finding paths stay relative to the package root ("app.py:3"); the scanner
        # keeps one hyperscan scratch space per thread, so scans run concurrently
        return self.scanner.scan_zip(data)

    def _attribute(self, key, fetch, record, location, version, layer, label, rows, gaps) -> str:
        """Scan a package once and attribute its findings (and failures) to this function."""
        (status, value), _ = self._once.get(key, fetch)
        ctx = (record.account, record.region)
        if status == "ok":
            rows += [finding_row(f, record, location, version, layer) for f in value.findings]
            rows += [third_party_row(t, record, location, version, layer) for t in value.third_party]
            gaps += [SkippedFileGap(*ctx, f"{label} {s.get('path', '')}", "", "file-not-scanned",
                                    str(s.get("reason", "")), package=(key, s.get("path", "")))
                     for s in getattr(value, "skipped", []) or []]
            return "scanned"
        if status == "not-scanned":
            gaps.append(Gap(*ctx, label, "download", "not-scanned", value))
            return "not-scanned"
        gap = gap_from_error(value, *ctx, label, getattr(value, "operation", "download"))
        gaps.append(gap)
        return gap.status


