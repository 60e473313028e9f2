"""The cell timeout follows the waiters (runbook_lib.waits)."""

import pytest

from runbook_lib import edge, waits
from runbook_lib.validation_collect import MAX_LOG_WAIT_SECONDS


@pytest.mark.parametrize("notebook", ["02_implementation", "04_backout"])
def test_notebooks_that_wait_for_cloudfront_get_the_waiters_twenty_minutes_on_top(notebook):
    assert waits.longest_wait(notebook, {}, "aws") == edge.DEPLOY_WAIT_SECONDS == 1200
    assert waits.cell_timeout(900, notebook, {}, "lab") == 2100


def test_validation_waits_for_cloudtrail_as_long_as_its_parameter_says():
    assert waits.longest_wait("03_functional_validation", {}, "aws") == 900 + MAX_LOG_WAIT_SECONDS
    assert waits.longest_wait("03_functional_validation", {"trail_wait_seconds": -1}, "lab") == MAX_LOG_WAIT_SECONDS
    assert waits.cell_timeout(900, "03_functional_validation", {"trail_wait_seconds": 3600}, "aws") == \
        900 + 3600 + MAX_LOG_WAIT_SECONDS


@pytest.mark.parametrize("notebook", ["01_test_plan", "05_closeout"])
def test_notebooks_that_do_not_wait_keep_the_base_timeout(notebook):
    assert waits.cell_timeout(900, notebook, {"trail_wait_seconds": 5000}, "aws") == 900


def test_the_runner_gives_each_notebook_the_timeout_of_its_waits(tmp_path, monkeypatch):
    from runbook_lib import runner
    from runbook_lib.execution import NotebookRun

    seen = {}

    def execute(notebook, run_dir, parameters, kernel_name, timeout, kernel=None):
        seen[notebook.stem] = timeout
        return NotebookRun(notebook.stem, "ok")

    monkeypatch.setattr(runner, "execute", execute)
    names = ("01_test_plan", "02_implementation", "03_functional_validation", "04_backout")
    paths = [tmp_path / f"{name}.ipynb" for name in names]
    routed = {name: {} for name in names} | {"03_functional_validation": {"trail_wait_seconds": 60}}
    runner._execute_in_order(paths, tmp_path, routed, runner.RunOptions(target="aws"), {})
    assert seen == {"01_test_plan": 900, "02_implementation": 2100,
                    "03_functional_validation": 900 + 60 + MAX_LOG_WAIT_SECONDS, "04_backout": 2100}
