"""A fork server for kernels: the imports are paid once per command, each notebook still gets a fresh process.

Starting an IPython kernel and importing what the notebooks use (ipykernel, boto3, pandas,
matplotlib, the ``runbook_lib`` modules) costs about 3.5 s of CPU, once per notebook. The
:class:`ForkServer` pays it once: a process that imports all of it, then waits. Each kernel
is a child it forks on request, so a notebook starts in a process of its own, with nothing
in it but those imports (the server never runs a cell), and exits when its notebook is done:
evidence isolation is the same as with a kernel started from scratch.

jupyter_client still launches and manages every kernel: the kernel spec's command is this
file run as a small script (``python -I -S kernel_fork.py connect SOCKET -- ARGS``), the
*stand-in*. It hands the server its arguments, working folder, environment and its stdin,
stdout and stderr (``SCM_RIGHTS``), forwards every signal it gets to the kernel (interrupts,
terminate) and exits with the kernel's status. When the stand-in is killed, the server sees
its connection close and kills the kernel; when the server or its parent dies, the kernels
go too (IPython's parent poller, the server's own watch on its parent).

The socket lives in a private (0700) folder, and the server serves only its own user
(``SO_PEERCRED``). This file imports only the standard library at its top, because the
stand-in runs it with ``-I -S``.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

#: How long a stand-in waits for the server's socket to appear (the server binds it at once).
CONNECT_SECONDS = 30.0
#: Signals a stand-in passes on to its kernel (SIGKILL cannot be caught: the server reacts to it).
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
LENGTH_PREFIX = struct.Struct("!I")
MESSAGE_LIMIT = 4 << 20
_PEERCRED = struct.Struct("3i")


def send_message(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    payload = LENGTH_PREFIX.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [payload[:1]], list(fds))
        payload = payload[1:]
    sock.sendall(payload)


def receive_message(sock: socket.socket, want_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One length-prefixed JSON message (None at end of stream) and the descriptors sent with it."""
    fds: list[int] = []
    head = b""
    if want_fds:
        head, fds, _flags, _address = socket.recv_fds(sock, 1, want_fds)
        if not head:
            return None, fds
    head += _recv_exactly(sock, LENGTH_PREFIX.size - len(head))
    if len(head) < LENGTH_PREFIX.size:
        return None, fds
    (length,) = LENGTH_PREFIX.unpack(head)
    if length > MESSAGE_LIMIT:
        raise ValueError(f"fork-server message of {length} bytes is over the {MESSAGE_LIMIT} limit")
    body = _recv_exactly(sock, length)
    if len(body) < length:
        return None, fds
    return json.loads(body), fds


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


# -- the stand-in that jupyter_client launches ------------------------------------------------
def stand_in(socket_path: str, kernel_arguments: list[str]) -> int:
    """Have the server fork a kernel with these arguments; be that kernel to whoever launched us."""
    kernel: list[int] = []  # its pid, once the server has forked it
    pending: list[int] = []  # signals that came before: delivered once the kernel exists

    def forward(signum, _frame):
        if not kernel:
            pending.append(signum)
            return
        try:
            os.kill(kernel[0], signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + CONNECT_SECONDS
    while True:
        try:
            sock.connect(socket_path)
            break
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            if time.monotonic() > deadline:
                print(f"runbook kernel: no fork server at {socket_path} ({exc.strerror}): kernel not started",
                      file=sys.stderr)
                return 3
            time.sleep(0.02)
    request = {"arguments": kernel_arguments, "cwd": os.getcwd(), "env": dict(os.environ)}
    send_message(sock, request, (0, 1, 2))
    started, _ = receive_message(sock)
    if not started or "pid" not in started:
        print(f"runbook kernel: the fork server refused: {(started or {}).get('error', 'no answer')}",
              file=sys.stderr)
        return 3
    kernel.append(started["pid"])
    for signum in pending:
        forward(signum, None)
    finished, _ = receive_message(sock)
    if not finished:  # the server went away: so did the kernel (it watches its parent)
        return 1
    if finished.get("signal"):  # die the way the kernel died, so the manager sees the same thing
        signal.signal(finished["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), finished["signal"])
    return int(finished.get("status", 1))


# -- the server ---------------------------------------------------------------------------------
def valid_request(request: object) -> bool:
    """A request names string arguments, a working folder and a string-to-string environment."""
    if not isinstance(request, dict):
        return False
    arguments, cwd, env = request.get("arguments"), request.get("cwd"), request.get("env")
    return (isinstance(arguments, list) and all(isinstance(a, str) for a in arguments)
            and isinstance(cwd, str) and isinstance(env, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()))


def peer_uid(conn: socket.socket) -> int:
    _pid, uid, _gid = _PEERCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
    return uid


class Server:
    """The server's loop: accept stand-ins, fork their kernels, report each kernel's end."""

    def __init__(self, socket_path: str, parent_pid: int):
        self.parent_pid = parent_pid
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(socket_path)
        self.listener.listen(16)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.kernels: dict[int, socket.socket] = {}  # kernel pid -> its stand-in's connection
        self.stopping = False

    def preload(self, modules: list[str], warm: list[str]) -> None:
        """Import what the kernels will import; a failure here is left for the notebook's own cell to show."""
        import importlib

        for module in modules:
            try:
                importlib.import_module(module)
            except Exception:
                pass
        for line in warm:
            try:
                exec(line, {})
            except Exception:
                pass

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the runner, which stops us
        while not self.stopping:
            for key, _events in self.selector.select(timeout=0.2):
                if key.fileobj is self.listener:
                    self._accept()
                else:  # a stand-in's connection closed: it was killed, so its kernel goes too
                    self._kill(key.data)
            self._reap()
            if os.getppid() != self.parent_pid:
                self.stopping = True
        for pid in list(self.kernels):
            self._kill(pid)
        self._reap(wait=True)

    def _stop(self, _signum, _frame) -> None:
        self.stopping = True

    def _accept(self) -> None:
        conn, _address = self.listener.accept()
        conn.settimeout(10)  # a stand-in sends its request at once: one that does not holds up no other
        try:
            request, fds = receive_message(conn, want_fds=3)
        except (OSError, ValueError):
            conn.close()
            return
        conn.settimeout(None)
        if peer_uid(conn) != os.getuid() or len(fds) != 3 or not valid_request(request):
            for fd in fds:
                os.close(fd)
            with contextlib.suppress(OSError, KeyError, ValueError):
                send_message(conn, {"error": "not a kernel request from this user"})
            conn.close()
            return
        pid = os.fork()
        if pid == 0:
            self._become_kernel(request, fds, conn)
        for fd in fds:
            os.close(fd)
        self.kernels[pid] = conn
        self.selector.register(conn, selectors.EVENT_READ, pid)
        try:
            send_message(conn, {"pid": pid})
        except OSError:  # the stand-in is gone already: so goes its kernel
            self._kill(pid)

    def _become_kernel(self, request: dict, fds: list[int], conn: socket.socket) -> None:
        """In the forked child: drop the server's state, take the stand-in's world, run the kernel."""
        status = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            self.listener.close()
            for other in self.kernels.values():
                other.close()
            conn.close()
            for target, fd in zip((0, 1, 2), fds):
                os.dup2(fd, target)
                os.close(fd)
            os.chdir(request["cwd"])
            os.environ.clear()
            os.environ.update(request["env"])
            from ipykernel.kernelapp import IPKernelApp

            # the kernel exits when the server does; a parent handle also keeps it from printing
            # "To connect another client to this kernel" on the runner's stdout
            arguments = [*request["arguments"], f"--IPKernelApp.parent_handle={os.getppid()}"]
            sys.argv = ["ipykernel_launcher", *arguments]
            IPKernelApp.launch_instance(arguments)
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def _kill(self, pid: int) -> None:
        conn = self.kernels.get(pid)
        if conn is not None:
            self.selector.unregister(conn)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _reap(self, wait: bool = False) -> None:
        while self.kernels:
            try:
                pid, status = os.waitpid(-1, 0 if wait else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.kernels.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.selector.unregister(conn)
            with contextlib.suppress(OSError, KeyError, ValueError):
                end = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                       else {"status": os.waitstatus_to_exitcode(status)})
                send_message(conn, end)
            conn.close()


def main(argv: list[str]) -> int:
    """``connect SOCKET -- ARGS...`` (the stand-in) or ``serve SOCKET PARENT_PID MODULES_JSON WARM_JSON``."""
    if len(argv) >= 2 and argv[0] == "connect":
        arguments = argv[3:] if len(argv) > 2 and argv[2] == "--" else argv[2:]
        return stand_in(argv[1], arguments)
    if len(argv) == 5 and argv[0] == "serve":
        server = Server(argv[1], int(argv[2]))
        server.preload(json.loads(argv[3]), json.loads(argv[4]))
        server.serve()
        # the interpreter's teardown of everything preloaded takes about a second, which the runner
        # would wait for: nothing is left to flush but stdio
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    print("usage: kernel_fork.py connect SOCKET -- KERNEL_ARGS... | serve SOCKET PARENT_PID MODULES WARM",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
