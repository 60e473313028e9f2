"""The Python bootstrap's parts, in-process (the lab tests run it for real in every invocation)."""

import decimal
import json
import sys

import pytest

from runbook_lib.lab import python_bootstrap as bootstrap
from runbook_lib.lab import worker


def test_the_end_marker_is_the_one_the_runtime_waits_for():
    assert bootstrap.end_marker("abc") == worker.end_marker("abc")
    node = (bootstrap.__file__.rsplit("/", 1)[0] + "/node_bootstrap.mjs")
    assert "`\\x00\\x1elab-end ${id}\\x1e\\x00\\n`" in open(node).read()


@pytest.mark.parametrize("path, mapped", [
    ("/opt/python", "/env/opt/python"), ("/opt", "/env/opt"), ("/optional", "/optional"),
    ("/var/task/lib", "/env/var/task/lib"), ("/usr/lib", "/usr/lib"),
])
def test_opt_and_var_task_name_the_environments_folders(path, mapped):
    assert bootstrap.lab_path(path, "/env/opt", "/env/var/task") == mapped


def test_handler_errors_are_the_aws_runtimes(tmp_path, monkeypatch):
    (tmp_path / "good.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "broken.py").write_text("def handler(:\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "stdout", __import__("io").StringIO())
    assert bootstrap.load_handler("good.handler")[1] is None
    cases = {"nodot": "Runtime.MalformedHandlerName", "absent_module.handler": "Runtime.ImportModuleError",
             "broken.handler": "Runtime.UserCodeSyntaxError", "good.other": "Runtime.HandlerNotFound",
             "raises.handler": "RuntimeError"}
    for spec, error_type in cases.items():
        handler, error = bootstrap.load_handler(spec)
        assert handler is None and error["errorType"] == error_type, spec
    assert bootstrap.load_handler("good.other")[1]["errorMessage"] == "Handler 'other' missing on module 'good'"


def test_decimals_serialise_as_numbers_and_other_objects_refuse():
    assert json.dumps([decimal.Decimal("3"), decimal.Decimal("1.5")], default=bootstrap.json_default) == "[3, 1.5]"
    with pytest.raises(TypeError):
        json.dumps(object(), default=bootstrap.json_default)


def test_the_context_reads_the_reserved_variables(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-api")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
    import time

    context = bootstrap.LambdaContext("rid", int(time.time() * 1000) + 5000, "arn:x")
    assert context.function_name == "orders-api" and context.memory_limit_in_mb == "256"
    assert 0 < context.get_remaining_time_in_millis() <= 5000
    assert "orders-api" in repr(context)
