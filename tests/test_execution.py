"""Executing a notebook: the kernel's folder, and no machine path left in what is archived."""

import getpass
import os
import sys
import tempfile
from pathlib import Path

import nbformat

from runbook_lib import execution
from test_kernel_fork import notebook_file as _notebook


def test_the_kernel_sees_the_run_folder_under_a_name_it_cannot_import(tmp_path):
    assert execution.kernel_run_dir(tmp_path / "20261121T193000Z-lab") == "20261121T193000Z-lab"
    assert execution.kernel_run_dir(tmp_path / "20261121T193000Z-lab-2") == "20261121T193000Z-lab-2"
    for importable in ("runbook_lib", "myrun", "json.py", "-p", ".hidden", "x" * 300):
        assert execution.kernel_run_dir(tmp_path / importable) == "run-folder"
    assert not execution.kernel_run_dir(tmp_path / "20261121T193000Z-lab").isidentifier()


def test_the_private_kernel_folder_holds_only_the_link(tmp_path):
    run_dir = tmp_path / "20261121T193000Z-lab"
    run_dir.mkdir()
    kernel = execution.PrivateKernel("python3", run_dir)
    try:
        assert oct(os.stat(kernel.folder).st_mode & 0o777) == "0o700"
        assert os.listdir(kernel.cwd) == ["20261121T193000Z-lab"]
        assert Path(kernel.cwd, "20261121T193000Z-lab").resolve() == run_dir.resolve()
        assert Path(run_dir.resolve()) not in Path(kernel.cwd).resolve().parents
    finally:
        kernel.close()
    assert not os.path.exists(kernel.folder) and run_dir.is_dir()


def test_path_replacements_cover_this_machine(tmp_path):
    run_dir = tmp_path / "20261121T193000Z-lab"
    pairs = dict(execution.path_replacements(run_dir, "/tmp/runbook-kernel-x/cwd"))
    assert pairs[str(run_dir.resolve())] == "20261121T193000Z-lab"
    assert pairs[str(Path.home())] == "~" and pairs[tempfile.gettempdir()] == "<tmp>"
    assert pairs[sys.prefix] == "<python>" and pairs["/tmp/runbook-kernel-x/cwd"] == "."
    assert pairs[str(Path(execution.__file__).resolve().parent)] == "runbook_lib"


def test_scrub_text_replaces_whole_paths_only():
    pairs = [("/work/checkout", "<cwd>"), ("/tmp", "<tmp>")]
    assert execution.scrub_text("File /work/checkout/x.py:3 and /tmp/y", pairs) == "File <cwd>/x.py:3 and <tmp>/y"
    assert execution.scrub_text("/tmpfile /work/checkout-2", pairs) == "/tmpfile /work/checkout-2"
    assert execution.scrub_text("\x1b[0;32m/tmp/ipykernel_1/2.py\x1b[0m", pairs) == "\x1b[0;32m<tmp>/ipykernel_1/2.py\x1b[0m"


def test_scrub_notebook_file_cleans_tracebacks_streams_and_displays(tmp_path):
    run_dir = tmp_path / "20261121T193000Z-lab"
    run_dir.mkdir()
    home, here, package = str(Path.home()), str(Path.cwd()), str(Path(execution.__file__).resolve())
    cell = nbformat.v4.new_code_cell("boom()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=f"{sys.prefix}/lib/warnings.py:1: Warning\n"),
        nbformat.v4.new_output("error", ename="FileNotFoundError", evalue=f"'{run_dir.resolve()}/x.json'",
                               traceback=[f"File {package}:12, in execute()", f"File {home}/a.py", f"cwd {here}"]),
        nbformat.v4.new_output("display_data", data={"text/plain": f"{here}/build", "text/html": f"<b>{home}</b>"}),
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell]
    nb.metadata["papermill"] = {"input_path": "/abs/notebooks/01.ipynb", "output_path": f"{run_dir}/01.ipynb",
                                "parameters": {"code_path": f"{here}/build/fn.zip"}}
    path = run_dir / "01.ipynb"
    nbformat.write(nb, str(path))
    execution.scrub_notebook_file(path, execution.path_replacements(run_dir))
    text = path.read_text()
    for machine in (home, here, str(tmp_path), sys.prefix, getpass.getuser() + "/"):
        assert machine not in text, machine
    assert "runbook_lib/execution.py:12" in text and "20261121T193000Z-lab/x.json" in text
    meta = nbformat.read(str(path), as_version=4).metadata["papermill"]
    assert (meta["input_path"], meta["output_path"]) == ("01.ipynb", "01.ipynb")


# -- what a kernel says, on the runner's stderr ----------------------------------------------------
def _kernel_output(notebook="02_implementation", replacements=()):
    return execution.KernelOutput(notebook, list(replacements))


def test_the_kernels_progress_lines_become_the_notebooks_progress_lines(capsys):
    out = _kernel_output(replacements=[("/home/someone/venv", "<python>")])
    out.write("[runbook] audit: 1/2 orders-")
    assert capsys.readouterr().err == ""  # a line is said once it is whole
    out.write("api\nwarning from /home/someone/venv/lib: not a progress line\n[runbook] CloudFront E1: deploying\n")
    assert capsys.readouterr().err.splitlines() == ["[runbook] 02_implementation: audit: 1/2 orders-api",
                                                    "[runbook] 02_implementation: CloudFront E1: deploying"]


def test_quiet_keeps_progress_lines_off_and_verbose_adds_every_other_line(capsys):
    import logging

    out = _kernel_output(replacements=[("/home/someone", "~")])
    record = logging.LogRecord("papermill", logging.INFO, __file__, 1, "step: applied\n[runbook] x: 1/1\n"
                               "/home/someone/file", None, None)
    try:
        execution.LOG.setLevel(logging.WARNING)
        out.write("[runbook] audit: 1/1\n")
        out.emit(record)
        assert capsys.readouterr().err == ""
        execution.LOG.setLevel(logging.DEBUG)
        out.emit(record)  # the [runbook] line came through write(): not twice
        assert capsys.readouterr().err.splitlines() == ["[runbook] 02_implementation: step: applied",
                                                        "[runbook] 02_implementation: ~/file"]
    finally:
        execution.LOG.setLevel(logging.INFO)


def test_kernel_output_logs_cell_output_only_under_verbose():
    import logging

    with execution.kernel_output("n", []) as (_, verbose):
        assert verbose is False
    try:
        execution.LOG.setLevel(logging.DEBUG)
        with execution.kernel_output("n", []) as (out, verbose):
            assert verbose is True and out in logging.getLogger("papermill").handlers
        assert out not in logging.getLogger("papermill").handlers
    finally:
        execution.LOG.setLevel(logging.INFO)


def _printed(cell) -> str:
    """A cell's stdout: a loaded kernel may send print's text and its newline as two stream outputs."""
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def _quick_notebook(path, cells: int):
    return _notebook(path, *(f"print({n})" for n in range(cells)))


def test_quick_cells_are_saved_at_most_every_two_seconds_and_always_at_the_end(tmp_path, monkeypatch):
    import papermill.engines

    writes = []
    original = papermill.engines.write_ipynb
    monkeypatch.setattr(papermill.engines, "write_ipynb", lambda nb, path: (writes.append(path), original(nb, path)))
    run_dir = tmp_path / "20261201T120000Z-lab"
    run_dir.mkdir()
    result = execution.execute(_quick_notebook(tmp_path / "quick.ipynb", 12), run_dir, {}, "python3", 120)
    assert result.status == "ok", result.error
    # papermill itself would write 2 per cell plus start and end (26); throttled: the end, and one per 2 s at most
    assert 1 <= len(writes) <= 1 + int(result.seconds // execution.SAVE_EVERY_SECONDS) + 1, writes
    executed = nbformat.read(str(run_dir / "quick.ipynb"), as_version=4)
    assert [_printed(c) for c in executed.cells] == [f"{n}\n" for n in range(12)]
    assert all(c.metadata.papermill["status"] == "completed" for c in executed.cells)


def test_a_kernel_that_dies_mid_notebook_still_leaves_its_notebook_naming_the_cell(tmp_path):
    """The throttled saves skip the cell's start, but papermill's final save runs whatever the end."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('before the death')"),
                nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
                nbformat.v4.new_code_cell("print('never')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(tmp_path / "dies.ipynb"))
    run_dir = tmp_path / "20261201T120000Z-lab"
    run_dir.mkdir()
    result = execution.execute(tmp_path / "dies.ipynb", run_dir, {}, "python3", 120)
    assert result.status == "failed" and "cell 2" in result.error, result.error
    saved = nbformat.read(str(run_dir / "dies.ipynb"), as_version=4)
    assert _printed(saved.cells[0]) == "before the death\n"
    assert [c.metadata.papermill["start_time"] is not None for c in saved.cells] == [True, True, False]



class _SwallowsCtrlC:
    """Presses Ctrl-C from inside ``__del__``, where Python prints and drops the KeyboardInterrupt
    (the runner's main thread can be in a jupyter_client client's ``__del__`` when Ctrl-C comes)."""

    def __del__(self):
        import signal

        signal.raise_signal(signal.SIGINT)


def _sigint_handler():
    import signal

    return signal.getsignal(signal.SIGINT)


def test_a_lost_ctrl_c_during_a_cell_interrupts_the_cell_and_ends_the_notebook(tmp_path, monkeypatch):
    import warnings

    from nbclient.client import NotebookClient

    notebook = _notebook(tmp_path / "long.ipynb", "print('before')",
                         "import time\nprint('sleeping', flush=True)\ntime.sleep(60)", "print('never')")
    run_dir = tmp_path / "20261201T120000Z-lab"
    run_dir.mkdir()
    original, dropped = NotebookClient.process_message, []

    def process_message(self, msg, cell, cell_index):
        answer = original(self, msg, cell, cell_index)
        if "sleeping" in msg["content"].get("text", "") and not dropped:
            dropped.append(cell_index)
            _SwallowsCtrlC()  # gone at once: its __del__ runs here, in the runner's main thread, mid-cell
        return answer

    monkeypatch.setattr(NotebookClient, "process_message", process_message)
    before = _sigint_handler()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pytest reports the dropped KeyboardInterrupt as unraisable
        result = execution.execute(notebook, run_dir, {}, "python3", 120)
    assert dropped == [1]
    assert result.status == "failed" and result.error == "long cell 2: interrupted", result.error
    assert result.seconds < 30  # the cell was interrupted, not slept out
    saved = nbformat.read(str(run_dir / "long.ipynb"), as_version=4)
    assert saved.cells[1].outputs[-1]["ename"] == "KeyboardInterrupt"
    assert saved.cells[2].metadata.papermill["start_time"] is None
    assert _sigint_handler() is before  # the runner's own Ctrl-C handling is back


def test_a_lost_ctrl_c_between_cells_starts_no_further_cell(tmp_path, monkeypatch):
    import warnings

    import papermill.engines

    notebook = _notebook(tmp_path / "steps.ipynb", "print('first')", "print('second')", "print('third')")
    run_dir = tmp_path / "20261201T120000Z-lab"
    run_dir.mkdir()
    original = papermill.engines.NotebookExecutionManager.cell_complete

    def cell_complete(self, cell, cell_index=None, **kwargs):
        original(self, cell, cell_index=cell_index, **kwargs)
        if cell_index == 0:
            _SwallowsCtrlC()  # the kernel is idle: its SIGINT changes nothing there

    monkeypatch.setattr(papermill.engines.NotebookExecutionManager, "cell_complete", cell_complete)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = execution.execute(notebook, run_dir, {}, "python3", 120)
    assert result.status == "failed" and result.error == "steps cell 1: interrupted", result.error
    saved = nbformat.read(str(run_dir / "steps.ipynb"), as_version=4)
    assert _printed(saved.cells[0]) == "first\n"
    assert [c.metadata.papermill["start_time"] is not None for c in saved.cells] == [True, False, False]
