"""Kernels forked from one server: a fresh process per notebook, managed like any kernel, gone with its stand-in."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import nbformat
import pytest

from runbook_lib import execution, kernel_fork, kernels
from tests.processes import gone


def notebook_file(path, *sources):
    """A notebook of code cells ``sources`` on the python3 kernel, written to ``path``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _outputs(path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))




def _kernel_pid(kernel, run_dir, name):
    """Run a notebook that writes its kernel's pid, and return that pid (the kernel stays up)."""
    nb = notebook_file(run_dir.parent / f"{name}.ipynb", "import os\nprint('pid', os.getpid(), os.getppid())")
    result = execution.execute(nb, run_dir, {}, "python3", 120, kernel=kernel)
    assert result.status == "ok", result.error
    _, pid, parent = _outputs(run_dir / f"{name}.ipynb").split()
    return int(pid), int(parent)


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "20261201T120000Z-lab"
    folder.mkdir()
    return folder


@pytest.fixture
def two_notebooks(tmp_path):
    first = notebook_file(tmp_path / "01_first.ipynb",
                      "import os, runbook_lib.session as session\nleftover = 'first'\n"
                      "session._LOADERS['planted by the first notebook'] = True\nprint('pid', os.getpid(), os.getppid())")
    second = notebook_file(tmp_path / "02_second.ipynb",
                       "import os, sys, runbook_lib.session as session\nprint('pid', os.getpid(), os.getppid())",
                       "assert 'leftover' not in globals(), 'the first notebook leaked into the second'\n"
                       "assert 'planted by the first notebook' not in session._LOADERS, 'module state leaked'\n"
                       "assert {'pandas', 'boto3', 'pandas.io.formats.style'} <= set(sys.modules)")
    return first, second


def test_each_notebook_runs_in_a_fresh_child_of_the_server_with_the_imports_already_paid(run_dir, two_notebooks):
    first, second = two_notebooks
    with kernels.KernelQueue("python3", run_dir, notebooks=[first, second]) as queue:
        assert queue.forks is not None and queue.forks.alive()
        server = queue.forks.process.pid
        one = queue.take(first)
        queue.prestart(second)
        assert one.forked
        assert execution.execute(first, run_dir, {}, "python3", 120, kernel=one).status == "ok"
        two = queue.take(second)
        result = execution.execute(second, run_dir, {}, "python3", 120, kernel=two)
        assert result.status == "ok", result.error
        folder = queue.forks.folder
    pid_one, parent_one = map(int, _outputs(run_dir / "01_first.ipynb").split()[1:])
    pid_two, parent_two = map(int, _outputs(run_dir / "02_second.ipynb").split()[1:])
    assert parent_one == parent_two == server and pid_one != pid_two != server
    assert gone(pid_one) and gone(pid_two) and gone(server) and not os.path.exists(folder)


@pytest.mark.parametrize("how", ["jupyter's interrupt_kernel", "the runner's Ctrl-C (PrivateKernel.interrupt)"])
def test_a_forked_kernel_is_interrupted_through_its_stand_in(run_dir, tmp_path, how):
    nb = notebook_file(tmp_path / "01_first.ipynb", "1")
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb, nb]) as queue:
        kernel = queue.take(nb)
        from jupyter_client import BlockingKernelClient
        from jupyter_core.utils import run_sync

        client = BlockingKernelClient()
        client.load_connection_info(kernel.manager.get_connection_info())
        client.start_channels()
        try:
            client.kernel_info()
            assert client.get_shell_msg(timeout=60)["msg_type"] == "kernel_info_reply"
            client.execute("import time\ntime.sleep(60)")
            time.sleep(1.0)
            if how.startswith("jupyter"):
                run_sync(kernel.manager.interrupt_kernel)()
            else:
                kernel.interrupt()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                reply = client.get_shell_msg(timeout=20)
                if reply["msg_type"] == "execute_reply":
                    break
            assert reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
        finally:
            client.stop_channels()


def test_killing_the_stand_in_kills_its_kernel(run_dir, tmp_path):
    nb = notebook_file(tmp_path / "x.ipynb", "1")
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb, nb]) as queue:
        kernel = queue.take(nb)
        pid, _ = _kernel_pid(kernel, run_dir, "pid")
        os.kill(kernel.manager.provisioner.process.pid, signal.SIGKILL)
        assert gone(pid, within=5)


def test_kernels_go_when_their_server_goes(run_dir, tmp_path):
    nb = notebook_file(tmp_path / "x.ipynb", "1")
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb, nb]) as queue:
        kernel = queue.take(nb)
        pid, _ = _kernel_pid(kernel, run_dir, "pid")
        queue.forks.process.kill()
        assert gone(pid, within=10)  # IPython's parent poller checks every second
        stand_in = kernel.manager.provisioner.process
        assert stand_in.wait(timeout=10) != 0


def test_without_a_live_server_kernels_start_from_scratch(run_dir, tmp_path):
    nb = notebook_file(tmp_path / "01_first.ipynb", "import os\nprint('pid', os.getpid(), os.getppid())")
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb, nb]) as queue:
        queue.forks.process.kill()
        queue.forks.process.wait()
        kernel = queue.take(nb)
        assert not kernel.forked
        result = execution.execute(nb, run_dir, {}, "python3", 120, kernel=kernel)
    assert result.status == "ok", result.error
    assert int(_outputs(run_dir / "01_first.ipynb").split()[2]) == os.getpid()  # launched by us, not forked


def test_a_single_notebook_or_no_preload_needs_no_server(run_dir, tmp_path):
    nb = notebook_file(tmp_path / "01_first.ipynb", "1")
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb]) as queue:
        assert queue.forks is None
    with kernels.KernelQueue("python3", run_dir, preload=False, notebooks=[nb, nb]) as queue:
        assert queue.forks is None


def test_only_this_interpreters_ipykernel_is_forked(tmp_path, monkeypatch):
    assert kernels.forkable("python3")
    assert not kernels.forkable("no-such-kernel")
    spec = tmp_path / "kernels" / "other"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": ["/opt/elsewhere/python", "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"], "display_name": "x", "language": "python"}))
    (tmp_path / "kernels" / "r").mkdir()
    (tmp_path / "kernels" / "r" / "kernel.json").write_text(json.dumps({"argv": ["R", "--slave", "-f", "{connection_file}"],
                                                                       "display_name": "R", "language": "R"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert not kernels.forkable("other") and not kernels.forkable("r")
    with kernels.KernelQueue("other", notebooks=[tmp_path / "a.ipynb", tmp_path / "b.ipynb"]) as queue:
        assert queue.forks is None


def test_a_kernels_own_output_goes_where_its_stand_ins_goes(run_dir, tmp_path, capfd):
    nb = notebook_file(tmp_path / "01_first.ipynb", "import os\nos.write(1, b'written on fd 1 by the kernel\\n')")
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb, nb]) as queue:
        result = execution.execute(nb, run_dir, {}, "python3", 120, kernel=queue.take(nb))
    assert result.status == "ok", result.error
    out = capfd.readouterr().out
    assert "written on fd 1 by the kernel" in out
    assert "To connect another client" not in out  # the kernel has a parent handle, like a launched one


def test_a_signal_before_the_kernel_exists_reaches_it_once_forked(run_dir, tmp_path):
    nb = notebook_file(tmp_path / "x.ipynb", "1")
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb, nb]) as queue:
        kernel = queue.take(nb)  # the server is still importing: the stand-in waits for its kernel
        stand_in = kernel.manager.provisioner.process
        stand_in.send_signal(signal.SIGTERM)
        assert stand_in.wait(timeout=60) == -signal.SIGTERM  # it died the way its kernel did
        assert queue.forks.alive()  # and the server carries on


def test_a_stand_in_without_a_server_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kernel_fork, "CONNECT_SECONDS", 0.1)
    assert kernel_fork.stand_in(str(tmp_path / "no-server"), ["-f", "x.json"]) == 3
    assert "no fork server at" in capsys.readouterr().err


@pytest.mark.parametrize("request_", [
    None, [], {"arguments": "-f x", "cwd": "/", "env": {}}, {"arguments": ["-f", 1], "cwd": "/", "env": {}},
    {"arguments": [], "cwd": None, "env": {}}, {"arguments": [], "cwd": "/", "env": {"A": 1}},
    {"arguments": [], "cwd": "/", "env": []}])
def test_what_is_not_a_kernel_request_is_refused(request_):
    assert not kernel_fork.valid_request(request_)


def test_a_kernel_request_is_valid():
    assert kernel_fork.valid_request({"arguments": ["-f", "c.json"], "cwd": "/tmp", "env": {"HOME": "/root"}})


def test_the_server_answers_a_malformed_request_with_an_error_and_forks_nothing(tmp_path):
    path = str(tmp_path / "server")
    server = subprocess.Popen([sys.executable, "-m", "runbook_lib.kernel_fork", "serve", path, str(os.getpid()),
                               "[]", "[]"], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        kernel_fork.send_message(sock, {"arguments": "not a list", "cwd": "/", "env": {}}, (0, 1, 2))
        answer, _ = kernel_fork.receive_message(sock)
        assert answer == {"error": "not a kernel request from this user"}
        assert kernel_fork.receive_message(sock)[0] is None  # and the connection ends
        assert server.poll() is None
    finally:
        server.terminate()
        assert server.wait(timeout=10) == 0


def test_a_message_over_the_limit_is_refused(tmp_path):
    left, right = socket.socketpair()
    left.sendall(kernel_fork.LENGTH_PREFIX.pack(kernel_fork.MESSAGE_LIMIT + 1))
    with pytest.raises(ValueError, match="over the"):
        kernel_fork.receive_message(right)
    left.close()
    assert kernel_fork.receive_message(right) == (None, [])


def test_the_usage_line_for_anything_else(capsys):
    assert kernel_fork.main(["what"]) == 2
    assert "usage: kernel_fork.py" in capsys.readouterr().err


def test_a_single_notebook_is_forked_when_asked(run_dir, tmp_path):
    """``runbook audit`` on its own lab: the server imports while the lab starts, the kernel is forked after."""
    nb = notebook_file(tmp_path / "01_first.ipynb", "1")
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb], fork=True) as queue:
        assert queue.forks is not None and queue.take(nb).forked
    with kernels.KernelQueue("python3", run_dir, notebooks=[nb, nb], fork=False) as queue:
        assert queue.forks is None


def test_a_server_that_cannot_be_launched_leaves_nothing_and_kernels_start_from_scratch(run_dir, tmp_path,
                                                                                       monkeypatch):
    import tempfile

    def no_processes(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(kernels.subprocess, "Popen", no_processes)
    before = set(os.listdir(tempfile.gettempdir()))
    nb = notebook_file(tmp_path / "x.ipynb", "1")
    queue = kernels.KernelQueue("python3", run_dir, notebooks=[nb, nb])
    assert queue.forks is None
    assert not [n for n in set(os.listdir(tempfile.gettempdir())) - before if n.startswith("runbook-forks-")]
