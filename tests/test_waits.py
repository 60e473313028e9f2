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


class _Client:
    def __init__(self, endpoint_url):
        self.meta = type("Meta", (), {"endpoint_url": endpoint_url})()


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:41231", "http://localhost:5000", "http://[::1]:80",
                                      "http://127.9.9.9"])
def test_a_loopback_endpoint_is_polled_every_fifty_milliseconds(endpoint):
    assert waits.poll_seconds(_Client(endpoint), 2) == waits.LOOPBACK_POLL_SECONDS == 0.05
    assert waits.poll_seconds(_Client(endpoint), 20, loopback_seconds=0.25) == 0.25
    assert waits.poll_seconds(_Client(endpoint), 0.01) == 0.01  # never slower than asked


@pytest.mark.parametrize("endpoint", ["https://lambda.us-east-1.amazonaws.com", "http://10.0.0.5:4566", "", None])
def test_aws_and_other_hosts_keep_the_pace_asked_for(endpoint):
    assert waits.poll_seconds(_Client(endpoint), 2) == 2
    assert waits.poll_seconds(object(), 2) == 2  # a client without meta: no endpoint to judge


def test_faster_polls_keep_the_same_budget_in_seconds():
    assert waits.attempts_for(0.25, 8, 0.05) == 40
    assert waits.attempts_for(20, 60, 0.25) == 4800
    assert waits.attempts_for(0.25, 8, 0.25) == 8  # same pace: same attempts
    assert waits.attempts_for(2, 3, 0) == 3        # no pause at all: the attempts asked for
    assert waits.attempts_for(0.25, 8, 0.07) == 29  # rounded up: never a shorter wait
