"""The benchmark scripts' pure parts: run order, figures' formatting, parsing of the tools' outputs.

No timing is asserted here: the figures come from running the scripts (README "Performance").
"""

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}_under_test", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


whole = _load("whole_process")


def test_sides_alternate_round_by_round():
    assert whole.alternation(["a", "b"], 3) == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)]
    assert whole.alternation(["a"], 0) == []


def test_run_alternated_calls_each_side_in_the_alternated_order_with_the_hook_first():
    calls = []

    def side(name):
        def run():
            calls.append(name)
            return whole.Timing(1.0, 10, 0)
        return run

    results = whole.run_alternated({"a": side("a"), "b": side("b")}, 2, before_each=lambda s: calls.append("evict-" + s))
    assert calls == ["evict-a", "a", "evict-b", "b", "evict-a", "a", "evict-b", "b"]
    assert [len(v) for v in results.values()] == [2, 2]


def test_median_range_and_ratio_of_medians():
    assert whole.describe([3.0, 1.0, 2.0]) == "median 2.00 s (range 1.00-3.00 s, 3 runs)"
    assert whole.describe([1.0, 2.0]) == "median 1.50 s (range 1.00-2.00 s, 2 runs)"
    assert whole.ratio([4.0, 6.0, 100.0], [2.0, 3.0, 1.0]) == "3.00x"  # medians 6 / 2, not means
    rss = [whole.Timing(1.0, 100_000, 0), whole.Timing(1.0, 300_000, 0), whole.Timing(1.0, 200_000, 0)]
    assert whole.describe_rss(rss) == "peak RSS median 205 MB (max 307 MB)"
    assert whole.describe_cpu([whole.Timing(1.0, 1, 0, 0.5), whole.Timing(1.0, 1, 0, 1.5)]) == "CPU median 1.00 s"


def test_failed_lists_only_unexpected_exit_codes():
    runs = [whole.Timing(1.0, 1, 0), whole.Timing(1.0, 1, 1), whole.Timing(1.0, 1, 2)]
    assert whole.failed(runs) == [1, 2]
    assert whole.failed(runs, (0, 1)) == [2]


def test_run_process_reports_the_childs_exit_code_memory_and_output(tmp_path):
    out = tmp_path / "out"
    code = "import sys; b = bytearray(50_000_000); print('hello'); sys.exit(3)"
    timing = whole.run_process([sys.executable, "-c", code], stdout_path=out)
    assert timing.returncode == 3
    assert out.read_text() == "hello\n"
    assert timing.peak_rss_kib * 1024 >= 50_000_000  # the child's own peak, not this process's
    assert timing.seconds > 0 and timing.cpu_seconds > 0


def test_run_process_kills_a_child_past_its_timeout():
    timing = whole.run_process([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert timing.returncode != 0 and timing.seconds < 20


def test_load_average_names_the_cores():
    assert whole.load_average().startswith("load average ") and "cores" in whole.load_average()


def test_lab_summary_rows_are_parsed():
    lab = _load("bench_lab")
    summary = ("## Notebooks\n\n| notebook | status | seconds | error |\n|---|---|---|---|\n"
               "| 01_test_plan | ok | 12.8 |  |\n| 02_implementation | failed | 3.0 | boom |\n\n## Checks\n")
    assert lab.notebook_rows(summary) == [("01_test_plan", "ok", 12.8), ("02_implementation", "failed", 3.0)]
    assert lab.notebook_rows("no table") == []


def test_lab_cpu_seconds_from_proc():
    lab = _load("bench_lab")
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc on this system")
    assert lab._cpu_seconds(os.getpid()) > 0
    assert lab._cpu_seconds(2 ** 30) is None  # no such process
    assert lab.describe_cpu_seconds([]) == "CPU not measured (no /proc)"
    assert lab.describe_cpu_seconds([2.0, 1.0, 3.0]) == "CPU median 2.00 s (range 1.00-3.00 s)"


def test_lab_process_start_is_timed_to_the_ready_file():
    lab = _load("bench_lab")
    walls, cpus = lab.measure_lab_process_start(1)
    assert len(walls) == 1 and walls[0] > 0
    if Path("/proc/self/stat").exists():
        assert len(cpus) == 1 and 0 < cpus[0]


def test_prowler_ocsf_output_is_counted_per_check(tmp_path):
    audit = _load("bench_audit")
    checks = audit.PROWLER_CHECKS
    items = [
        {"metadata": {"event_code": checks[0]}, "status_code": "FAIL",
         "resources": [{"name": "orders-api", "uid": "arn:aws:lambda:us-east-1:1:function:orders-api"}]},
        {"metadata": {"event_code": checks[0]}, "status_code": "PASS", "resources": [{"name": "other"}]},
        {"metadata": {"event_code": checks[2]}, "status_code": "MANUAL", "resources": []},
        {"metadata": {"event_code": checks[2]}, "status_code": "FAIL",
         "resources": [{"name": "x", "uid": "arn:aws:lambda:us-east-1:1:layer:orders-shared-config:1"}]},
        {"metadata": {"event_code": "some_other_check"}, "status_code": "FAIL", "resources": [{"name": "x"}]},
    ]
    (tmp_path / "prowler-output.ocsf.json").write_text(json.dumps(items))
    result = audit.prowler_result(tmp_path, checks)
    assert result[checks[0]] == {"FAIL": 1, "PASS": 1, "other": 0, "flagged": {"orders-api"}}
    assert result[checks[2]]["other"] == 1 and result[checks[1]]["FAIL"] == 0
    assert result[checks[2]]["flagged"] == {"orders-shared-config"}  # a layer by name, without its version
    assert audit.prowler_result(tmp_path / "empty", checks) == {}


def test_prowlers_three_lambda_secret_checks_are_named():
    audit = _load("bench_audit")
    assert audit.PROWLER_CHECKS == ["awslambda_function_no_secrets_in_variables",
                                    "awslambda_function_no_secrets_in_code",
                                    "awslambda_layer_no_secrets_in_content"]


def test_test_plan_cells_are_named_by_their_heading_and_timed_from_papermill(tmp_path):
    audit = _load("bench_audit")

    def code(source, duration=None, tags=()):
        meta = {"tags": list(tags), **({"papermill": {"duration": duration}} if duration is not None else {})}
        return {"cell_type": "code", "source": source, "metadata": meta, "outputs": []}

    cells = [code("target = 'lab'", 0.01, ["parameters"]), {"cell_type": "markdown", "source": "## Setup\nwhy", "metadata": {}},
             code("ctx = 1", 0.4), {"cell_type": "markdown", "source": ["## Step 1 · Audit"], "metadata": {}},
             code("audit", 1.234), code("chart", 0.2), code("never ran")]
    (tmp_path / "01_test_plan.ipynb").write_text(json.dumps({"cells": cells}))
    assert audit.cell_seconds(tmp_path) == "parameters 0.01; Setup 0.40; Step 1 · Audit 1.23; Step 1 · Audit #2 0.20"
    assert audit.cell_seconds(tmp_path / "missing") == "no executed 01_test_plan.ipynb"
    assert audit.cell_seconds(None) == "no executed 01_test_plan.ipynb"


@pytest.mark.parametrize("method, label", [("none", "not cold"), ("fadvise", "posix_fadvise")])
def test_eviction_says_what_it_did(tmp_path, method, label):
    scan = _load("bench_scan")
    sample = tmp_path / "f.txt"
    sample.write_text("x" * 10_000)
    assert label in scan.evict([sample], method)


def test_the_runbook_is_timed_with_its_bytecode_cache_on_and_its_own_pattern_cache(monkeypatch, tmp_path):
    scan = _load("bench_scan")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setenv("RUNBOOK_BENCH_PROBE", "kept")
    env = scan.runbook_env(tmp_path)
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["XDG_CACHE_HOME"] == str(tmp_path)
    assert env["RUNBOOK_BENCH_PROBE"] == "kept"
    assert scan.runbook_env()["XDG_CACHE_HOME"] == str(scan.PATTERN_CACHE)
