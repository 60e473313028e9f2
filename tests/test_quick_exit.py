"""Ending a command quickly: what an orderly exit does still happens, and nothing is cut short."""

import json
import os
import subprocess
import sys
import textwrap


#: Buffered standard streams, as a terminal user's Python has them (this build shell sets PYTHONUNBUFFERED).
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=60, env=BUFFERED)


def test_the_exit_code_atexit_handlers_finalizers_and_unflushed_output_all_survive(tmp_path):
    marker = tmp_path / "atexit-ran"
    done = _run(f"""
        import atexit, pathlib, sys, tempfile
        from runbook_lib.quick_exit import exit_now
        atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text("ran"))
        folder = tempfile.TemporaryDirectory(dir={str(tmp_path)!r})  # removed by its weakref finalizer at exit
        sys.stdout.write("no newline, never flushed")
        sys.stderr.write("on stderr too")
        exit_now(3)
    """)
    assert done.returncode == 3
    assert done.stdout == "no newline, never flushed" and done.stderr == "on stderr too"
    assert marker.read_text() == "ran"
    assert [p.name for p in tmp_path.iterdir()] == ["atexit-ran"]  # the temporary folder went


def test_a_working_thread_is_waited_for_as_a_normal_exit_would(tmp_path):
    marker = tmp_path / "thread-finished"
    done = _run(f"""
        import pathlib, threading, time
        from runbook_lib.quick_exit import exit_now, other_threads_working
        def work():
            time.sleep(0.3)
            pathlib.Path({str(marker)!r}).write_text("finished")
        threading.Thread(target=work).start()
        print(other_threads_working())
        exit_now(4)
    """)
    assert done.returncode == 4 and done.stdout == "True\n"
    assert marker.read_text() == "finished"


def test_daemon_threads_do_not_hold_the_exit():
    done = _run("""
        import threading, time
        from runbook_lib.quick_exit import exit_now, other_threads_working
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        print(other_threads_working())
        exit_now(0)
    """)
    assert done.returncode == 0 and done.stdout == "False\n"


def test_a_closed_stdout_keeps_the_exit_code():
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys
        from runbook_lib.quick_exit import exit_now
        sys.stdout.write("x" * 100)  # held in the buffer: only the exit's flush sends it
        sys.stdin.buffer.readline()  # until the reader has gone (| head)
        exit_now(3)
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=BUFFERED)
    child.stdout.close()
    child.stdin.write(b"go\n")
    child.stdin.close()
    assert child.wait(timeout=60) == 3
    assert child.stderr.read() == b""  # no "Exception ignored ... BrokenPipeError"


def test_the_runbook_command_exits_through_it(tmp_path):
    (tmp_path / "settings.py").write_text("TIMEOUT = 3\n")
    done = subprocess.run([sys.executable, "-c", "from runbook_lib.quick_exit import console_main; console_main()",
                           "scan", str(tmp_path), "--format", "json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []  # nothing found, and all of it printed
