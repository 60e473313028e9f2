"""KMS as the services that use it on a caller's behalf: Secrets Manager and Lambda.

On AWS, reading a secret encrypted under a customer managed key is two authorisations:
``secretsmanager:GetSecretValue`` on the secret, then the ``kms:Decrypt`` that Secrets
Manager makes *with the caller's credentials* (forward access), carrying
``kms:ViaService = secretsmanager.<region>.amazonaws.com`` and the encryption context
``{"SecretARN": ..., "SecretVersionId": ...}``. Writing a value is the same with
``kms:GenerateDataKey``. Lambda shows a function's environment variables encrypted under a
customer managed key only to callers who may ``kms:Decrypt`` it via
``lambda.<region>.amazonaws.com`` with the context ``{"aws:lambda:FunctionArn": ...}``;
anyone else gets ``Environment.Error`` and no values.

:func:`via_service` is that KMS authorisation (key policy plus identity policies, see
:func:`.iam_enforcement.decide`); :func:`secrets_manager_kms` and
:func:`hide_environment` apply it where the two services do. A secret under the AWS
managed key ``aws/secretsmanager`` is judged against that key's own policy (every
principal of the account, via Secrets Manager), so an explicit identity-policy deny on
``kms:Decrypt`` still stops it, as on AWS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .iam_enforcement import Decision, decide
from .identity import Caller
from .operations import ApiCall
from .request_keys import Arrival, request_context
from .resources import AWS_MANAGED_SECRETS_KEY, aws_managed_secrets_key_policy, kms_key, secret_arn

#: Secrets Manager calls that make Secrets Manager use the secret's key, and the KMS action.
SECRETS_KMS_ACTIONS = {"GetSecretValue": "kms:Decrypt", "CreateSecret": "kms:GenerateDataKey",
                       "PutSecretValue": "kms:GenerateDataKey", "UpdateSecret": "kms:GenerateDataKey"}
#: Lambda answers that carry function configurations (and so environment variables).
LAMBDA_CONFIG_OPERATIONS = {"GetFunction", "GetFunctionConfiguration", "ListFunctions",
                            "ListVersionsByFunction", "PublishVersion"}
KMS_DENIED_BY_SECRETS_MANAGER = "Access to KMS is not allowed"


@dataclass(frozen=True)
class KmsUse:
    """One use of a KMS key by a service for a caller: what CloudTrail records as a KMS event."""

    action: str
    key_arn: str
    service: str
    encryption_context: dict
    decision: Decision
    key_state: str = "Enabled"


def via_service(caller: Caller, key_id: str | None, action: str, service: str, region: str,
                encryption_context: dict, arrival: Arrival | None = None, judge: bool = True) -> KmsUse:
    """Whether ``service`` may use the key for ``caller`` (``key_id`` ``None``: the AWS managed key).

    ``judge=False`` (IAM enforcement off) allows the use without evaluating a policy: only
    the key's state, read from moto, can still refuse it.
    """
    account = caller.account_id
    key = kms_key(account, region, key_id) if key_id and key_id not in (AWS_MANAGED_SECRETS_KEY,) else None
    managed = key is None and (not key_id or key_id == AWS_MANAGED_SECRETS_KEY)
    key_arn = key.arn if key is not None else (
        f"arn:aws:kms:{region}:{account}:{AWS_MANAGED_SECRETS_KEY}" if managed else str(key_id))
    state = "Enabled" if key is None else str(getattr(key, "key_state", "Enabled"))
    if not judge:
        return KmsUse(action, key_arn, service, dict(encryption_context), Decision(True, action, key_arn), state)
    call = ApiCall("kms", action.split(":", 1)[1], {"KeyId": key_arn, "EncryptionContext": encryption_context},
                   region)
    context = request_context(caller, call, arrival, "kms").with_values(
        {"kms:ViaService": f"{service}.{region}.amazonaws.com", "aws:ViaAWSService": "true"})
    context.values.pop("aws:sourceip", None)  # a forward-access request comes from the service's address
    if managed:
        decision = decide(caller, action, key_arn, context, resource_policy=[aws_managed_secrets_key_policy(
            account, region)], resource_policy_required=True)
    elif key is None:  # the key does not exist: nothing allows using it
        decision = Decision(False, action, key_arn, False, "resource")
    else:
        decision = decide(caller, action, key_arn, context)
    return KmsUse(action, key_arn, service, dict(encryption_context), decision, state)


def secrets_manager_kms(caller: Caller, call: ApiCall, arrival: Arrival | None = None,
                        judge: bool = True) -> KmsUse | None:
    """The KMS use Secrets Manager makes for ``call`` (``None``: the call uses no key); ``judge`` as :func:`via_service`."""
    from moto.secretsmanager.models import secretsmanager_backends

    action = SECRETS_KMS_ACTIONS.get(call.operation)
    params = call.params or {}
    if action is None or (action == "kms:GenerateDataKey" and not
                          ("SecretString" in params or "SecretBinary" in params)):
        return None
    secret = None
    try:
        secret = secretsmanager_backends[caller.account_id][call.region].secrets.get(
            params.get("SecretId") or params.get("Name") or "")
    except Exception:  # no backend for that account or region: moto answers NotFound
        secret = None
    if call.operation != "CreateSecret" and secret is None:
        return None  # moto answers ResourceNotFoundException
    key_id = params.get("KmsKeyId") if call.operation in ("CreateSecret", "UpdateSecret") else None
    key_id = key_id or (getattr(secret, "kms_key_id", None) if secret is not None else None)
    arn = secret.arn if secret is not None else secret_arn(caller.account_id, call.region, params.get("Name", ""))
    version = params.get("VersionId") or params.get("ClientRequestToken") or \
        (getattr(secret, "default_version_id", "") if secret is not None else "")
    return via_service(caller, key_id, action, "secretsmanager", call.region,
                       {"SecretARN": arn, "SecretVersionId": version or ""}, arrival, judge=judge)


def secrets_manager_refusal(use: KmsUse) -> tuple[str, str] | None:
    """``(code, message)`` Secrets Manager answers when its KMS use fails (``None``: it did not)."""
    if use.key_state != "Enabled":
        if use.action == "kms:Decrypt":
            return "DecryptionFailure", ("Secrets Manager can't decrypt the protected secret text using the "
                                         f"provided KMS key: the key is {use.key_state}.")
        return "EncryptionFailure", ("Secrets Manager can't encrypt the protected secret text using the "
                                     f"provided KMS key: the key is {use.key_state}.")
    if not use.decision.allowed:
        return "AccessDenied", KMS_DENIED_BY_SECRETS_MANAGER
    return None


def hide_environment(caller: Caller, call: ApiCall, payload: bytes,
                     arrival: Arrival | None = None) -> tuple[bytes, list[KmsUse]]:
    """Lambda's answer with ``Environment.Error`` in place of the variables the caller may not decrypt."""
    try:
        document = json.loads(payload)
    except ValueError:
        return payload, []
    configs = []
    if isinstance(document, dict):
        configs = ([document.get("Configuration")] if "Configuration" in document else
                   document.get("Functions") or document.get("Versions") or [document])
    uses = []
    for config in configs:
        if not isinstance(config, dict) or not config.get("KMSKeyArn"):
            continue
        if not (config.get("Environment") or {}).get("Variables"):
            continue
        function = ":".join(str(config.get("FunctionArn", "")).split(":")[:7])
        use = via_service(caller, config["KMSKeyArn"], "kms:Decrypt", "lambda", call.region,
                          {"aws:lambda:FunctionArn": function}, arrival)
        uses.append(use)
        if not use.decision.allowed:
            config["Environment"] = {"Error": {"ErrorCode": "AccessDeniedException", "Message": (
                "Lambda was unable to decrypt the environment variables because KMS access was denied. "
                "Please check the function's AWS KMS key settings. KMS Exception: AccessDeniedException "
                f"KMS Message: {use.decision.message(caller)}")}}
    if not uses:
        return payload, []
    return json.dumps(document).encode(), uses
