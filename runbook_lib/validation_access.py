"""Validation's collection, second half: who can read the secret, the trails, the edge, the residue.

Every AWS call here fills a field of the :class:`~runbook_lib.validation_evidence.ValidationEvidence`
(or an ``errors`` line): the function's role and its policies; every other function of the
region and its role's policies (who else could read the secret); IAM's policy simulator and a
live probe as the role (only when the role's trust policy names the operator, on every
target alike); the account's trails; the distribution of a Lambda@Edge association; the
published versions (residue) and the exposed credentials. ``iam_analysis.json`` records all
of it (no value: policies, ARNs, decisions).

Examples
--------
>>> collect_access(collection, ev)        # doctest: +SKIP
>>> sorted(ev.errors)                     # doctest: +SKIP
[]
"""

from __future__ import annotations

from . import access_probes, evidence, iam_analysis, residue
from .exceptions import RunbookError
from .inventory import list_function_configurations
from .records import EdgeAssociation
from .session import aws_call
from .validation_collect import Collection, run_sources
from .validation_evidence import ValidationEvidence

#: Sources whose errors ``iam_analysis.json`` repeats (the rest are in the other files).
ACCESS_SOURCES = ("secret", "secret_policy", "role", "functions", "probe")


def collect_access(c: Collection, ev: ValidationEvidence) -> None:
    """The access, audit-logging, edge and residue sources, in order; then ``iam_analysis.json``."""
    run_sources(ev, (("role", lambda: read_role(c, ev)), ("functions", lambda: read_function_roles(c, ev)),
                     ("probe", lambda: ask_aws(c, ev)), ("trails", lambda: read_trails(c, ev)),
                     ("edge", lambda: read_edge(c, ev)), ("residue", lambda: read_residue(c, ev)),
                     ("exposure", lambda: read_exposure(c, ev))))
    c.write(ev, "iam_analysis.json", iam_document(ev))


# -- the function's role and the region's other functions ---------------------------------------------
def read_role(c: Collection, ev: ValidationEvidence) -> None:
    if "function" in ev.errors:
        raise RunbookError("the function's configuration could not be read (see function)")
    if ev.role_name:
        ev.role = iam_analysis.analyse_role(c.client("iam"), ev.role_name, policy_cache=c.policy_cache)


def read_function_roles(c: Collection, ev: ValidationEvidence) -> None:
    """Every other function of the region (all versions) and its role's policies, each role read once."""
    if not ev.secret:
        return
    pairs = sorted({(cfg["FunctionName"], cfg.get("Role", "")) for cfg in list_function_configurations(c.client("lambda"))
                    if cfg["FunctionName"] != ev.function_name})
    ev.functions = [{"function": name, "role": role} for name, role in pairs]
    iam = c.client("iam")
    for role_arn in sorted({role for _, role in pairs if role and role != ev.role_arn}):
        try:
            ev.role_analyses[role_arn] = iam_analysis.analyse_role(iam, role_arn.rsplit("/", 1)[-1],
                                                                   policy_cache=c.policy_cache)
        except RunbookError as exc:
            ev.role_errors[role_arn] = str(exc)


# -- asking AWS: the policy simulator and a live probe ---------------------------------------------------
def ask_aws(c: Collection, ev: ValidationEvidence) -> None:
    if ev.role is None or not ev.secret:
        return
    decoy = access_probes.decoy_secret_arn(ev.partition, ev.region, ev.account)
    userid = f"{ev.role.role_id}:{ev.function_name}" if ev.role.role_id else ""
    ev.simulation = access_probes.simulate_secret_access(c.client("iam"), ev.role.role_arn, ev.secret_arn, decoy,
                                                         resource_policy=ev.secret_policy, userid=userid)
    ev.probe = live_probe(c, ev, decoy)


def live_probe(c: Collection, ev: ValidationEvidence, decoy: str) -> dict:
    """The probe, tried when the role's trust policy names the operator (``live_probe`` overrides)."""
    if c.live_probe is False:
        return {"performed": False, "reason": "live_probe=False"}
    if c.live_probe is None:
        operator = c.target.caller_identity()["arn"]
        if not access_probes.trust_names_caller(ev.role.trust_policy, operator):
            return {"performed": False, "reason": f"the role's trust policy does not name the operator ({operator}): "
                    "a probe would need a trust this change must not add"}
        why = "the role's trust policy names the operator"
    else:
        why = "live_probe=True"
    return {"reason": why, **access_probes.probe_secret_access(c.target, ev.role.role_arn, ev.secret_arn, decoy)}


# -- trails, edge, residue ------------------------------------------------------------------------------
def read_trails(c: Collection, ev: ValidationEvidence) -> None:
    ev.trails = evidence.audit_trails(c.client("cloudtrail"))


def read_edge(c: Collection, ev: ValidationEvidence) -> None:
    """The viewer-request associations of the distribution the ledger says the runbook changed."""
    record = c.ledger.latest(EdgeAssociation)
    if record is None:
        ev.edge = None
        return
    ev.edge = {"distribution_id": record.resource, "expected_version_arn": record.version_arn, "associations": []}
    with aws_call("GetDistributionConfig", record.resource, "cloudfront:GetDistributionConfig"):
        config = c.client("cloudfront").get_distribution_config(Id=record.resource)["DistributionConfig"]
    behaviours = [("default", config.get("DefaultCacheBehavior") or {})] + [
        (b.get("PathPattern", ""), b) for b in (config.get("CacheBehaviors") or {}).get("Items") or []]
    ev.edge["associations"] = [{"behaviour": name, "event_type": a.get("EventType"),
                                "function_arn": a.get("LambdaFunctionARN")}
                               for name, b in behaviours
                               for a in (b.get("LambdaFunctionAssociations") or {}).get("Items") or []]


def read_residue(c: Collection, ev: ValidationEvidence) -> None:
    """Every published version's environment against the migrated values (one paged listing)."""
    lam, sm = c.client("lambda"), c.client("secretsmanager")
    snapshot = c.ledger.snapshot(ev.function_name)
    version = "" if snapshot is None or snapshot.deleted_by_closeout else str(snapshot.version)
    migrated = residue.migrated_fingerprints(lam, sm, c.ledger, ev.function_name, c.fingerprinter)
    ev.sweep = residue.sweep_function(lam, ev.function_name, migrated, c.scanner, c.fingerprinter,
                                      snapshot_version=version)


def read_exposure(c: Collection, ev: ValidationEvidence) -> None:
    ev.exposure = residue.exposure(c.ledger, ev.function_name, c.client("lambda"), c.client("secretsmanager"),
                                   c.client("iam"), c.fingerprinter)


def iam_document(ev: ValidationEvidence) -> dict:
    """``iam_analysis.json``: the role, the secret's policy, the simulator, the probe, the region's functions."""
    return {"secret_arn": ev.secret_arn, "role": ev.role.to_dict() if ev.role else None, "kms_key": ev.key,
            "secretsmanager_kms_grants": iam_analysis.effective_grants(ev.role) if ev.role else [],
            "secret_resource_policy": ev.secret_policy, "simulation": ev.simulation, "live_probe": ev.probe,
            "functions_in_region": ev.functions,
            "other_roles": {arn: analysis.to_dict() for arn, analysis in sorted(ev.role_analyses.items())},
            "roles_not_read": ev.role_errors,
            "unavailable": {k: v for k, v in ev.errors.items() if k in ACCESS_SOURCES}}
