"""lambda-secrets-runbook wrapper: fetch the function's secret, print it as shell assignments.

Run by ``exec-wrapper`` with the runtime's own interpreter, once per execution environment,
before the runtime starts. It reads ``SECRET_ID``, calls ``GetSecretValue`` with the
function's role (boto3 as the Python runtime ships it), and writes one ``export NAME='value'``
line per key of the secret's JSON object to stdout, which is a pipe to the wrapper's shell,
never a log. Any failure is one line on stderr naming the call and the permission, never a
value, and exit status 1: the function does not start without its secrets.

Standard library and boto3 only; it never imports the runbook.
"""

import json
import os
import re
import shlex
import sys

PREFIX = "lambda-secrets-runbook wrapper"
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Variables Lambda reserves or that decide how the runtime starts: a secret never sets them.
RESERVED = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_LAMBDA_EXEC_WRAPPER",
    "LAMBDA_SECRETS_RUNBOOK_NEXT_WRAPPER", "SECRET_ID", "PATH", "LD_LIBRARY_PATH", "LD_PRELOAD",
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "NODE_PATH", "NODE_OPTIONS", "AWS_ENDPOINT_URL",
})
PERMISSION = ("secretsmanager:GetSecretValue on the secret for this function's role session "
              "(and kms:Decrypt via Secrets Manager for a customer managed key)")


def fail(message):
    print(f"{PREFIX}: {message}; the function cannot start without its secret", file=sys.stderr, flush=True)
    sys.exit(1)


def fetch(secret_id):
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        fail("boto3 is not importable with this runtime's interpreter")
    try:
        response = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Unknown")
        fail(f"GetSecretValue on {secret_id} failed: {code} (needs {PERMISSION})")
    except BotoCoreError as exc:  # no credentials, no endpoint: its class says which
        fail(f"GetSecretValue on {secret_id} failed: {type(exc).__name__} (needs {PERMISSION})")
    raw = response.get("SecretString")
    if raw is None:
        binary = response.get("SecretBinary") or b""
        raw = binary.decode("utf-8", "replace") if isinstance(binary, bytes) else str(binary)
    return raw


def assignments(secret_id, raw):
    try:
        values = json.loads(raw)
    except ValueError:
        fail(f"the secret {secret_id} is not JSON")
    if not isinstance(values, dict):
        fail(f"the secret {secret_id} is not a JSON object of variable names")
    lines = []
    for name in sorted(values):
        if not NAME.match(name) or name in RESERVED:
            fail(f"the secret {secret_id} holds the key {name!r}, which is not a variable the wrapper may set")
        value = values[name]
        if not isinstance(value, str):
            value = json.dumps(value)
        if "\x00" in value:
            fail(f"the value of {name} holds a NUL byte, which no environment variable can")
        lines.append(f"export {name}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"


def main():
    secret_id = os.environ.get("SECRET_ID", "")
    if not secret_id:
        fail("SECRET_ID is not set")
    sys.stdout.write(assignments(secret_id, fetch(secret_id)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
