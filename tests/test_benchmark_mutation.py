"""Tests of benchmarks/mutation.py's own logic (not a mutmut run: that is `make mutation`)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "benchmarks" / "mutation.py")
tool = importlib.util.module_from_spec(spec)
sys.modules["mutation_tool"] = tool  # dataclasses look their module up there
spec.loader.exec_module(tool)


@pytest.mark.parametrize("name", ["runbook_lib/rules.py", "rules.py", "runbook_lib.rules", "rules"])
def test_module_names_resolve_to_the_file(name):
    assert tool.resolve_module(name) == "runbook_lib/rules.py"


def test_a_missing_module_is_one_line():
    with pytest.raises(tool.UsageError, match=r"module nothere.py: no file runbook_lib/nothere.py"):
        tool.resolve_module("nothere.py")


def test_tests_are_the_mirror_plus_the_configured_ones_or_the_override():
    config = {"tests": {"runbook_lib/rules.py": ["tests/test_scanning.py"]}, "equivalent": []}
    assert tool.tests_for("runbook_lib/rules.py", config, None) == ["tests/test_rules.py", "tests/test_scanning.py"]
    assert tool.tests_for("runbook_lib/rules.py", config, ["tests/test_redaction.py"]) == ["tests/test_redaction.py"]
    with pytest.raises(tool.UsageError, match="do not exist"):
        tool.tests_for("runbook_lib/rules.py", config, ["tests/test_missing.py"])
    with pytest.raises(tool.UsageError, match="pass --tests"):
        tool.tests_for("runbook_lib/a_module_without_tests.py", {"tests": {}, "equivalent": []}, None)


@pytest.mark.parametrize("mutant,function", [
    ("runbook_lib.rules.x_key_class__mutmut_3", "key_class"),
    ("runbook_lib.rules.x\u01c1Allowlist\u01c1__init____mutmut_12", "Allowlist.__init__"),
    ("runbook_lib.rules.x\u01c1Scanner\u01c1_finding__mutmut_1", "Scanner._finding"),
])
def test_function_names_of_mutants(mutant, function):
    assert tool.function_of(mutant, "runbook_lib/rules.py") == function


def test_equivalents_match_module_function_and_mutated_line():
    config = {"tests": {}, "equivalent": [{"module": "m.py", "function": "f", "mutant": 'x = "UTF-8"', "reason": "r"}]}
    assert tool.equivalent_reason("m.py", "f", ['-x = "utf-8"', '+    x = "UTF-8"  '], config) == "r"
    assert tool.equivalent_reason("m.py", "g", ['+x = "UTF-8"'], config) is None
    assert tool.equivalent_reason("n.py", "f", ['+x = "UTF-8"'], config) is None


def test_score_counts_timeouts_and_crashes_as_detected_and_leaves_equivalents_out():
    outcome = tool.Outcome("m.py", [], counts={"killed": 6, "timeout": 1, "segfault": 1, "survived": 3, "no tests": 1})
    outcome.equivalent = [("m.x_f__mutmut_1", "r")]
    assert outcome.total == 12 and outcome.detected == 8 and outcome.score == pytest.approx(100 * 8 / 11)
    assert tool.Outcome("m.py", []).score == 100.0


def test_the_shipped_configuration_names_existing_files():
    config = tool.load_config()
    for module, tests in config["tests"].items():
        assert (ROOT / module).is_file() and all((ROOT / t).is_file() for t in tests), module
    for entry in config["equivalent"]:
        assert set(entry) == {"module", "function", "mutant", "reason"} and (ROOT / entry["module"]).is_file()
