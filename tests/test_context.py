"""Progress where people run the notebooks (runbook_lib.context.make_progress).

JupyterLab: tqdm's widget bar (ipywidgets is a dependency), never ``TqdmWarning: IProgress not
found``; ``runbook run`` (headless) and a terminal: one text line per step on stderr.
"""

import json
import os

import papermill
import pytest

from runbook_lib import context
from runbook_lib.resources import notebooks_dir

WIDGET = "application/vnd.jupyter.widget-view+json"


def test_headless_progress_is_one_line_per_step_on_stderr(monkeypatch, capsys):
    monkeypatch.setenv("RUNBOOK_HEADLESS", "1")
    progress = context.make_progress("audit")
    progress(0, 2, "listed")
    progress(2, 2, "orders-api")
    err = capsys.readouterr().err.splitlines()
    assert err == ["[runbook] audit: 0/2 listed", "[runbook] audit: 2/2 orders-api"]


def test_outside_a_kernel_progress_is_a_text_line_not_a_bar(monkeypatch, capsys):
    monkeypatch.delenv("RUNBOOK_HEADLESS", raising=False)
    assert not context.in_jupyter_kernel()
    context.make_progress("scan")(1, 1, "done")
    captured = capsys.readouterr()
    assert captured.err == "[runbook] scan: 1/1 done\n" and "Tqdm" not in captured.out + captured.err


def test_without_ipywidgets_there_is_no_widget_bar(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # what `import ipywidgets` fails on
    assert context.widget_bar() is None


def test_with_ipywidgets_the_bar_is_tqdms_notebook_bar():
    from tqdm.notebook import tqdm

    assert context.widget_bar() is tqdm


def _outputs(nb) -> list[dict]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def _texts(outputs) -> str:
    return json.dumps(outputs)


@pytest.mark.notebooks
def test_the_test_plan_stepped_through_in_a_kernel_shows_a_bar_and_no_tqdm_warning(seeded_lab, tmp_path,
                                                                                    monkeypatch):
    """As in JupyterLab: a kernel runs the cells one by one, not headless; the bar is a widget.

    The test plan only reads the account (and invokes the function once), so the session's seeded lab serves.
    """
    monkeypatch.delenv("RUNBOOK_HEADLESS", raising=False)
    for key, value in seeded_lab.env.items():
        monkeypatch.setenv(key, value)
    nb = papermill.execute_notebook(
        str(notebooks_dir() / "01_test_plan.ipynb"), str(tmp_path / "01.ipynb"), kernel_name="python3",
        parameters={"function_name": "orders-api", "run_dir": str(tmp_path / "run"),
                    "endpoint_url": seeded_lab.endpoint_url},
        cwd=str(tmp_path), progress_bar=False)
    outputs = _outputs(nb)
    text = _texts(outputs)
    assert "TqdmWarning" not in text and "IProgress" not in text
    assert not [o for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stderr"
                and "Warning" in o.get("text", "")]
    assert any(WIDGET in o.get("data", {}) for o in outputs), "no progress bar widget was displayed"
    assert os.environ.get("RUNBOOK_HEADLESS") is None
