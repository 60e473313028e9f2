"""Private kernels, each started one notebook ahead so its start and imports overlap the previous notebook.

Every notebook still gets a kernel of its own, started for it and used by nothing else
(evidence isolation): only the start overlaps. A kernel is launched with
``IPKernelApp.exec_lines`` that import the modules its notebook will import (its
``runbook_lib`` imports, read from the notebook's cells, and the heavy libraries they load
lazily: pandas, matplotlib, boto3), so the kernel answers its first request with those
already loaded, and with the scanner's patterns compiled (:data:`WARM_LINES`). The lines bind no name in the notebook's namespace and do not count as
executions (IPython runs them with ``store_history=False``); an import that fails there is
ignored, and fails again, visibly, in the notebook's own cell.

When the queue knows its command's notebooks and the kernel spec is this interpreter's
ipykernel, the kernels are forked from one :class:`ForkServer` that imported all of that once
(:mod:`runbook_lib.kernel_fork`): a fresh process per notebook, the imports paid once per
command. Without a fork server (another kernel spec, a server that died) each kernel starts
from scratch as before.

A kernel that died before its notebook started is replaced by a fresh one
(:meth:`KernelQueue.take`). Kernels that are done are asked to exit at once and reaped
later (:meth:`KernelQueue.close`), so their shutdown also overlaps the next notebook.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

#: Libraries the runbook's modules import lazily inside cells (tables, charts, clients, the scanner);
#: pandas' Styler (every styled table) alone costs 0.8 s of CPU: it loads jinja2, its templates and pyplot.
HEAVY_IMPORTS = ("boto3", "pandas", "pandas.io.formats.style", "matplotlib.figure",
                 "matplotlib.backends.backend_agg", "runbook_lib.scanning")
#: Work a kernel does while it boots, besides imports: every notebook scans (the audit, the change's
#: checks, validation, the leak guard's values), and the scanner's patterns compile once per process;
#: every notebook makes clients, whose service models are parsed once per process, and shows tables, whose
#: first rendering compiles pandas' templates (0.09 s).
WARM_LINES = ('__import__("runbook_lib.scan_prefilter").scan_prefilter.shared_prefilter();',
              '__import__("runbook_lib.session").session.warm_service_models();',
              '__import__("runbook_lib.render").render.readable_table(__import__("pandas").DataFrame({"a": ["b"]}))'
              '._repr_html_();')
#: What nbclient passes when it starts a kernel itself: no history file on disk.
HISTORY_ARGUMENT = "--HistoryManager.hist_file=:memory:"
#: What every kernel imports before it runs a cell, besides :data:`HEAVY_IMPORTS`: a fork server loads it once.
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell")


def notebook_imports(notebook: Path) -> list[str]:
    """The ``runbook_lib`` modules a notebook's code cells import at their top level, in order.

    >>> notebook_imports(Path("missing.ipynb"))
    []
    """
    try:
        cells = json.loads(Path(notebook).read_text()).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return []
    modules: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = "".join(cell.get("source", ""))
        try:
            tree = ast.parse(source)
        except SyntaxError:  # a magic or shell line: that cell has nothing to preload
            continue
        for node in tree.body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            modules += [n for n in names if n.split(".")[0] == "runbook_lib" and n not in modules]
    return modules


def preimport_lines(modules: Sequence[str]) -> list[str]:
    """One ``exec_lines`` argument per module: ``__import__`` binds no name, ``;`` displays nothing.

    >>> preimport_lines(["pandas"])
    ['--IPKernelApp.exec_lines=__import__("pandas");']
    """
    return [f'--IPKernelApp.exec_lines=__import__({json.dumps(m)});' for m in modules]


class PrivateKernel:
    """A kernel on IPC sockets in a private (0700) folder, working in an empty folder beside them.

    The default TCP transport opens loopback ports any local user can reach; sockets in a
    folder only the runner's user can open keep the kernel, which handles the run's AWS
    credentials, to this user. ``cwd`` holds nothing but the link to the run folder.
    """

    def __init__(self, kernel_name: str, run_dir: Path | None, forks: "ForkServer | None" = None):
        # The async manager gives nbclient async channels: with blocking ones it waits on
        # IOPub forever when the kernel dies, instead of noticing the death.
        from jupyter_client.manager import AsyncKernelManager

        self.folder = tempfile.mkdtemp(prefix="runbook-kernel-")
        self.cwd = os.path.join(self.folder, "cwd")
        os.mkdir(self.cwd, 0o700)
        if run_dir is not None:
            self.link(run_dir)
        specs = {"kernel_spec_manager": forks.spec_manager} if forks is not None else {}
        self.manager = AsyncKernelManager(kernel_name=kernel_name, transport="ipc",
                                          ip=os.path.join(self.folder, "kernel"),
                                          client_class="runbook_lib.kernel_client.ReadyClient", **specs)
        self.forked = forks is not None
        self.stopping = False

    def link(self, run_dir: Path) -> None:
        """Put the link to the run folder in the kernel's working folder (before its notebook runs)."""
        from .execution import kernel_run_dir

        os.symlink(Path(run_dir).resolve(), os.path.join(self.cwd, kernel_run_dir(run_dir)))

    def start(self, preimports: Sequence[str] = (), warm: Sequence[str] = ()) -> None:
        """Launch the kernel process now (this returns at once); it imports ``preimports``, then runs the
        ``warm`` lines (expressions that bind no name), while it starts."""
        from jupyter_core.utils import run_sync

        arguments = [HISTORY_ARGUMENT, *preimport_lines(preimports),
                     *(f"--IPKernelApp.exec_lines={line}" for line in warm)]
        run_sync(self.manager.start_kernel)(cwd=self.cwd, extra_arguments=arguments)

    def alive(self) -> bool:
        """True while the kernel process runs."""
        from jupyter_core.utils import run_sync

        try:
            return bool(self.manager.has_kernel and run_sync(self.manager.is_alive)())
        except Exception:  # a manager that cannot even poll its process has no usable kernel
            return False

    def interrupt(self) -> None:
        """Send the kernel SIGINT, as Jupyter's interrupt does (a forked kernel's stand-in forwards it).

        Plain system calls only: this runs in the runner's Ctrl-C handler.
        """
        process = getattr(getattr(self.manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            with contextlib.suppress(OSError):
                process.send_signal(signal.SIGINT)

    def begin_close(self) -> None:
        """Ask the kernel to exit, without waiting for it (:meth:`close` reaps it)."""
        from jupyter_core.utils import run_sync

        try:
            if self.manager.has_kernel and not self.stopping:
                run_sync(self.manager.request_shutdown)()
                self.stopping = True
        except Exception:  # a dead kernel cannot be asked: close() still kills and cleans up
            pass

    def close(self) -> None:
        from jupyter_core.utils import run_sync

        try:
            if self.manager.has_kernel:
                # asked, then waited for (killed when it takes too long); never shutdown_kernel, whose
                # SIGINT first makes an idle kernel print "KeyboardInterrupt caught in kernel" on stderr
                if not self.stopping:
                    run_sync(self.manager.request_shutdown)()
                    self.stopping = True
                run_sync(self.manager.finish_shutdown)()
                run_sync(self.manager.cleanup_resources)()
        except Exception:  # a dead kernel cannot be shut down: its folder still goes
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


class ForkServer:
    """The process kernels are forked from (:mod:`runbook_lib.kernel_fork`), and the kernel spec that asks it.

    :meth:`start` returns None when the kernel spec is not this interpreter's ipykernel (a fork
    of this interpreter would not be that kernel) or the server cannot be launched: the
    caller then starts kernels from scratch.
    """

    def __init__(self, kernel_name: str, modules: Sequence[str], warm: Sequence[str]):
        from jupyter_client.kernelspec import KernelSpecManager

        self.folder = tempfile.mkdtemp(prefix="runbook-forks-")
        self.socket = os.path.join(self.folder, "server")
        specs = os.path.join(self.folder, "kernels")
        os.makedirs(os.path.join(specs, kernel_name))
        script = str(Path(__file__).with_name("kernel_fork.py"))
        spec = {"argv": [sys.executable, "-I", "-S", script, "connect", self.socket, "--", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)", "language": "python", "interrupt_mode": "signal",
                "metadata": {"debugger": True}}
        Path(specs, kernel_name, "kernel.json").write_text(json.dumps(spec))
        self.spec_manager = KernelSpecManager(kernel_dirs=[specs], ensure_native_kernel=False)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "runbook_lib.kernel_fork", "serve", self.socket, str(os.getpid()),
                 json.dumps(list(modules)), json.dumps(list(warm))],
                stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    @classmethod
    def start(cls, kernel_name: str, modules: Sequence[str], warm: Sequence[str] = ()) -> "ForkServer | None":
        if not forkable(kernel_name):
            return None
        try:
            return cls(kernel_name, modules, warm)
        except (OSError, ValueError):
            return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Stop the server (its kernels, all done by now, go with it) and remove its folder."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def forkable(kernel_name: str) -> bool:
    """True when ``kernel_name`` is this interpreter's ipykernel, which a fork of this interpreter can be."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        argv = KernelSpecManager().get_kernel_spec(kernel_name).argv
    except (NoSuchKernel, OSError, ValueError):
        return False
    if len(argv) < 3 or argv[1:3] != ["-m", "ipykernel_launcher"]:
        return False
    interpreter = argv[0]
    same_names = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2]}
    return interpreter in same_names or os.path.realpath(interpreter) == os.path.realpath(sys.executable)


class KernelQueue:
    """Kernels for the notebooks of one command, each started while the notebook before it runs.

    Use it as a context manager: leaving it reaps every kernel it started.

    Examples
    --------
    >>> with KernelQueue("python3", run_dir) as kernels:        # doctest: +SKIP
    ...     kernel = kernels.take(notebooks[0])                 # started now, or earlier by prestart
    ...     kernels.prestart(notebooks[1])                      # boots while notebooks[0] runs
    """

    def __init__(self, kernel_name: str, run_dir: Path | None = None, preload: bool = True,
                 notebooks: Sequence[Path] = (), fork: bool | None = None):
        self.kernel_name, self.preload = kernel_name, preload
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.waiting: tuple[Path, PrivateKernel] | None = None
        self.started: list[PrivateKernel] = []
        self.forks: ForkServer | None = None
        # ``fork`` None: a fork server for several notebooks. The runner asks for one for a single notebook
        # too: its kernel is as fast to its first cell, and a forked kernel exits without Python's teardown
        if preload and notebooks and (fork if fork is not None else len(notebooks) > 1):
            modules = dict.fromkeys([*KERNEL_MODULES, *HEAVY_IMPORTS, *(m for nb in notebooks for m in notebook_imports(nb))])
            self.forks = ForkServer.start(kernel_name, list(modules), WARM_LINES)

    def _start(self, notebook: Path) -> PrivateKernel:
        forks = self.forks if self.forks is not None and self.forks.alive() else None
        kernel = PrivateKernel(self.kernel_name, self.run_dir, forks)
        self.started.append(kernel)
        try:
            if self.preload:
                kernel.start([*HEAVY_IMPORTS, *notebook_imports(notebook)], WARM_LINES)
            else:
                kernel.start()
        except Exception:  # papermill starts it, and reports why it cannot
            pass
        return kernel

    def link(self, run_dir: Path) -> None:
        """The run folder, once it exists: kernels started before get their link to it now."""
        self.run_dir = Path(run_dir)
        for kernel in self.started:
            kernel.link(self.run_dir)

    def prestart(self, notebook: Path) -> None:
        """Start the kernel of ``notebook`` now, to be taken when that notebook runs."""
        if self.waiting is not None:
            self.waiting[1].begin_close()
        self.waiting = (Path(notebook), self._start(notebook))

    def take(self, notebook: Path) -> PrivateKernel:
        """The kernel started for ``notebook``, or a fresh one when there is none or it died before use."""
        if self.run_dir is None:
            raise RuntimeError("KernelQueue.link(run_dir) must come before take()")
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            planned, kernel = waiting
            if planned == Path(notebook) and kernel.alive():
                return kernel
            kernel.begin_close()
        return self._start(notebook)

    def done(self, kernel: PrivateKernel) -> None:
        """``kernel``'s notebook has finished: let it exit while the next one runs."""
        kernel.begin_close()

    def close(self) -> None:
        """Reap every kernel (unused ones included) and remove their folders."""
        self.waiting = None
        for kernel in self.started:
            kernel.begin_close()
        for kernel in self.started:
            kernel.close()
        self.started = []
        if self.forks is not None:
            self.forks.close()
            self.forks = None

    def __enter__(self) -> "KernelQueue":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
