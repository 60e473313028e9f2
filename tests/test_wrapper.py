"""The runbook's exec-wrapper layer: its content, the function's configuration with it, its fetchers' rules.

That the wrapper really fetches and hands the secret to the runtime (Python and Node.js) is
shown in the lab with IAM enforced: ``tests/test_implementation_lab.py``.
"""

import importlib.util
import re
import subprocess
import sys
import zipfile
import io

import pytest

from runbook_lib import wrapper as W

LAYER_ARN = "arn:aws:lambda:us-east-1:123456789012:layer:lambda-secrets-runbook-wrapper:3"
OTEL = "arn:aws:lambda:us-east-1:901920570463:layer:aws-otel-python-amd64-ver-1-25-0:1"


def fetcher():
    spec = importlib.util.spec_from_file_location("fetch_secret", W.SOURCE_DIR / "fetch_secret.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_layer_is_deterministic_with_an_executable_wrapper():
    assert W.build_layer() == W.build_layer() and W.layer_sha256() == W.layer_sha256()
    with zipfile.ZipFile(io.BytesIO(W.build_layer())) as archive:
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
    assert modes == {"lambda-secrets-runbook/exec-wrapper": 0o755, "lambda-secrets-runbook/fetch_secret.py": 0o644,
                     "lambda-secrets-runbook/fetch_secret.cjs": 0o644}
    assert W.description("tok").startswith(f"lambda-secrets-runbook exec wrapper build {W.build_id()} token tok")


def test_the_three_reserved_lists_are_the_same():
    node = (W.SOURCE_DIR / "fetch_secret.cjs").read_text()
    block = node[node.index("new Set(["):node.index("]);")]
    assert set(re.findall(r'"([A-Z_]+)"', block)) == set(W.RESERVED_VARIABLES) == set(fetcher().RESERVED)


def test_configuration_with_the_wrapper_chains_an_existing_one_and_replaces_older_runbook_layers():
    env = W.wrapped_environment({"LOG_LEVEL": "INFO"}, "arn:s", previous_wrapper="/opt/otel-instrument")
    assert env == {"LOG_LEVEL": "INFO", "SECRET_ID": "arn:s", "AWS_LAMBDA_EXEC_WRAPPER": W.WRAPPER_PATH,
                   "LAMBDA_SECRETS_RUNBOOK_NEXT_WRAPPER": "/opt/otel-instrument"}
    assert "LAMBDA_SECRETS_RUNBOOK_NEXT_WRAPPER" not in W.wrapped_environment({}, "arn:s", W.WRAPPER_PATH)
    assert W.previous_wrapper({"AWS_LAMBDA_EXEC_WRAPPER": "/opt/otel-instrument"}) == "/opt/otel-instrument"
    assert W.previous_wrapper(env) == "/opt/otel-instrument" and W.previous_wrapper({}) == ""
    older = LAYER_ARN.replace(":3", ":1")
    assert W.wrapped_layers([OTEL, older], LAYER_ARN) == [OTEL, LAYER_ARN]
    assert W.is_runbook_layer(LAYER_ARN) and not W.is_runbook_layer(OTEL)
    assert W.layer_name_and_version(LAYER_ARN) == ("lambda-secrets-runbook-wrapper", "3")


def test_the_fetcher_prints_exactly_the_secrets_keys_quoted_for_the_shell():
    out = fetcher().assignments("s", '{"B": "it\'s $HOME", "A": 5}')
    assert out == "export A=5\nexport B='it'\"'\"'s $HOME'\n"
    result = subprocess.run(["bash", "-c", out + 'printf "%s|%s" "$A" "$B"'], capture_output=True, text=True)
    assert result.stdout == "5|it's $HOME"


@pytest.mark.parametrize("raw, words", [
    ('{"PATH": "/tmp"}', "not a variable the wrapper may set"),
    ('{"bad-name": "x"}', "not a variable the wrapper may set"),
    ('["a"]', "not a JSON object"),
    ("not json", "is not JSON"),
])
def test_the_fetcher_refuses_what_it_must_not_set_in_one_line_without_the_value(raw, words, capsys):
    with pytest.raises(SystemExit) as ended:
        fetcher().assignments("arn:s", raw)
    err = capsys.readouterr().err
    assert ended.value.code == 1 and words in err and err.count("\n") == 1 and "/tmp" not in err


def test_a_failed_fetch_stops_the_init_with_one_line_naming_the_call_and_permission(tmp_path):
    started = tmp_path / "runtime-started"
    bootstrap = tmp_path / "bootstrap.py"
    bootstrap.write_text(f"open({str(started)!r}, 'w').write('yes')\n")
    env = {"PATH": "/usr/bin:/bin", "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12", "SECRET_ID": "arn:s",
           "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    result = subprocess.run(["bash", str(W.SOURCE_DIR / "exec-wrapper"), sys.executable, str(bootstrap)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and not started.exists(), "the runtime never starts without its secret"
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("lambda-secrets-runbook wrapper: GetSecretValue on arn:s failed")
    assert "secretsmanager:GetSecretValue" in line


def test_the_wrapper_refuses_a_runtime_it_has_no_fetcher_for(tmp_path):
    result = subprocess.run(["bash", str(W.SOURCE_DIR / "exec-wrapper"), "java", "x"],
                            env={"PATH": "/usr/bin:/bin", "AWS_EXECUTION_ENV": "AWS_Lambda_java21"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "has no fetcher" in result.stderr
