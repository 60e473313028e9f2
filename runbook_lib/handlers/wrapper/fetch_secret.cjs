// lambda-secrets-runbook wrapper: fetch the function's secret, print it as shell assignments.
//
// Run by exec-wrapper with the runtime's own node, once per execution environment, before the
// runtime starts. It reads SECRET_ID, calls GetSecretValue with the function's role (the AWS SDK
// for JavaScript v3 the Node.js runtime ships), and writes one "export NAME='value'" line per key
// of the secret's JSON object to stdout, a pipe to the wrapper's shell, never a log. Any failure
// is one line on stderr naming the call and the permission, never a value, and exit status 1.
"use strict";

const PREFIX = "lambda-secrets-runbook wrapper";
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Variables Lambda reserves or that decide how the runtime starts: a secret never sets them.
const RESERVED = new Set([
  "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
  "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
  "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
  "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
  "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "AWS_LAMBDA_EXEC_WRAPPER",
  "LAMBDA_SECRETS_RUNBOOK_NEXT_WRAPPER", "SECRET_ID", "PATH", "LD_LIBRARY_PATH", "LD_PRELOAD",
  "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "NODE_PATH", "NODE_OPTIONS", "AWS_ENDPOINT_URL",
]);
const PERMISSION = "secretsmanager:GetSecretValue on the secret for this function's role session " +
  "(and kms:Decrypt via Secrets Manager for a customer managed key)";

function fail(message) {
  process.stderr.write(`${PREFIX}: ${message}; the function cannot start without its secret\n`);
  process.exit(1);
}

// POSIX single quotes: every byte but NUL stands for itself; a quote is closed, escaped, reopened.
function quote(value) {
  return "'" + value.replace(/'/g, "'\\''") + "'";
}

function assignments(secretId, raw) {
  let values;
  try {
    values = JSON.parse(raw);
  } catch (error) {
    fail(`the secret ${secretId} is not JSON`);
  }
  if (values === null || typeof values !== "object" || Array.isArray(values)) {
    fail(`the secret ${secretId} is not a JSON object of variable names`);
  }
  const lines = [];
  for (const name of Object.keys(values).sort()) {
    if (!NAME.test(name) || RESERVED.has(name)) {
      fail(`the secret ${secretId} holds the key ${JSON.stringify(name)}, which is not a variable the wrapper may set`);
    }
    const value = typeof values[name] === "string" ? values[name] : JSON.stringify(values[name]);
    if (value.includes("\u0000")) {
      fail(`the value of ${name} holds a NUL byte, which no environment variable can`);
    }
    lines.push(`export ${name}=${quote(value)}`);
  }
  return lines.join("\n") + "\n";
}

async function main() {
  const secretId = process.env.SECRET_ID || "";
  if (!secretId) {
    fail("SECRET_ID is not set");
  }
  let sdk;
  try {
    sdk = require("@aws-sdk/client-secrets-manager");
  } catch (error) {
    fail("@aws-sdk/client-secrets-manager is not available in this runtime");
  }
  let response;
  try {
    response = await new sdk.SecretsManagerClient({}).send(new sdk.GetSecretValueCommand({ SecretId: secretId }));
  } catch (error) {
    const code = (error && (error.name || error.Code)) || "Unknown";
    fail(`GetSecretValue on ${secretId} failed: ${code} (needs ${PERMISSION})`);
  }
  const raw = response.SecretString !== undefined ? response.SecretString
    : Buffer.from(response.SecretBinary || []).toString("utf8");
  process.stdout.write(assignments(secretId, raw));
}

main().catch((error) => fail(`the fetch stopped: ${(error && error.name) || "Error"}`));
