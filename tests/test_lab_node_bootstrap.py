"""Node.js functions in the lab: module formats, handler styles, the v3 SDK, logs, errors.

Only Node 20 is on the build machine: nodejs18.x, nodejs20.x and nodejs22.x all run on it
(docs/lab.md). Where ``node`` is missing every test here skips with one line.
"""

import json
import re
import time
from datetime import date

import pytest

from lab_functions import deploy, invoke, log_messages, make_role, needs_node, tail, unique
from runbook_lib.lab import runtimes

pytestmark = needs_node
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t[0-9a-f-]{36}\t(INFO|WARN|ERROR|DEBUG)\t")


def _blocked(runtime: str) -> bool:
    return runtimes.lifecycle_refusal(runtime, creating=True, today=date.today()) is not None


#: the newest Node.js runtime the lab runs that AWS still lets one create
NEWEST = next((r for r in reversed(runtimes.NODEJS_RUNTIMES) if not _blocked(r)), runtimes.NODEJS_RUNTIMES[-1])


def _creatable(runtime: str) -> str:
    if _blocked(runtime):
        pytest.skip(f"AWS blocks creating {runtime} functions from {runtimes.LIFECYCLE[runtime][1]}")
    return runtime


def _node(lab, files: dict, runtime: str = NEWEST, handler: str = "index.handler", **config) -> str:
    return deploy(lab, files, Runtime=_creatable(runtime), Handler=handler, **config)


SECRETS_CJS = """
const { SecretsManagerClient, GetSecretValueCommand } = require('@aws-sdk/client-secrets-manager');
const client = new SecretsManagerClient({});
let invocations = 0;
exports.handler = async (event, context) => {
  invocations += 1;
  const secret = await client.send(new GetSecretValueCommand({ SecretId: process.env.SECRET_ID }));
  console.log('fetched secret of length', secret.SecretString.length);
  return { invocations, length: secret.SecretString.length, runtime: process.env.AWS_EXECUTION_ENV,
           request: context.awsRequestId, name: context.functionName };
};
"""


@pytest.mark.parametrize("runtime", runtimes.NODEJS_RUNTIMES)
def test_commonjs_handler_reads_its_environment_calls_secrets_manager_under_its_role_and_logs(lab, runtime):
    secret_id = unique("node/secret")
    secret_arn = lab.client("secretsmanager").create_secret(Name=secret_id, SecretString="v" * 24)["ARN"]
    role = make_role(lab.client("iam"), policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}]})
    name = _node(lab, {"index.js": SECRETS_CJS}, runtime=runtime, role=role,
                 Environment={"Variables": {"SECRET_ID": secret_id}})
    first, seen = invoke(lab, name)
    second, again = invoke(lab, name)
    assert "FunctionError" not in first
    assert seen["length"] == 24 and seen["runtime"] == f"AWS_Lambda_{runtime}" and seen["name"] == name
    assert seen["request"] == first["ResponseMetadata"]["RequestId"]
    assert [seen["invocations"], again["invocations"]] == [1, 2], "the warm environment was not reused"
    events = lab.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"}])["Events"]
    callers = {json.loads(e["CloudTrailEvent"])["userIdentity"]["arn"] for e in events
               if json.loads(e["CloudTrailEvent"])["requestParameters"]["secretId"] == secret_id}
    assert callers == {f"arn:aws:sts::123456789012:assumed-role/{role.split('/')[-1]}/{name}"}
    messages = log_messages(lab, name)
    logged = [m for m in messages if "fetched secret of length 24" in m]
    assert len(logged) == 2 and all(LINE.match(m) for m in logged)
    assert messages[0] == f"INIT_START Runtime Version: nodejs:{runtimes.language_version(runtime)}.lab"
    assert sum(m.startswith("REPORT RequestId: ") for m in messages) == 2


ESM = """
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
const sts = new STSClient({});
export const handler = async () => (await sts.send(new GetCallerIdentityCommand({}))).Arn;
"""


SECRETS_ESM = """
import { SecretsManagerClient, GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
const client = new SecretsManagerClient({});
let invocations = 0;
export const handler = async (event, context) => {
  invocations += 1;
  if (event.fail) throw new TypeError('no order id');
  if (event.hang) await new Promise((resolve) => setTimeout(resolve, 30000));
  const secret = await client.send(new GetSecretValueCommand({ SecretId: process.env.SECRET_ID }));
  console.log('fetched secret of length', secret.SecretString.length);
  return { invocations, length: secret.SecretString.length, runtime: process.env.AWS_EXECUTION_ENV };
};
"""


@pytest.mark.parametrize("files", [
    {"index.mjs": SECRETS_ESM},
    {"index.js": SECRETS_ESM, "package.json": '{"type": "module"}'},
], ids=["mjs", "js-type-module"])
def test_es_module_handler_reads_its_environment_calls_secrets_manager_logs_times_out_and_errors(lab, files):
    secret_id = unique("node/esm-secret")
    secret_arn = lab.client("secretsmanager").create_secret(Name=secret_id, SecretString="e" * 16)["ARN"]
    role = make_role(lab.client("iam"), policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}]})
    name = _node(lab, files, role=role, Timeout=1, Environment={"Variables": {"SECRET_ID": secret_id}})
    answers = [invoke(lab, name)[1], invoke(lab, name)[1]]
    assert [a["invocations"] for a in answers] == [1, 2], "the warm environment was not reused"
    assert answers[0]["length"] == 16 and answers[0]["runtime"] == f"AWS_Lambda_{NEWEST}"
    response, error = invoke(lab, name, {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("TypeError", "no order id")
    assert error["trace"][0] == "TypeError: no order id"
    assert invoke(lab, name)[1]["invocations"] == 4, "a handled error keeps the environment"
    response, error = invoke(lab, name, {"hang": True})
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Sandbox.Timedout"
    assert invoke(lab, name)[1]["invocations"] == 1, "a timed-out environment must start fresh"
    messages = log_messages(lab, name)
    assert sum("fetched secret of length 16" in m and bool(LINE.match(m)) for m in messages) == 4
    assert any("Task timed out after 1.00 seconds" in m for m in messages)


@pytest.mark.parametrize("files", [
    {"index.mjs": ESM},
    {"index.js": ESM, "package.json": '{"type": "module"}'},
], ids=["mjs", "js-type-module"])
def test_es_module_handlers_import_the_sdk(lab, files):
    name = _node(lab, files)
    response, arn = invoke(lab, name)
    assert "FunctionError" not in response and arn.endswith(f"/{name}")


def test_cjs_and_nested_handlers_load(lab):
    name = _node(lab, {"lib/api.cjs": "module.exports.routes = { get: async (e) => e.id };\n"},
                 handler="lib/api.routes.get")
    assert invoke(lab, name, {"id": 7})[1] == 7


def test_a_callback_handler_answers_once_the_event_loop_is_empty_unless_told_not_to_wait(lab):
    code = """
exports.handler = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => console.log('timer fired'), 300);
  callback(null, { waited: event.wait });
};
"""
    name = _node(lab, {"index.js": code})
    started = time.monotonic()
    response, answer = invoke(lab, name, {"wait": True}, LogType="Tail")
    assert answer == {"waited": True} and time.monotonic() - started >= 0.3
    assert "timer fired" in tail(response)
    response, answer = invoke(lab, name, {"wait": False}, LogType="Tail")
    assert answer == {"waited": False} and "timer fired" not in tail(response)


def test_context_succeed_and_a_plain_handler_that_never_answers(lab):
    code = """
exports.legacy = (event, context) => { context.succeed({ legacy: true }); };
exports.silent = (event, context) => { console.log('no answer'); };
exports.stuck = async () => new Promise(() => {});
"""
    files = {"index.js": code}
    assert invoke(lab, _node(lab, files, handler="index.legacy"))[1] == {"legacy": True}
    assert invoke(lab, _node(lab, files, handler="index.silent"))[1] is None
    response, error = invoke(lab, _node(lab, files, handler="index.stuck"))
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.NodeJsExit"


def test_a_thrown_error_comes_back_with_type_message_and_trace(lab):
    code = "class OrderError extends Error { constructor(m) { super(m); this.name = 'OrderError'; } }\n" \
           "exports.handler = async () => { throw new OrderError('order total is negative'); };\n"
    name = _node(lab, {"index.js": code})
    response, error = invoke(lab, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "OrderError" and error["errorMessage"] == "order total is negative"
    assert error["trace"][0] == "OrderError: order total is negative" and any("index.js" in t for t in error["trace"])
    [line] = [m for m in tail(response).splitlines() if "Invoke Error" in m]
    assert LINE.match(line) and "\tERROR\tInvoke Error \t{" in line
    assert json.loads(line.split("Invoke Error \t", 1)[1])["errorType"] == "OrderError"


def test_an_uncaught_exception_ends_the_environment(lab):
    code = """
let invocations = 0;
exports.handler = async (event) => {
  invocations += 1;
  if (event.crash) setTimeout(() => { throw new Error('crashed later'); }, 10);
  return invocations;
};
"""
    name = _node(lab, {"index.js": code})
    assert invoke(lab, name)[1] == 1
    response, error = invoke(lab, name, {"crash": True})
    if "FunctionError" not in response:  # the answer went out before the timer fired
        time.sleep(0.2)
    assert invoke(lab, name)[1] == 1, "a crashed environment must start fresh"


def test_a_missing_commonjs_module_is_an_import_module_error_and_es_modules_keep_nodes_error(lab):
    name = _node(lab, {"index.js": "const pandas = require('pandas');\nexports.handler = async () => 1;\n"})
    response, error = invoke(lab, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"].startswith("Error: Cannot find module 'pandas'\nRequire stack:")
    log = tail(response)
    assert "\tundefined\tERROR\tUncaught Exception \t{\"errorType\":\"Runtime.ImportModuleError\"" in log
    assert "Status: error\tError Type: Runtime.ImportModuleError" in log
    name = _node(lab, {"index.mjs": "import pandas from 'pandas';\nexport const handler = async () => 1;\n"})
    _, error = invoke(lab, name)
    assert error["errorType"] == "Error" and error["errorMessage"].startswith("Cannot find package 'pandas'")


@pytest.mark.parametrize("handler, message", [
    ("index.nothere", "index.nothere is undefined or not exported"),
    ("index.value", "index.value is not a function"),
])
def test_a_handler_that_is_not_exported_is_handler_not_found(lab, handler, message):
    name = _node(lab, {"index.js": "exports.value = 42;\n"}, handler=handler)
    _, error = invoke(lab, name)
    assert error["errorType"] == "Runtime.HandlerNotFound" and error["errorMessage"] == message


def test_a_node_function_times_out_and_recovers(lab):
    code = "exports.handler = async (e) => { if (e.hang) await new Promise((r) => setTimeout(r, 30000)); return 'ok'; };\n"
    name = _node(lab, {"index.js": code}, Timeout=1)
    started = time.monotonic()
    response, error = invoke(lab, name, {"hang": True})
    assert time.monotonic() - started < 10
    assert response["FunctionError"] == "Unhandled" and error["errorType"] == "Sandbox.Timedout"
    assert invoke(lab, name)[1] == "ok"


def test_node_functions_see_lambdas_variables_and_the_context(lab):
    code = """
exports.handler = async (event, context) => ({
  env: ['AWS_LAMBDA_FUNCTION_NAME', 'AWS_REGION', '_HANDLER', 'NODE_PATH', 'TZ'].map((n) => process.env[n]),
  cwd: process.cwd() === process.env.LAMBDA_TASK_ROOT,
  remaining: context.getRemainingTimeInMillis(),
  memory: context.memoryLimitInMB, arn: context.invokedFunctionArn, group: context.logGroupName,
});
"""
    name = _node(lab, {"index.js": code}, MemorySize=256, Timeout=5)
    _, seen = invoke(lab, name)
    fn_name, region, handler, node_path, tz = seen["env"]
    assert (fn_name, region, handler, tz) == (name, "us-east-1", "index.handler", ":UTC")
    assert node_path.startswith(f"/opt/nodejs/node{runtimes.language_version(NEWEST)}/node_modules:"
                                "/opt/nodejs/node_modules:")
    assert seen["cwd"] and 0 < seen["remaining"] <= 5000 and seen["memory"] == "256"
    assert seen["arn"].endswith(f":function:{name}") and seen["group"] == f"/aws/lambda/{name}"


HANDLERS = """
exports.circular = async () => { const loop = {}; loop.self = loop; return loop; };
exports.callsBackWithError = (event, context, callback) => callback(new RangeError('quantity out of range'));
exports.callsBackWithString = (event, context, callback) => callback('plain failure');
exports.fails = (event, context) => context.fail(new Error('failed through the context'));
exports.rejectsLater = async () => { Promise.reject(new Error('nobody awaited this')); await new Promise((r) => setTimeout(r, 200)); return 1; };
exports.levels = async () => { console.debug('debug line'); console.info('info line'); console.warn('warn line'); return 1; };
"""


@pytest.mark.parametrize("handler, error_type, message", [
    ("index.circular", "Error", "Unable to stringify response body"),
    ("index.callsBackWithError", "RangeError", "quantity out of range"),
    ("index.callsBackWithString", "string", "plain failure"),
    ("index.fails", "Error", "failed through the context"),
    ("index.rejectsLater", "Runtime.UnhandledPromiseRejection", "nobody awaited this"),
])
def test_failures_a_handler_reports_without_throwing(lab, handler, error_type, message):
    name = _node(lab, {"index.js": HANDLERS}, handler=handler)
    response, error = invoke(lab, name)
    assert response["FunctionError"] == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == (error_type, message)


@pytest.mark.parametrize("files, handler, error_type, message", [
    ({"index.js": HANDLERS}, "index", "Runtime.MalformedHandlerName", "Bad handler"),
    ({"index.js": HANDLERS}, "../index.circular", "Runtime.MalformedHandlerName",
     "'../index.circular' is not a valid handler name. Use absolute paths when specifying root "
     "directories in handler names."),
    ({"index.js": "exports.handler = async () => {\n"}, "index.handler", "Runtime.UserCodeSyntaxError",
     "SyntaxError: Unexpected end of input"),
], ids=["no-dot", "dot-dot", "syntax"])
def test_handlers_that_cannot_load_are_init_errors(lab, files, handler, error_type, message):
    name = _node(lab, files, handler=handler)
    response, error = invoke(lab, name, LogType="Tail")
    assert response["FunctionError"] == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == (error_type, message)
    assert f"Status: error\tError Type: {error_type}" in tail(response)


def test_aws_lambda_log_level_drops_lower_levels(lab):
    name = _node(lab, {"index.js": HANDLERS}, handler="index.levels",
                 Environment={"Variables": {"AWS_LAMBDA_LOG_LEVEL": "WARN"}})
    log = tail(invoke(lab, name, LogType="Tail")[0])
    assert "\tWARN\twarn line" in log and "info line" not in log and "debug line" not in log
