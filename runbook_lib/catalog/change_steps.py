"""The implementation's step assertions: ``change-applied`` and one ``change-<step>`` per step.

Each is judged by :func:`runbook_lib.catalog.step_assertion.judge` from the step's read-back
of AWS after it applied (see :mod:`runbook_lib.implementation`).
"""

from __future__ import annotations

from . import CheckSpec

_PHASES = ("change",)


def _step(step: str, title: str, proves: str, controls: tuple[str, ...], permissions: tuple[str, ...]) -> CheckSpec:
    return CheckSpec(id=f"change-{step}", title=title, proves=proves, controls=controls, phases=_PHASES,
                     permissions=permissions)


SPECS = (
    CheckSpec(id="change-applied", title="The change was applied and every step asserted",
              proves="Stands in for the step checks while only a plan was made: its SKIP says nothing was "
                     "changed (no snapshot in the ledger).",
              controls=("CM-3",), phases=_PHASES),
    _step("snapshot", "Publish a version of the function as it is, for backout",
          "GetFunctionConfiguration of the snapshot version returns the CodeSha256 the ledger recorded and "
          "every variable that moves: backout has the pre-change function to restore.",
          ("CP-10",), ("lambda:GetFunctionConfiguration",)),
    _step("role", "Create a dedicated execution role",
          "GetRole shows a trust policy naming only lambda.amazonaws.com (and edgelambda for Lambda@Edge) and "
          "the role's own logging policy.",
          ("AC-6",), ("iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy")),
    _step("kms-key", "Create a customer managed KMS key for the secret",
          "DescribeKey of the runbook's alias returns an Enabled key.",
          ("SC-12", "SC-28"), ("kms:DescribeKey",)),
    _step("secret", "Create or update the secret with the migrated variables",
          "DescribeSecret shows the runbook's tags and GetSecretValue (compared in memory, never shown) equals "
          "the moved variables of the function.",
          ("SC-28", "IA-5"), ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")),
    _step("grant", "Only this function reads the secret: its resource policy, pinned to the function's session",
          "GetResourcePolicy of the secret shows the runbook's two statements: GetSecretValue and DescribeSecret "
          "allowed to the function's role only as aws:userid <role id>:<function>, and GetSecretValue denied to "
          "every other session of that role.",
          ("AC-6",), ("secretsmanager:GetResourcePolicy", "iam:GetRole")),
    _step("wrapper-layer", "The runbook's exec-wrapper layer (strategy wrapper)",
          "GetLayerVersionByArn of the recorded version returns the CodeSha256 of this build of the wrapper.",
          ("CM-3",), ("lambda:GetLayerVersion",)),
    _step("function", "Function: variables out, SECRET_ID in, the strategy's code or wrapper",
          "GetFunctionConfiguration shows no moved variable and no moved value (compared in memory with the "
          "secret), SECRET_ID set to the secret's ARN, the wrapper and its layer (strategy wrapper, CodeSha256 "
          "unchanged since the snapshot) or the handler and CodeSha256 the runbook deployed.",
          ("IA-5(7)",), ("lambda:GetFunctionConfiguration", "secretsmanager:GetSecretValue")),
    _step("code", "Secrets hard-coded in the code: what only a code change removes",
          "The scanner finds no first-party secret in the deployed package (GetFunction download); with strategy "
          "wrapper, which changes no code, findings are left for the code's owner (WARN), with file and line.",
          ("IA-5(7)",), ("lambda:GetFunction",)),
    _step("access-keys", "Hardcoded AWS access keys: the function uses its role now",
          "ListAccessKeys shows every hardcoded key of an IAM user of this account Inactive (lab); on AWS the "
          "keys are listed for their owner (WARN).",
          ("IA-5(7)", "IA-5"), ("iam:ListUsers", "iam:ListAccessKeys")),
    _step("edge", "Lambda@Edge: publish a version and associate it as viewer-request",
          "GetDistributionConfig shows the published version on the default behaviour's viewer-request.",
          ("CM-3",), ("cloudfront:GetDistributionConfig",)),
)
