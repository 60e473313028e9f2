"""``least-privilege`` on fabricated policies: how it was proven, the probe, and who else reads the secret."""

import pytest
from evidence_factory import (DECOY_ROLE_ARN, FUNCTION, OTHER_SECRET, ROLE_ARN, ROLE_ID, SECRET_ARN, SESSION_ARN,
                              allow, analysis, healthy, policy)

from runbook_lib.catalog import FAIL, PASS, SKIP, WARN, Verdict
from runbook_lib.catalog.least_privilege import judge

SIMULATOR_MISSING = {"available": False, "reason": "this endpoint has no policy simulator", "code": "NotImplemented"}
NO_PROBE = {"performed": False, "reason": "the role's trust policy does not name the operator"}
PROBE_OK = {"performed": True, "session": "runbook-least-privilege-probe", "own_secret": "allowed",
            "decoy": "AccessDeniedException", "denial_shown": True}


def pinned_resource_policy(role_arn=ROLE_ARN, role_id=ROLE_ID, function=FUNCTION) -> dict:
    """The grant a later task makes: the secret's resource policy, pinned to the function's session."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "LambdaSecretsRunbookReadByFunction", "Effect": "Allow", "Principal": {"AWS": role_arn},
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:userid": f"{role_id}:{function}"}}},
        {"Sid": "LambdaSecretsRunbookOnlyThisFunction", "Effect": "Deny", "Principal": {"AWS": "*"},
         "Action": "secretsmanager:GetSecretValue", "Resource": "*",
         "Condition": {"ArnEquals": {"aws:PrincipalArn": role_arn},
                       "StringNotEquals": {"aws:userid": f"{role_id}:{function}"}}}]}


def logs_only_role():
    return analysis({"inline:logs": policy(allow("logs:PutLogEvents", "*"))})


def test_exact_grant_confirmed_by_the_simulator_passes():
    verdict = judge(healthy())
    assert verdict.status == PASS
    assert verdict.reason == ("role orders-api-role reads exactly this secret (inline:read statement 1); none of the "
                              "1 other function(s) of the region can read it; proven by static analysis, policy "
                              "simulator")
    assert verdict.evidence["proven_by"] == ["static analysis", "policy simulator"]
    assert verdict.evidence["grants"][0]["resources"] == [SECRET_ARN]
    assert verdict.evidence["other_functions"] == [{"function": "inventory-sync", "role": DECOY_ROLE_ARN,
                                                    "outcome": "denied", "because": ["no statement allows it"]}]


def test_a_live_probe_proves_it_too():
    verdict = judge(healthy(simulation=SIMULATOR_MISSING, probe=PROBE_OK))
    assert verdict.status == PASS and verdict.evidence["proven_by"] == ["static analysis", "live probe"]


def test_only_static_analysis_warns_and_says_why():
    verdict = judge(healthy(simulation=SIMULATOR_MISSING, probe=NO_PROBE))
    assert verdict.status == WARN
    assert verdict.reason == ("proven by static analysis only (policy simulator: this endpoint has no policy "
                              "simulator; live probe: the role's trust policy does not name the operator)")


def test_a_probe_whose_decoy_was_not_denied_by_iam_does_not_prove_the_denial():
    probe = dict(PROBE_OK, decoy="ResourceNotFoundException", denial_shown=False,
                 note="the decoy answered ResourceNotFoundException, not AccessDenied: this endpoint does not enforce IAM")
    verdict = judge(healthy(simulation=SIMULATOR_MISSING, probe=probe))
    assert verdict.status == WARN and "live probe: the decoy answered ResourceNotFoundException" in verdict.reason


def test_a_probe_that_read_the_decoy_fails():
    verdict = judge(healthy(probe=dict(PROBE_OK, decoy="allowed", denial_shown=False)))
    assert (verdict.status, verdict.reason) == (FAIL, "live probe: the role read a secret it must not read")


def test_a_probe_that_could_not_read_the_own_secret_fails():
    verdict = judge(healthy(probe=dict(PROBE_OK, own_secret="AccessDeniedException")))
    assert (verdict.status, verdict.reason) == (FAIL, "live probe: the role cannot read its own secret "
                                                      "(AccessDeniedException)")


def test_a_simulator_that_allows_star_fails():
    simulation = {"available": True, "as_expected": False,
                  "decisions": {SECRET_ARN: "allowed", "*": "allowed", "decoy": "implicitDeny"}}
    verdict = judge(healthy(simulation=simulation))
    assert (verdict.status, verdict.reason) == (FAIL, f"policy simulator: {SECRET_ARN}=allowed, *=allowed, "
                                                      "decoy=implicitDeny")
    assert verdict.evidence["proven_by"] == ["static analysis"]  # a simulator that disagrees proves nothing


@pytest.mark.parametrize("documents, expected", [
    ({"inline:wide": policy(allow("secretsmanager:*", "*"))}, "wildcard action secretsmanager:*"),
    ({"inline:two": policy(allow("secretsmanager:GetSecretValue", [SECRET_ARN, OTHER_SECRET]))},
     f"secretsmanager grant on {OTHER_SECRET}, not only the secret"),
    ({"inline:write": policy(allow(["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"], SECRET_ARN))},
     "grants secretsmanager:PutSecretValue (more than reading the secret)"),
])
def test_grants_beyond_the_one_secret_fail(documents, expected):
    verdict = judge(healthy(role=analysis(documents)))
    assert verdict.status == FAIL and expected in verdict.reason


def test_a_role_that_cannot_read_the_secret_fails():
    verdict = judge(healthy(role=logs_only_role()))
    assert (verdict.status, verdict.reason) == (FAIL, f"no policy lets {SESSION_ARN} read the secret: the function "
                                                      "cannot read it")


def test_an_admin_policy_fails_even_unread():
    managed = [{"name": "AdministratorAccess", "arn": "arn:aws:iam::aws:policy/AdministratorAccess",
                "aws_managed": True, "version": ""}]
    verdict = judge(healthy(role=analysis(managed=managed)))
    assert verdict.status == FAIL and "admin managed policy AdministratorAccess attached" in verdict.reason


# -- only this function reads the secret --------------------------------------------------------
def test_another_function_on_the_same_role_fails_by_name():
    ev = healthy(functions=[{"function": "reports-api", "role": ROLE_ARN},
                            {"function": "inventory-sync", "role": DECOY_ROLE_ARN}])
    verdict = judge(ev)
    assert (verdict.status, verdict.reason) == (FAIL, "the secret can be read by 1 other function(s): reports-api "
                                                      "(role orders-api-role)")
    assert verdict.evidence["other_functions"][0] == {"function": "reports-api", "role": ROLE_ARN,
                                                      "outcome": "allowed", "because": ["inline:read statement 1"]}


def test_another_role_granting_every_secret_fails_by_name():
    wide = analysis({"managed:arn:aws:iam::123456789012:policy/read-all":
                     policy(allow("secretsmanager:GetSecretValue", "*"))}, role_arn=DECOY_ROLE_ARN,
                    role_id="AROADECOYROLE00000001")
    verdict = judge(healthy(role_analyses={DECOY_ROLE_ARN: wide}))
    assert (verdict.status, verdict.reason) == (FAIL, "the secret can be read by 1 other function(s): inventory-sync "
                                                      "(role decoy-role)")


def test_a_deny_in_the_other_roles_policy_keeps_it_out():
    guarded = analysis({"inline:all": policy(allow("secretsmanager:GetSecretValue", "*"),
                                             {"Effect": "Deny", "Action": "secretsmanager:*", "Resource": SECRET_ARN})},
                       role_arn=DECOY_ROLE_ARN, role_id="AROADECOYROLE00000001")
    assert judge(healthy(role_analyses={DECOY_ROLE_ARN: guarded})).status == PASS


def test_a_role_whose_policies_could_not_be_read_warns():
    verdict = judge(healthy(role_analyses={}, role_errors={DECOY_ROLE_ARN: "GetRole on decoy-role failed: denied"}))
    assert (verdict.status, verdict.reason) == (WARN, "the secret may be read by other function(s): inventory-sync (role "
                                                      "decoy-role): its policies could not be read (GetRole on "
                                                      "decoy-role failed: denied)")


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def test_another_role_with_an_unreadable_admin_policy_fails_by_its_name():
    """Its document could not be read, but AdministratorAccess reads every secret: judged by the policy's name."""
    unread = [{"policy": ADMIN, "reason": "GetPolicyVersion failed: AccessDenied"}]
    admin = analysis({}, role_arn=DECOY_ROLE_ARN, role_id="AROADECOYROLE00000001", unreadable=unread,
                     managed=[{"name": "AdministratorAccess", "arn": ADMIN, "aws_managed": True, "version": ""}])
    verdict = judge(healthy(role_analyses={DECOY_ROLE_ARN: admin}))
    assert (verdict.status, verdict.reason) == (FAIL, "the secret can be read by 1 other function(s): inventory-sync "
                                                      "(role decoy-role)")
    custom = analysis({}, role_arn=DECOY_ROLE_ARN, role_id="AROADECOYROLE00000001", unreadable=unread,
                      managed=[{"name": "AdministratorAccess", "arn": ADMIN, "aws_managed": False, "version": ""}])
    verdict = judge(healthy(role_analyses={DECOY_ROLE_ARN: custom}))  # a customer policy of that name proves nothing
    assert (verdict.status, verdict.reason) == (WARN, "the secret may be read by other function(s): inventory-sync (role "
                                                      "decoy-role): 1 of its policies could not be read")


@pytest.mark.parametrize("name", ["ReadOnlyAccess", "ViewOnlyAccess", "IAMFullAccess", "AWSLambda_FullAccess"])
def test_an_unreadable_admin_policy_that_reads_no_secret_value_only_warns(name):
    arn = f"arn:aws:iam::aws:policy/{name}"
    role = analysis({}, role_arn=DECOY_ROLE_ARN, role_id="AROADECOYROLE00000001",
                    unreadable=[{"policy": arn, "reason": "GetPolicyVersion failed: AccessDenied"}],
                    managed=[{"name": name, "arn": arn, "aws_managed": True, "version": ""}])
    verdict = judge(healthy(role_analyses={DECOY_ROLE_ARN: role}))
    assert (verdict.status, verdict.reason) == (WARN, "the secret may be read by other function(s): inventory-sync (role "
                                                      "decoy-role): 1 of its policies could not be read")


@pytest.mark.parametrize("name", ["PowerUserAccess", "SecretsManagerReadWrite",
                                  "AWSSecretsManagerClientReadOnlyAccess"])
def test_the_other_unreadable_policies_that_read_every_secret_fail_too(name):
    arn = f"arn:aws:iam::aws:policy/{name}"
    role = analysis({}, role_arn=DECOY_ROLE_ARN, role_id="AROADECOYROLE00000001",
                    unreadable=[{"policy": arn, "reason": "denied"}],
                    managed=[{"name": name, "arn": arn, "aws_managed": True, "version": ""}])
    assert judge(healthy(role_analyses={DECOY_ROLE_ARN: role})).status == FAIL


def test_unlisted_functions_warn():
    verdict = judge(healthy(errors={"functions": "ListFunctions on us-east-1 failed: AccessDenied"}))
    assert (verdict.status, verdict.reason) == (WARN, "the region's other functions could not be listed "
                                                      "(ListFunctions on us-east-1 failed: AccessDenied)")


def test_the_resource_policy_pinned_to_the_function_passes_and_keeps_the_shared_role_out():
    ev = healthy(role=logs_only_role(), secret_policy=pinned_resource_policy(),
                 functions=[{"function": "reports-api", "role": ROLE_ARN}])
    verdict = judge(ev)
    assert verdict.status == PASS, verdict.reason
    assert verdict.evidence["function_read"] == {"outcome": "allowed",
                                                 "because": ["resource policy statement LambdaSecretsRunbookReadByFunction"]}
    assert verdict.evidence["other_functions"][0]["outcome"] == "denied"


def test_the_pinned_resource_policy_for_another_function_does_not_grant_this_one():
    ev = healthy(role=logs_only_role(), secret_policy=pinned_resource_policy(function="reports-api"))
    assert judge(ev).reason == f"no policy lets {SESSION_ARN} read the secret: the function cannot read it"


def test_with_the_pinned_policy_the_probe_session_is_expected_to_be_denied():
    ev = healthy(role=logs_only_role(), secret_policy=pinned_resource_policy(), simulation=SIMULATOR_MISSING,
                 probe=dict(PROBE_OK, own_secret="AccessDeniedException"))
    verdict = judge(ev)
    assert verdict.status == PASS and verdict.evidence["proven_by"] == ["static analysis", "live probe"]
    ev.probe = dict(PROBE_OK)  # the endpoint let another session of the role read it: the pin does not hold
    assert judge(ev).reason == ("live probe: a session of the role other than the function's read the secret, which "
                                "its policies deny")


def test_an_identity_grant_on_a_shared_role_fails_even_with_the_pinned_allow():
    ev = healthy(secret_policy={"Statement": pinned_resource_policy()["Statement"][:1]},
                 functions=[{"function": "reports-api", "role": ROLE_ARN}])
    assert judge(ev).status == FAIL  # the identity policy alone lets reports-api read it


def test_a_resource_policy_granting_everyone_fails():
    open_policy = {"Statement": [{"Sid": "Open", "Effect": "Allow", "Principal": "*",
                                  "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}
    verdict = judge(healthy(secret_policy=open_policy))
    assert verdict.status == FAIL
    assert "the secret's resource policy statement Open lets * read it" in verdict.reason


def test_a_condition_the_runbook_cannot_evaluate_warns():
    conditional = analysis({"inline:read": policy(allow("secretsmanager:GetSecretValue", SECRET_ARN,
                                                        Condition={"Bool": {"aws:SecureTransport": "true"}}))})
    verdict = judge(healthy(role=conditional, functions=[]))
    assert verdict.status == WARN
    assert verdict.reason == ("whether the function may read the secret depends on conditions the runbook cannot "
                              "evaluate (inline:read statement 1)")


def test_an_unreadable_policy_of_the_role_warns():
    unread = [{"policy": "inline:mystery", "reason": "GetRolePolicy failed: AccessDenied"}]
    verdict = judge(healthy(role=analysis(unreadable=unread)))
    assert (verdict.status, verdict.reason) == (WARN, "could not read: inline:mystery")


@pytest.mark.parametrize("source, label", [("role", "The role's policies"), ("secret", "The secret"),
                                           ("secret_policy", "The secret's resource policy"),
                                           ("key", "The secret's KMS key")])
def test_missing_evidence_fails_with_the_reason(source, label):
    verdict = judge(healthy(errors={source: "AccessDenied"}))
    assert (verdict.status, verdict.reason) == (FAIL, f"{label} could not be read: AccessDenied")


def test_no_secret_or_no_role_skips():
    assert judge(healthy(secret={})).status == SKIP
    assert judge(healthy(role=None)).status == SKIP


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
CMK = {"kms_key_id": KEY_ARN, "key_manager": "CUSTOMER", "key_arn": KEY_ARN, "key_state": "Enabled",
       "key_rotation_enabled": True}
VIA_SM = {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


def test_decrypt_on_the_secrets_customer_key_is_allowed_and_on_any_key_fails():
    read = allow("secretsmanager:GetSecretValue", SECRET_ARN)
    ok = analysis({"inline:read": policy(read, allow("kms:Decrypt", KEY_ARN, Condition=VIA_SM))})
    assert judge(healthy(role=ok, key=CMK)).status == PASS
    wide = analysis({"inline:read": policy(read, allow("kms:Decrypt", "*", Condition=VIA_SM))})
    verdict = judge(healthy(role=wide, key=CMK))
    assert verdict.status == FAIL and "kms grant on *, not only the secret's key" in verdict.reason
    assert judge(healthy(role=ok)).status == FAIL  # the AWS managed key needs no kms grant at all


# -- whole verdicts and the details each reason is built from ------------------------------------
def test_whole_evidence_of_a_pass():
    ev = healthy()
    verdict = judge(ev)
    assert verdict.evidence == {
        "role_arn": ROLE_ARN, "secret_arn": SECRET_ARN, "managed_policies": [], "inline_policies": ["read"],
        "grants": verdict.evidence["grants"], "secret_resource_policy": False,
        "function_read": {"outcome": "allowed", "because": ["inline:read statement 1"]},
        "other_functions": [{"function": "inventory-sync", "role": DECOY_ROLE_ARN, "outcome": "denied",
                             "because": ["no statement allows it"]}],
        "problems": [], "proven_by": ["static analysis", "policy simulator"], "simulation": ev.simulation,
        "live_probe": ev.probe}
    assert [(g["actions"], g["resources"]) for g in verdict.evidence["grants"]] == [
        (["secretsmanager:GetSecretValue"], [SECRET_ARN])]
    assert verdict.evidence_file is None
    named = analysis(managed=[{"name": "orders-read", "arn": "arn:aws:iam::123456789012:policy/orders-read",
                               "aws_managed": False, "version": "v1"}])
    assert judge(healthy(role=named, secret_policy={"Statement": []})).evidence["managed_policies"] == ["orders-read"]
    assert judge(healthy(secret_policy={"Statement": []})).evidence["secret_resource_policy"] is True


def test_a_role_with_a_path_is_named_by_its_last_part():
    path_role = "arn:aws:iam::123456789012:role/service-role/team/reports-role"
    verdict = judge(healthy(functions=[{"function": "reports-api", "role": path_role}], role_analyses={},
                            role_errors={path_role: "denied"}))
    assert verdict.reason == ("the secret may be read by other function(s): reports-api (role reports-role): its policies "
                              "could not be read (denied)")
    assert verdict.evidence["other_functions"] == [{"function": "reports-api", "role": path_role,
                                                    "outcome": "unknown"}]


def test_an_unlisted_role_error_reads_not_read_and_the_next_function_is_still_evaluated():
    ev = healthy(functions=[{"function": "first", "role": DECOY_ROLE_ARN}, {"function": "second", "role": ROLE_ARN}],
                 role_analyses={})
    verdict = judge(ev)
    assert verdict.status == FAIL
    assert verdict.reason == "the secret can be read by 1 other function(s): second (role orders-api-role)"
    ev.functions = ev.functions[:1]
    assert judge(ev).reason == ("the secret may be read by other function(s): first (role decoy-role): its policies could "
                                "not be read (not read)")


def test_other_functions_under_unevaluable_conditions_are_named_as_doubtful():
    conditional = analysis({"inline:c": policy(allow("secretsmanager:GetSecretValue", "*",
                                                     Condition={"Bool": {"aws:SecureTransport": "true"}}))},
                           role_arn=DECOY_ROLE_ARN, role_id="AROADECOYROLE00000001")
    verdict = judge(healthy(role_analyses={DECOY_ROLE_ARN: conditional}))
    assert verdict == Verdict(WARN, "the secret may be read by other function(s): inventory-sync (role decoy-role): under "
                                    "conditions the runbook cannot evaluate", verdict.evidence)


def test_long_lists_are_cut_readers_at_five_doubtful_at_three_problems_at_five():
    readers = [{"function": f"f{i}", "role": ROLE_ARN} for i in range(7)]
    assert judge(healthy(functions=readers)).reason == (
        "the secret can be read by 7 other function(s): f0 (role orders-api-role), f1 (role orders-api-role), f2 (role "
        "orders-api-role), f3 (role orders-api-role), f4 (role orders-api-role), and 2 more")
    doubtful = [{"function": f"d{i}", "role": DECOY_ROLE_ARN} for i in range(4)]
    assert judge(healthy(functions=doubtful, role_analyses={})).reason == (
        "the secret may be read by other function(s): d0 (role decoy-role): its policies could not be read (not read); "
        "d1 (role decoy-role): its policies could not be read (not read); d2 (role decoy-role): its policies could "
        "not be read (not read); and 1 more")
    wide = healthy(role=analysis({"inline:wide": policy(allow("*", "*"))}), functions=readers,
                   simulation={"available": True, "as_expected": False, "decisions": {"*": "allowed"}})
    verdict = judge(wide)
    assert len(verdict.evidence["problems"]) == 7
    assert verdict.reason.startswith("inline:wide: statement 1: wildcard action * (every action of every service); ")
    assert verdict.reason.endswith("; and 2 more")


def test_why_static_analysis_only_names_each_missing_confirmation():
    ev = healthy(simulation={}, probe={}, errors={"probe": "SimulatePrincipalPolicy on orders-api-role failed"})
    assert judge(ev).reason == ("proven by static analysis only (policy simulator: SimulatePrincipalPolicy on "
                                "orders-api-role failed; live probe: not performed)")
    assert judge(healthy(simulation={}, probe={"error": "AssumeRole denied"})).reason == (
        "proven by static analysis only (policy simulator: not asked; live probe: AssumeRole denied)")


def test_two_unreadable_policies_of_the_role_are_both_named():
    unread = [{"policy": "inline:a", "reason": "denied"}, {"policy": "inline:b", "reason": "denied"}]
    assert judge(healthy(role=analysis(unreadable=unread))).reason == "could not read: inline:a, inline:b"


def test_the_probe_session_is_judged_as_itself():
    """A resource policy that lets exactly the function and the probe's session read: the probe's read is expected."""
    both = {"Statement": [{"Sid": "ReadBy", "Effect": "Allow", "Principal": {"AWS": ROLE_ARN},
                           "Action": "secretsmanager:GetSecretValue", "Resource": "*",
                           "Condition": {"StringEquals": {"aws:userid": [f"{ROLE_ID}:{FUNCTION}",
                                                                         f"{ROLE_ID}:runbook-least-privilege-probe"]}}}]}
    ev = healthy(role=logs_only_role(), secret_policy=both, simulation=SIMULATOR_MISSING, probe=dict(PROBE_OK))
    assert judge(ev).status == PASS
    del ev.probe["session"]  # the probe's own session name is the default
    assert judge(ev).status == PASS


def test_the_pinned_deny_keeps_the_probe_session_out_even_with_an_identity_grant():
    ev = healthy(secret_policy=pinned_resource_policy(), simulation=SIMULATOR_MISSING, probe=dict(PROBE_OK))
    assert judge(ev).reason == ("live probe: a session of the role other than the function's read the secret, which "
                                "its policies deny")


def test_the_pinned_deny_keeps_another_function_on_the_same_role_out_even_with_an_identity_grant():
    ev = healthy(secret_policy=pinned_resource_policy(), functions=[{"function": "reports-api", "role": ROLE_ARN}])
    verdict = judge(ev)
    assert verdict.status == PASS
    assert verdict.evidence["other_functions"] == [{"function": "reports-api", "role": ROLE_ARN, "outcome": "denied",
                                                    "because": ["resource policy statement "
                                                                "LambdaSecretsRunbookOnlyThisFunction"]}]


def test_a_resource_policy_naming_another_functions_session_makes_it_a_reader():
    both = {"Statement": [{"Sid": "ReadBy", "Effect": "Allow", "Principal": {"AWS": ROLE_ARN},
                           "Action": "secretsmanager:GetSecretValue", "Resource": "*",
                           "Condition": {"StringEquals": {"aws:userid": [f"{ROLE_ID}:{FUNCTION}",
                                                                         f"{ROLE_ID}:reports-api"]}}}]}
    ev = healthy(role=logs_only_role(), secret_policy=both, functions=[{"function": "reports-api", "role": ROLE_ARN}])
    assert judge(ev).reason == "the secret can be read by 1 other function(s): reports-api (role orders-api-role)"


def test_a_kms_grant_is_only_allowed_on_a_customer_managed_key():
    read = allow("secretsmanager:GetSecretValue", SECRET_ARN)
    key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    ok = analysis({"inline:read": policy(read, allow("kms:Decrypt", key_arn))})
    aws_key = {"kms_key_id": key_arn, "key_manager": "AWS", "key_arn": key_arn, "key_state": "Enabled"}
    assert judge(healthy(role=ok, key=aws_key)).status == FAIL  # the AWS managed key needs no grant at all


def test_a_missing_function_configuration_fails_and_a_skip_has_no_evidence_file():
    assert judge(healthy(errors={"function": "denied"})) == Verdict(FAIL, "The function's configuration could not be "
                                                                          "read: denied")
    assert judge(healthy(secret={})) == Verdict(SKIP, "no secret in the ledger or SECRET_ID, or no role on the "
                                                      "function", evidence_file="")


def test_several_warnings_and_statements_are_joined():
    two = analysis({"inline:a": policy(allow("secretsmanager:GetSecretValue", SECRET_ARN,
                                             Condition={"Bool": {"aws:SecureTransport": "true"}}),
                                       allow("secretsmanager:GetSecretValue", SECRET_ARN,
                                             Condition={"Bool": {"aws:ViaAWSService": "false"}}))})
    assert judge(healthy(role=two, simulation=SIMULATOR_MISSING, probe=NO_PROBE)).reason == (
        "whether the function may read the secret depends on conditions the runbook cannot evaluate (inline:a "
        "statement 1, inline:a statement 2); proven by static analysis only (policy simulator: this endpoint has no "
        "policy simulator; live probe: the role's trust policy does not name the operator)")
    both = analysis({"inline:a": policy(allow("secretsmanager:GetSecretValue", SECRET_ARN)),
                     "inline:b": policy(allow("secretsmanager:GetSecretValue", SECRET_ARN))})
    assert judge(healthy(role=both)).reason.startswith("role orders-api-role reads exactly this secret (inline:a "
                                                       "statement 1, inline:b statement 1); ")


def test_the_secrets_manager_client_read_only_policy_on_the_functions_role_fails_by_name():
    """AWS's managed client policy reads every secret of the account: not least privilege, even unreadable."""
    arn = "arn:aws:iam::aws:policy/AWSSecretsManagerClientReadOnlyAccess"
    role = analysis(managed=[{"name": "AWSSecretsManagerClientReadOnlyAccess", "arn": arn, "aws_managed": True,
                              "version": ""}], unreadable=[{"policy": arn, "reason": "denied"}])
    verdict = judge(healthy(role=role))
    assert verdict.status == FAIL
    assert verdict.reason.startswith("admin managed policy AWSSecretsManagerClientReadOnlyAccess attached")
