"""The runtime's handle on an environment process: start failures, replies, output, exit."""

import os
import sys

import pytest

from runbook_lib.lab.worker import EXITED, TIMEOUT, WorkerProcess, end_marker

CHILD = r"""
import json, os, sys
fd = int(os.environ["REPLY_FD"])
print("starting")
sys.stdout.flush()
os.write(1, b"\x00\x1elab-end init\x1e\x00\n")
os.write(fd, json.dumps({"op": "ready", "init_ms": 1}).encode() + b"\n")
for line in sys.stdin:
    message = json.loads(line)
    if message["event"] == "exit":
        sys.exit(7)
    if message["event"] == "hang":
        import time; time.sleep(30)
    print("got", message["event"])
    sys.stdout.flush()
    os.write(1, b"\x00\x1elab-end " + message["rid"].encode() + b"\x1e\x00\n")
    os.write(fd, json.dumps({"rid": message["rid"], "payload": message["event"]}).encode() + b"\n")
"""


def _worker() -> WorkerProcess:
    env = {}  # the reply fd is known just before the process starts: given to it here
    return WorkerProcess([sys.executable, "-c", CHILD], env, "/", None,
                         lambda fd: env.update(REPLY_FD=str(fd)))


def test_replies_output_timeout_and_exit():
    worker = _worker()
    try:
        lines = []
        assert worker.wait_ready(10, lines) == {"op": "ready", "init_ms": 1}
        assert [line for _, line in lines] == [b"starting"]
        lines = []
        reply, duration = worker.invoke("r-1", "hello", "arn", 5, lines)
        assert reply == {"rid": "r-1", "payload": "hello"} and duration > 0
        assert [line for _, line in lines] == [b"got hello"]
        assert worker.invoke("r-2", "hang", "arn", 0.3, [])[0] == TIMEOUT
    finally:
        worker.close()
    worker = _worker()
    try:
        worker.wait_ready(10, [])
        assert worker.invoke("r-3", "exit", "arn", 5, [])[0] == EXITED
        assert worker.exit_code() == 7 and not worker.alive
    finally:
        worker.close()


def _pipes() -> set[str]:
    """This process's open pipes (other threads of a test worker open and close other files meanwhile)."""
    pipes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing
            continue
        if target.startswith("pipe:"):
            pipes.add(f"{fd}={target}")
    return pipes


def test_a_command_that_cannot_start_raises_and_leaks_no_pipe():
    before = _pipes()
    with pytest.raises(FileNotFoundError):
        WorkerProcess(["/nonexistent/wrapper"], {}, "/", None, lambda fd: None)
    assert _pipes() - before == set()


def test_end_marker_frames_one_line():
    assert end_marker("r-1") == b"\x00\x1elab-end r-1\x1e\x00\n"
