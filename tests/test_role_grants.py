"""A dedicated role copies only the grants this function needs: never a read of another function's secret."""

from runbook_lib import role_grants as R

OURS = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lambda/orders/config-AbCdEf"
THEIRS = "arn:aws:secretsmanager:us-east-1:123456789012:secret:lambda/billing/config-XyZ123"


def policy(*statements):
    return {"Version": "2012-10-17", "Statement": list(statements)}


def read(resource):
    return {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": resource}


def test_references_are_secret_arns_and_secret_names_in_the_remaining_variables():
    env = {"DB_SECRET": "prod/db", "OTHER": OURS, "LOG_LEVEL": "INFO", "SECRET_URL": "arn:aws:s3:::x"}
    assert R.secret_references(env, "aws", "us-east-1", "123456789012") == sorted(
        [OURS, "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-??????"])


def test_another_functions_secret_is_dropped_and_said():
    copied, lines = R.narrowed_copy("shared", policy(read(THEIRS), {"Effect": "Allow", "Action": "s3:GetObject",
                                                                     "Resource": "*"}), [OURS])
    assert copied == policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert lines == [f"shared: statement 1 dropped ({THEIRS} dropped): it reads no secret this function uses"]


def test_a_wildcard_is_narrowed_to_this_functions_secrets_and_ours_kept():
    copied, lines = R.narrowed_copy("p", policy(read("arn:aws:secretsmanager:*:*:secret:lambda/*")), [OURS])
    assert copied["Statement"][0]["Resource"] == OURS and "narrowed to" in lines[0]
    copied, lines = R.narrowed_copy("p", policy(read([OURS, THEIRS])), [OURS])
    assert copied["Statement"][0]["Resource"] == OURS and lines == [f"p: statement 1: {THEIRS} dropped"]


def test_broader_grants_are_kept_and_the_deny_takes_their_secret_reads_away():
    broad = {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}
    copied, lines = R.narrowed_copy("p", policy(broad), [OURS])
    assert copied == policy(broad) and R.DENY_POLICY_NAME in lines[0]
    deny = R.deny_other_secrets([OURS])["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["NotResource"] == [OURS]
    assert R.deny_other_secrets([])["Statement"][0]["Resource"] == "*"


def test_not_action_grants_are_dropped_and_non_reads_untouched():
    copied, lines = R.narrowed_copy("p", policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}), [OURS])
    assert copied is None and "NotAction" in lines[0]
    assert R.reads_secrets({"Effect": "Deny", "Action": "secretsmanager:GetSecretValue"}) is False
    assert R.reads_secrets({"Effect": "Allow", "NotAction": ["secretsmanager:GetSecretValue",
                                                            "secretsmanager:BatchGetSecretValue"]}) is False
