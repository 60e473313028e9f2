"""``least-privilege``: the function's role reads exactly this secret, and only this function reads it (validation).

Three ways to prove it, each named in the verdict: the **static analysis** of every policy
of the role (and of the secret's resource policy), IAM's **policy simulator**, and a **live
probe** as the role (only when the role's trust policy names the operator). With only the
static analysis the check WARNs. Then **only this function reads the secret**: every other
function of the region is evaluated as AWS would its role session
(``assumed-role/<role>/<function>``, ``aws:userid`` ``<role id>:<function>``), its role's
identity policies together with the secret's resource policy; one that can read it FAILs the
check, by name. A grant through the secret's resource policy pinned to the function's
session (``aws:userid``) is recognised, as is today's identity-policy grant on the role.
"""

from __future__ import annotations

from ..access_probes import PROBE_SESSION
from ..iam_analysis import effective_grants, least_privilege_problems
from ..secret_readers import (ALLOWED, DENIED, UNKNOWN, Caller, broad_resource_grants, identity_statements,
                              read_decision)
from . import FAIL, PASS, SKIP, WARN, CheckSpec, Verdict
from .common import listed, unavailable

SPEC = CheckSpec(
    id="least-privilege",
    title="The role can read exactly this one secret",
    proves=("The function's role grants secretsmanager/kms access to exactly this secret (and kms:Decrypt on its "
            "customer managed key), as its IAM policies and the secret's resource policy say, confirmed by IAM's "
            "policy simulator or a live probe as the role; and no other function of the region can read the "
            "secret (their roles' policies, the secret's resource policy)."),
    controls=("AC-6",),
    phases=("validation",),
    evidence_file="iam_analysis.json",
    permissions=("iam:GetRole", "iam:ListAttachedRolePolicies", "iam:GetPolicy", "iam:GetPolicyVersion",
                 "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:SimulatePrincipalPolicy",
                 "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy", "lambda:ListFunctions",
                 "kms:DescribeKey", "sts:AssumeRole"),
)


#: AWS managed policies that grant GetSecretValue on every secret: another function's role holding
#: one whose document could not be read is still a reader. Other admin-like policies
#: (ReadOnlyAccess, IAMFullAccess, ...) do not read secret values: unreadable, they only WARN.
READS_EVERY_SECRET = frozenset({"AdministratorAccess", "PowerUserAccess", "SecretsManagerReadWrite",
                                "AWSSecretsManagerClientReadOnlyAccess"})


def role_label(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def other_functions(ev) -> tuple[list[str], list[str], list[dict]]:
    """(functions that can read the secret, functions that may, one row per function evaluated)."""
    readers, doubtful, rows = [], [], []
    for item in ev.functions:
        name, role_arn = item["function"], item["role"]
        label = f"{name} (role {role_label(role_arn)})"
        analysis = ev.role if role_arn == ev.role_arn else ev.role_analyses.get(role_arn)
        if analysis is None:
            doubtful.append(f"{label}: its policies could not be read ({ev.role_errors.get(role_arn, 'not read')})")
            rows.append({"function": name, "role": role_arn, "outcome": UNKNOWN})
            continue
        decision = read_decision(identity_statements(analysis), ev.secret_policy,
                                 Caller(role_arn, analysis.role_id, name), ev.secret_arn)
        rows.append({"function": name, "role": role_arn, **decision.to_dict()})
        reads_all = [p["name"] for p in analysis.managed_policies
                     if p["aws_managed"] and p["name"] in READS_EVERY_SECRET]
        if decision.outcome == ALLOWED or (analysis.unreadable and reads_all):
            readers.append(label)
        elif decision.outcome == UNKNOWN:
            doubtful.append(f"{label}: under conditions the runbook cannot evaluate")
        elif analysis.unreadable:
            doubtful.append(f"{label}: {len(analysis.unreadable)} of its policies could not be read")
    return readers, doubtful, rows


def probe_problems(ev, identity: list) -> list[str]:
    """What a performed live probe contradicts: the role's own read, and the decoy's denial."""
    probe = ev.probe
    if not probe.get("performed"):
        return []
    session = Caller(ev.role_arn, ev.role.role_id, probe.get("session", PROBE_SESSION))
    expected = read_decision(identity, ev.secret_policy, session, ev.secret_arn).outcome
    problems = []
    if expected == ALLOWED and probe.get("own_secret") != "allowed":
        problems.append(f"live probe: the role cannot read its own secret ({probe.get('own_secret')})")
    if expected == DENIED and probe.get("own_secret") == "allowed":
        problems.append("live probe: a session of the role other than the function's read the secret, which its "
                        "policies deny")
    if probe.get("decoy") == "allowed":
        problems.append("live probe: the role read a secret it must not read")
    return problems


def proof(ev) -> tuple[list[str], str]:
    """How the verdict was reached, and why neither the simulator nor the probe could confirm it."""
    methods = ["static analysis"]
    if ev.simulation.get("available") and ev.simulation.get("as_expected"):
        methods.append("policy simulator")
    probe = ev.probe
    if probe.get("performed") and probe.get("denial_shown"):
        methods.append("live probe")
    why = [f"policy simulator: {ev.simulation.get('reason') or ev.errors.get('probe') or 'not asked'}",
           f"live probe: {probe.get('note') or probe.get('error') or probe.get('reason') or 'not performed'}"]
    return methods, "; ".join(why)


def problems_of(ev, identity: list, own) -> list[str]:
    cmk = ev.key.get("key_arn", "") if ev.key.get("key_manager") == "CUSTOMER" else ""
    problems = least_privilege_problems(ev.role, ev.secret_arn, kms_key_arn=cmk, check_read=False)
    if own.outcome == DENIED:
        problems.append(f"no policy lets {ev.expected_session_arn} read the secret: the function cannot read it")
    problems += broad_resource_grants(ev.secret_policy, ev.role_arn, ev.secret_arn)
    simulation = ev.simulation
    if simulation.get("available") and not simulation.get("as_expected"):
        problems.append("policy simulator: " + ", ".join(f"{r}={d}" for r, d in simulation["decisions"].items()))
    return problems + probe_problems(ev, identity)


def judge(ev) -> Verdict:
    missing = unavailable(ev, "function", "secret", "secret_policy", "role", "key")
    if missing:
        return missing
    if not ev.secret or ev.role is None:
        return Verdict(SKIP, "no secret in the ledger or SECRET_ID, or no role on the function", evidence_file="")
    identity = identity_statements(ev.role)
    own = read_decision(identity, ev.secret_policy, Caller(ev.role_arn, ev.role.role_id, ev.function_name),
                        ev.secret_arn)
    problems = problems_of(ev, identity, own)
    readers, doubtful, rows = other_functions(ev)
    if readers:
        problems.append(f"the secret can be read by {len(readers)} other function(s): {listed(readers, 5, ', ')}")
    methods, why = proof(ev)
    evidence = {"role_arn": ev.role_arn, "secret_arn": ev.secret_arn,
                "managed_policies": [p["name"] for p in ev.role.managed_policies],
                "inline_policies": ev.role.inline_policies, "grants": effective_grants(ev.role),
                "secret_resource_policy": ev.secret_policy is not None, "function_read": own.to_dict(),
                "other_functions": rows, "problems": problems, "proven_by": methods,
                "simulation": ev.simulation, "live_probe": ev.probe}
    if problems:
        return Verdict(FAIL, listed(problems, 5), evidence)
    warnings = []
    if own.outcome == UNKNOWN:
        warnings.append("whether the function may read the secret depends on conditions the runbook cannot "
                        f"evaluate ({', '.join(own.because)})")
    if doubtful:
        warnings.append(f"the secret may be read by other function(s): {listed(doubtful, 3)}")
    if "functions" in ev.errors:
        warnings.append(f"the region's other functions could not be listed ({ev.errors['functions']})")
    if ev.role.unreadable:
        warnings.append("could not read: " + ", ".join(u["policy"] for u in ev.role.unreadable))
    if methods == ["static analysis"]:
        warnings.append(f"proven by static analysis only ({why})")
    if warnings:
        return Verdict(WARN, "; ".join(warnings), evidence)
    return Verdict(PASS, f"role {ev.role_name} reads exactly this secret ({', '.join(own.because)}); none of the "
                         f"{len(rows)} other function(s) of the region can read it; proven by {', '.join(methods)}",
                   evidence)
