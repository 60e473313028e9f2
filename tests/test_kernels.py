"""Kernels started one notebook ahead: each notebook still gets a fresh kernel of its own."""

import os
import signal
import time

import nbformat
import pytest

from runbook_lib import execution, kernels
from tests.processes import gone


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a notebook")] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _pid(kernel) -> int:
    return kernel.manager.provisioner.process.pid




@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "20261201T120000Z-lab"
    folder.mkdir()
    return folder


def test_a_notebooks_runbook_lib_imports_are_found_and_nothing_else(tmp_path):
    nb = _notebook(tmp_path / "n.ipynb", "from runbook_lib.context import start_notebook\nimport json",
                   "import runbook_lib.audit, os\nfrom . import nothing", "%time x = 1",
                   "if True:\n    from runbook_lib.nested import not_top_level",
                   "from runbook_lib.context import start_notebook")
    assert kernels.notebook_imports(nb) == ["runbook_lib.context", "runbook_lib.audit"]
    (tmp_path / "bad.ipynb").write_text("not json")
    assert kernels.notebook_imports(tmp_path / "bad.ipynb") == []


def test_preimports_bind_no_name_and_display_nothing():
    assert kernels.preimport_lines(["pandas", 'x");evil("']) == [
        '--IPKernelApp.exec_lines=__import__("pandas");', '--IPKernelApp.exec_lines=__import__("x\\");evil(\\"");']


def test_each_notebook_gets_a_fresh_kernel_with_its_imports_loaded_and_an_empty_namespace(run_dir, tmp_path):
    first = _notebook(tmp_path / "01_first.ipynb", "leftover = 'from the first notebook'")
    second = _notebook(tmp_path / "02_second.ipynb",
                       "import sys\npreloaded = {m for m in ('pandas', 'boto3', 'runbook_lib.checks') if m in sys.modules}\n"
                       "compiled = sys.modules['runbook_lib.scan_prefilter']._SHARED is not None",
                       "from runbook_lib.checks import CheckLog",
                       "assert 'leftover' not in globals(), 'the first notebook leaked into the second'\n"
                       "assert preloaded == {'pandas', 'boto3', 'runbook_lib.checks'}, preloaded\n"
                       "assert compiled, 'the scanner patterns were not compiled while the kernel started'\n"
                       "names = sorted(n for n in globals() if not n.startswith('_'))\n"
                       "assert names == ['CheckLog', 'In', 'Out', 'compiled', 'exit', 'get_ipython', 'open', 'preloaded',"
                       " 'quit', 'sys'], names")
    with kernels.KernelQueue("python3", run_dir) as queue:
        one = queue.take(first)
        queue.prestart(second)
        result = execution.execute(first, run_dir, {}, "python3", 120, kernel=one)
        assert result.status == "ok", result.error
        two = queue.take(second)
        assert two is not one and _pid(two) != _pid(one)
        result = execution.execute(second, run_dir, {}, "python3", 120, kernel=two)
        assert result.status == "ok", result.error
        pids = [_pid(one), _pid(two)]
        folders = [k.folder for k in queue.started]
    executed = nbformat.read(str(run_dir / "02_second.ipynb"), as_version=4)
    assert [c.execution_count for c in executed.cells if c.cell_type == "code"] == [1, 2, 3]  # preloads do not count
    assert all(gone(pid) for pid in pids) and not any(os.path.exists(f) for f in folders)


def test_a_kernel_that_died_before_use_is_replaced(run_dir, tmp_path):
    nb = _notebook(tmp_path / "01_first.ipynb", "print('ran')")
    with kernels.KernelQueue("python3", run_dir) as queue:
        queue.prestart(nb)
        dead = queue.waiting[1]
        os.kill(_pid(dead), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while dead.alive() and time.monotonic() < deadline:  # the kill lands, the manager sees it
            time.sleep(0.05)
        assert not dead.alive()
        fresh = queue.take(nb)
        assert fresh is not dead and fresh.alive()
        result = execution.execute(nb, run_dir, {}, "python3", 120, kernel=fresh)
    assert result.status == "ok", result.error
    assert "ran" in (run_dir / "01_first.ipynb").read_text()


def test_a_kernel_started_for_another_notebook_is_not_used_and_unused_kernels_are_reaped(run_dir, tmp_path):
    planned = _notebook(tmp_path / "02_planned.ipynb", "1")
    other = _notebook(tmp_path / "03_other.ipynb", "1")
    with kernels.KernelQueue("python3", run_dir) as queue:
        queue.prestart(planned)
        unused = queue.waiting[1]
        kernel = queue.take(other)
        assert kernel is not unused and kernel.alive()
        queue.prestart(planned)  # never taken: a failed notebook skips the rest
        pids = [_pid(k) for k in queue.started]
    assert len(pids) == 3 and all(gone(pid) for pid in pids)


def test_a_failing_preimport_is_ignored_and_the_notebook_says_why_in_its_own_cell(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(kernels, "HEAVY_IMPORTS", ("no_such_module_anywhere",))
    nb = _notebook(tmp_path / "01_first.ipynb", "import no_such_module_anywhere")
    with kernels.KernelQueue("python3", run_dir) as queue:
        result = execution.execute(nb, run_dir, {}, "python3", 120, kernel=queue.take(nb))
    assert result.status == "failed" and "ModuleNotFoundError" in result.error and "no_such_module_anywhere" in result.error


def test_a_kernel_started_before_the_run_folder_exists_sees_it_once_linked(run_dir, tmp_path):
    nb = _notebook(tmp_path / "01_first.ipynb", f"import os\nassert os.listdir('.') == [{run_dir.name!r}], os.listdir('.')\n"
                   f"assert os.path.samefile({run_dir.name!r}, {str(run_dir)!r})")
    with kernels.KernelQueue("python3") as queue:
        queue.prestart(nb)  # the runner's first kernel boots while the identity is checked
        with pytest.raises(RuntimeError, match="link"):
            queue.take(nb)
        queue.prestart(nb)
        early = queue.waiting[1]
        queue.link(run_dir)
        kernel = queue.take(nb)
        assert kernel is early
        result = execution.execute(nb, run_dir, {}, "python3", 120, kernel=kernel)
    assert result.status == "ok", result.error
