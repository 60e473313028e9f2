"""Where the audit looks: accounts, regions, functions and CloudFront associations.

The audit (:mod:`runbook_lib.audit`) asks this module *what exists*; it never decides
*what is secret*. Everything is listed with paginators, every API call is counted
(:class:`CallCounter`), and anything that could not be listed becomes a :class:`Gap`
(a line of the coverage table) instead of an exception.

Examples
--------
>>> counter = CallCounter()                                                  # doctest: +SKIP
>>> scopes, gaps = resolve_accounts(target, ["organization"], "AuditRole", counter)  # doctest: +SKIP
>>> regions, more = resolve_regions(scopes[0], "all", counter)              # doctest: +SKIP
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field

import boto3

from .exceptions import AwsCallError, RunbookError
from .session import Target, aws_call

#: Gap statuses that mean "could not be read" (the coverage check FAILs on them);
#: the others are deliberate exclusions or notes (the check WARNs or says nothing).
FAILING_STATUSES = ("denied", "error", "not-found", "unknown-region")
WARNING_STATUSES = ("not-scanned", "file-not-scanned")
NOTE_STATUSES = ("note", "region-not-enabled")

#: Calls made once per account or region to list things; the per-function budget excludes them.
LISTING_CALLS = {"ListFunctions", "ListAccounts", "DescribeRegions", "ListDistributions",
                 "AssumeRole", "GetCallerIdentity"}

_COUNTER_IDS = itertools.count()


@dataclass
class Gap:
    """One thing the audit could not (or chose not to) read: a row of the coverage table."""

    account: str
    region: str
    subject: str
    call: str
    status: str
    reason: str
    permission: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def gap_from_error(exc: RunbookError, account: str, region: str, subject: str,
                   call: str, permission: str = "") -> Gap:
    """A coverage row for a failed call: denied, not found, or another error, in one line."""
    if isinstance(exc, AwsCallError):
        if exc.access_denied:
            status = "denied"
        elif exc.code in ("ResourceNotFoundException", "NoSuchEntity", "NotFound"):
            status = "not-found"
        else:
            status = "error"
        return Gap(account, region, subject, call, status, str(exc), exc.permission or permission)
    return Gap(account, region, subject, call, "error", str(exc), permission)


class CallCounter:
    """Counts the API calls made through the clients it is attached to, by operation.

    Registered on botocore's ``before-call`` event, so a call retried by adaptive
    retries counts once (it is one call in the budget; the retries are botocore's).
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.by_operation: Counter = Counter()
        self._unique_id = f"runbook-audit-counter-{next(_COUNTER_IDS)}"
        self._clients: list = []

    def attach(self, client):
        if all(c is not client for c in self._clients):
            client.meta.events.register("before-call", self._count, unique_id=self._unique_id)
            self._clients.append(client)
        return client

    def detach_all(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-call", unique_id=self._unique_id)
        self._clients.clear()

    def _count(self, model=None, **_):
        with self._lock:
            self.by_operation[getattr(model, "name", "unknown")] += 1

    @property
    def total(self) -> int:
        return sum(self.by_operation.values())

    def beyond_listing(self) -> int:
        return sum(n for op, n in self.by_operation.items() if op not in LISTING_CALLS)


@dataclass
class AccountScope:
    """One account to audit and the target that reaches it (the caller's, or an assumed role)."""

    account: str
    target: Target
    via: str = "caller"
    clients: dict = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str, counter: CallCounter):
        # Clients are made in the main thread only: boto3 session.client() is not thread-safe.
        key = (service, region)
        if key not in self.clients:
            self.clients[key] = counter.attach(self.target.client(service, region=region))
        return self.clients[key]


# -- accounts ------------------------------------------------------------------------------
def resolve_accounts(target: Target, accounts, assume_role_name: str,
                     counter: CallCounter) -> tuple[list[AccountScope], list[Gap]]:
    """The accounts to audit: the caller's, a list of ids, or every account of the organization."""
    gaps: list[Gap] = []
    sts = counter.attach(target.client("sts"))
    try:
        with aws_call("GetCallerIdentity", "sts", "sts:GetCallerIdentity"):
            caller = sts.get_caller_identity()["Account"]
    except RunbookError as exc:
        return [], [gap_from_error(exc, "", "", "caller identity", "GetCallerIdentity",
                                   "sts:GetCallerIdentity")]
    if isinstance(accounts, str):
        accounts = [accounts] if accounts else []
    wanted = [str(a).strip() for a in accounts if str(a).strip()]
    if not wanted:
        return [AccountScope(caller, target)], gaps
    if "organization" in wanted:
        org = counter.attach(target.client("organizations"))
        try:
            with aws_call("ListAccounts", "organization", "organizations:ListAccounts"):
                listed = [a["Id"] for page in org.get_paginator("list_accounts").paginate()
                          for a in page["Accounts"] if a.get("Status", "ACTIVE") == "ACTIVE"]
        except RunbookError as exc:
            gaps.append(gap_from_error(exc, caller, "", "organization", "ListAccounts",
                                       "organizations:ListAccounts"))
            listed = [caller]
        wanted = [a for a in wanted if a != "organization"] + listed
    scopes: list[AccountScope] = []
    partition = _partition(target)
    for account in dict.fromkeys(wanted):
        if not re.fullmatch(r"\d{12}", account):
            gaps.append(Gap(account, "", "account", "", "error",
                            f"{account!r} is not a 12-digit account id"))
        elif account == caller:
            scopes.append(AccountScope(caller, target))
        elif not assume_role_name:
            gaps.append(Gap(account, "", "account", "AssumeRole", "error",
                            "no assume_role_name given: cannot reach a member account",
                            "sts:AssumeRole"))
        else:
            arn = f"arn:{partition}:iam::{account}:role/{assume_role_name}"
            try:
                with aws_call("AssumeRole", arn, "sts:AssumeRole"):
                    creds = sts.assume_role(RoleArn=arn, RoleSessionName="lambda-secrets-audit",
                                            DurationSeconds=3600)["Credentials"]
            except RunbookError as exc:
                gaps.append(gap_from_error(exc, account, "", f"role {assume_role_name}",
                                           "AssumeRole", "sts:AssumeRole"))
                continue
            session = boto3.session.Session(aws_access_key_id=creds["AccessKeyId"],
                                            aws_secret_access_key=creds["SecretAccessKey"],
                                            aws_session_token=creds["SessionToken"],
                                            region_name=target.region)
            scopes.append(AccountScope(account, target.with_session(session), via=arn))
    return scopes, gaps


def _partition(target: Target) -> str:
    region = target.region or "us-east-1"
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


# -- regions -------------------------------------------------------------------------------
def known_regions(target: Target) -> set[str]:
    """Every Lambda region botocore knows, in every partition."""
    session = target.session
    out: set[str] = set()
    for partition in session.get_available_partitions():
        out.update(session.get_available_regions("lambda", partition_name=partition))
    return out


def resolve_regions(scope: AccountScope, regions, counter: CallCounter
                    ) -> tuple[list[str], list[Gap], bool]:
    """The regions to audit in one account, the gaps, and whether "all" fell back to the partition list.

    ``"all"`` (or ``["all"]``) means every region enabled in the account
    (``ec2:DescribeRegions``); when that call is denied, every Lambda region of the
    partition is used instead and the coverage table says so.
    """
    if isinstance(regions, str):
        regions = [regions]
    regions = [r.strip() for r in (regions or [scope.target.region]) if r and r.strip()]
    gaps: list[Gap] = []
    fell_back = False
    if "all" in regions:
        ec2 = scope.client("ec2", scope.target.region, counter)
        try:
            with aws_call("DescribeRegions", "regions", "ec2:DescribeRegions"):
                enabled = [r["RegionName"] for r in ec2.describe_regions(AllRegions=False)["Regions"]
                           if r.get("OptInStatus", "opt-in-not-required") != "not-opted-in"]
        except RunbookError as exc:
            fell_back = True
            enabled = sorted(scope.target.session.get_available_regions(
                "lambda", partition_name=_partition(scope.target)))
            gaps.append(Gap(scope.account, "", "regions", "DescribeRegions", "note",
                            f"{exc}; audited every Lambda region of the partition instead "
                            f"({len(enabled)}): regions not enabled show as region-not-enabled",
                            "ec2:DescribeRegions"))
        regions = [r for r in regions if r != "all"] + sorted(enabled)
    known = known_regions(scope.target)
    out = []
    for region in dict.fromkeys(regions):
        if region in known:
            out.append(region)
        else:
            gaps.append(Gap(scope.account, region, "region", "", "unknown-region",
                            f"unknown region {region!r}: not a Lambda region of any partition"))
    return out, gaps, fell_back


# -- functions -----------------------------------------------------------------------------
def list_function_configurations(lam) -> list[dict]:
    """Every function's configuration, $LATEST and published versions, in one paged listing.

    ``FunctionVersion="ALL"`` returns each published version's configuration (with its
    environment variables) in the same pages, so the residue in old versions is seen
    without one call per function.
    """
    with aws_call("ListFunctions", lam.meta.region_name, "lambda:ListFunctions"):
        return [fn for page in lam.get_paginator("list_functions").paginate(FunctionVersion="ALL")
                for fn in page.get("Functions", [])]


def group_versions(configs: list[dict]) -> dict[str, dict]:
    """``{name: {"latest": config, "versions": [config, ...]}}`` from a FunctionVersion=ALL listing."""
    out: dict[str, dict] = {}
    for cfg in configs:
        entry = out.setdefault(cfg["FunctionName"], {"latest": None, "versions": []})
        if cfg.get("Version", "$LATEST") == "$LATEST":
            entry["latest"] = cfg
        else:
            entry["versions"].append(cfg)
    for entry in out.values():
        entry["versions"].sort(key=lambda c: int(c["Version"]) if c["Version"].isdigit() else 0)
        if entry["latest"] is None:  # a listing that only had versions: keep the newest as the function
            entry["latest"] = entry["versions"].pop()
    return out


def unqualified_arn(arn: str) -> str:
    """``arn:aws:lambda:r:a:function:name`` without a ``:version`` or ``:alias`` suffix."""
    return ":".join(arn.split(":")[:7])


def cloudfront_associations(scope: AccountScope, counter: CallCounter
                            ) -> tuple[dict[str, list[str]], list[Gap]]:
    """``{unqualified function ARN: [distribution ids]}`` for Lambda@Edge associations."""
    cf = scope.client("cloudfront", "us-east-1", counter)
    found: dict[str, list[str]] = {}
    try:
        with aws_call("ListDistributions", "cloudfront", "cloudfront:ListDistributions"):
            pages = list(cf.get_paginator("list_distributions").paginate())
    except RunbookError as exc:
        gap = gap_from_error(exc, scope.account, "us-east-1", "cloudfront", "ListDistributions",
                             "cloudfront:ListDistributions")
        gap.status, gap.reason = "note", gap.reason + "; edge candidates judged by name and tags only"
        return found, [gap]
    for page in pages:
        for dist in (page.get("DistributionList") or {}).get("Items", []) or []:
            behaviours = [dist.get("DefaultCacheBehavior") or {}]
            behaviours += (dist.get("CacheBehaviors") or {}).get("Items", []) or []
            for behaviour in behaviours:
                for assoc in (behaviour.get("LambdaFunctionAssociations") or {}).get("Items", []) or []:
                    arn = unqualified_arn(assoc.get("LambdaFunctionARN", ""))
                    found.setdefault(arn, [])
                    if dist["Id"] not in found[arn]:
                        found[arn].append(dist["Id"])
    return found, []


_EDGE_NAME = re.compile(r"(^|[-_.])(edge|lambda-?edge)([-_.]|$)", re.IGNORECASE)


def edge_reason(region: str, function_arn: str, name: str, tags: dict,
                associations: dict[str, list[str]]) -> str:
    """Why a function is a Lambda@Edge candidate, or ``""`` (only us-east-1 functions can be)."""
    if region != "us-east-1":
        return ""
    dists = associations.get(unqualified_arn(function_arn))
    if dists:
        return "CloudFront association " + ", ".join(dists)
    for key, value in (tags or {}).items():
        if "edge" in key.lower() or (isinstance(value, str) and value.lower() in ("edge", "lambda@edge")):
            return f"tag {key}"
    if _EDGE_NAME.search(name):
        return "name"
    return ""
