"""``secret-encrypted`` on fabricated key and rotation settings."""

from evidence_factory import SECRET_ARN, healthy

from runbook_lib.catalog import FAIL, PASS, SKIP, WARN, Verdict
from runbook_lib.catalog.secret_encrypted import judge

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def cmk(**changes):
    return {"kms_key_id": KEY_ARN, "key_manager": "CUSTOMER", "key_arn": KEY_ARN, "key_state": "Enabled",
            "key_rotation_enabled": True, **changes}


def test_aws_managed_key_with_rotation_passes():
    verdict = judge(healthy())
    assert (verdict.status, verdict.reason) == (PASS, "encrypted with alias/aws/secretsmanager (default) (AWS managed "
                                                      "key), automatic rotation on")
    assert verdict.evidence["secret_arn"] == SECRET_ARN and verdict.evidence["rotation_enabled"] is True


def test_customer_key_with_both_rotations_passes_naming_the_key():
    verdict = judge(healthy(key=cmk()))
    assert verdict.reason == f"encrypted with {KEY_ARN} (CUSTOMER managed key), automatic rotation on"


def test_a_disabled_or_pending_key_fails():
    for state in ("Disabled", "PendingDeletion"):
        verdict = judge(healthy(key=cmk(key_state=state)))
        assert (verdict.status, verdict.reason) == (FAIL, f"the secret's KMS key is {state}: the secret cannot be "
                                                          "decrypted")


def test_rotation_off_warns_for_the_secret_and_for_the_key():
    ev = healthy(key=cmk(key_rotation_enabled=False))
    ev.secret["RotationEnabled"] = False
    verdict = judge(ev)
    assert verdict.status == WARN
    assert verdict.reason == ("automatic rotation is not enabled on the secret: the migrated values stay valid until "
                              "rotated at their source (close-out); yearly rotation of the customer managed key is off")
    assert judge(healthy(key=cmk(key_rotation_enabled=False))).reason == ("yearly rotation of the customer managed "
                                                                          "key is off")


def test_missing_secret_or_key_fails_and_no_secret_skips():
    assert judge(healthy(errors={"key": "DescribeKey denied"})).reason == ("The secret's KMS key could not be read: "
                                                                           "DescribeKey denied")
    assert judge(healthy(errors={"secret": "denied"})).status == FAIL
    assert (judge(healthy(secret={})).status, judge(healthy(secret={})).reason) == (
        SKIP, "no secret in the ledger or SECRET_ID")


# -- whole verdicts --------------------------------------------------------------------------------
def test_whole_verdict_of_a_pass_on_the_aws_managed_key():
    ev = healthy()
    ev.secret["LastRotatedDate"] = "2026-01-01 09:00:00+00:00"
    assert judge(ev) == Verdict(
        PASS, "encrypted with alias/aws/secretsmanager (default) (AWS managed key), automatic rotation on",
        {"secret_arn": SECRET_ARN, "kms_key_id": "alias/aws/secretsmanager (default)", "key_manager": "AWS",
         "key_arn": "", "key_state": "", "key_rotation_enabled": None, "ledger_kms_key": "aws/secretsmanager",
         "rotation_enabled": True, "rotation_rules": {"AutomaticallyAfterDays": 30},
         "last_rotated": "2026-01-01 09:00:00+00:00"})


def test_whole_verdicts_of_a_failure_and_a_warning():
    disabled = judge(healthy(key=cmk(key_state="Disabled")))
    assert disabled.evidence["key_state"] == "Disabled" and disabled.evidence["key_arn"] == KEY_ARN
    assert disabled.evidence_file is None
    plain = healthy(secret={"ARN": SECRET_ARN, "Name": "lambda/orders-api/config"})
    verdict = judge(plain)
    assert verdict.status == WARN and verdict.evidence_file is None
    assert (verdict.evidence["rotation_enabled"], verdict.evidence["rotation_rules"],
            verdict.evidence["last_rotated"]) == (False, {}, "")
    ev = healthy()
    ev.secret["LastRotatedDate"] = None
    assert judge(ev).evidence["last_rotated"] == ""


def test_a_key_named_only_by_its_id_and_a_missing_key_state():
    verdict = judge(healthy(key={"kms_key_id": "alias/orders", "key_manager": "CUSTOMER"}))
    assert (verdict.status, verdict.reason) == (PASS, "encrypted with alias/orders (CUSTOMER managed key), automatic "
                                                      "rotation on")


def test_the_key_arn_is_named_before_the_key_id():
    verdict = judge(healthy(key=cmk(kms_key_id="alias/orders")))
    assert verdict.reason == f"encrypted with {KEY_ARN} (CUSTOMER managed key), automatic rotation on"
