"""Executing one notebook: a private kernel that never imports from the run folder.

A run folder is data. An archived one may have been handled by anyone, and a kernel
started inside it would import a planted ``runbook_lib/__init__.py``, ``json.py`` or
``boto3.py`` with the operator's credentials (IPython puts the working directory on
``sys.path``). So a kernel's working directory is a fresh private (0700) folder holding
only a link to the run folder, named so that it can never be imported (the run folder's
own name when it starts with a digit, as every ``runbook run`` folder does, else
``run-folder``); the notebooks get that relative name as ``run_dir``, so no absolute
path reaches an artifact. ``PYTHONSAFEPATH=1`` keeps the working directory off
``sys.path`` altogether (Python 3.11+; IPython 9.7+ honours it too).

After execution, :func:`scrub_notebook_file` replaces the machine's paths (home, working
directory, temporary folder, Python and site-packages, the run folder) in papermill's
metadata, the injected parameters and every output, tracebacks included.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import signal
import site
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .exceptions import NotebookError
from .kernels import PrivateKernel
from .render import terminal

#: Environment of every headless kernel (on top of the runner's own).
KERNEL_ENV = {"RUNBOOK_HEADLESS": "1", "MPLBACKEND": "Agg", "PYTHONSAFEPATH": "1"}
_SAFE_LINK = re.compile(r"[0-9][0-9A-Za-z._-]{0,200}")


@dataclass
class NotebookRun:
    name: str
    status: str = "pending"  # ok / failed / skipped
    seconds: float = 0.0
    error: str = ""


#: How much the runner says on stderr: ``runbook -q`` sets WARNING (failures only), ``-v`` DEBUG
#: (each cell's output as papermill logs it). Only the level is used: lines are printed, not handled.
LOG = logging.getLogger("runbook")
LOG.setLevel(logging.INFO)


def progress_line(line: str, level: int = logging.INFO) -> None:
    """``[runbook] line`` on stderr, when the runner's verbosity includes ``level``."""
    if LOG.isEnabledFor(level):
        print(f"[runbook] {terminal(line)}", file=sys.stderr, flush=True)


class KernelOutput(logging.Handler):
    """What a kernel says, as the runner's progress lines (machine paths replaced).

    Its ``write`` is papermill's ``stderr_file``: the kernel's own progress lines (``[runbook] ...``, one
    per step of a long loop or wait) become ``[runbook] NOTEBOOK: ...`` at INFO. As a logging handler on
    papermill's ``log_output`` (``runbook -v``) every other line of every cell's output is a DEBUG line.
    """

    PREFIX = "[runbook] "

    def __init__(self, notebook: str, replacements: list[tuple[str, str]]):
        super().__init__(logging.DEBUG)
        self.notebook, self.replacements, self._partial = notebook, replacements, ""

    def _say(self, text: str, level: int) -> None:
        progress_line(f"{self.notebook}: {scrub_text(text, self.replacements)}", level)

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.startswith(self.PREFIX):
                self._say(line[len(self.PREFIX):], logging.INFO)
        return len(text)

    def flush(self) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        for text in record.getMessage().splitlines():
            if text.strip() and not text.startswith(self.PREFIX):  # those came through write()
                self._say(text, logging.DEBUG)


@contextlib.contextmanager
def kernel_output(notebook: str, replacements: list[tuple[str, str]]) -> Iterator[tuple[KernelOutput, bool]]:
    """``(stderr_file, log_output)`` for papermill: progress lines always, every output line under ``-v``."""
    output = KernelOutput(notebook, replacements)
    if not LOG.isEnabledFor(logging.DEBUG):
        yield output, False
        return
    papermill_log = logging.getLogger("papermill")
    level = papermill_log.level
    papermill_log.addHandler(output)
    papermill_log.setLevel(logging.INFO)
    try:
        yield output, True
    finally:
        papermill_log.removeHandler(output)
        papermill_log.setLevel(level)


#: papermill saves the output notebook when each cell starts and ends; on the lab that is ~35 full writes
#: (validated JSON) per notebook on the runner's critical path. The engine below saves at most this often
#: while cells run, and always at the end, whatever the end (papermill's final save runs in a ``finally``).
SAVE_EVERY_SECONDS = 2.0
ENGINE_NAME = "runbook"


@functools.cache
def register_engine() -> str:
    """Register (once per process) papermill's nbclient engine with throttled saves; return its name."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

    class ThrottledSaves(NotebookExecutionManager):
        stop: threading.Event | None = None  # set: no further cell starts (Ctrl-C, see ctrl_c_noted)

        def save(self, **kwargs):
            since = (self.now() - self.last_save_time).total_seconds()
            if self.end_time is None and since < SAVE_EVERY_SECONDS:
                return
            super().save(**kwargs)

        def cell_complete(self, cell, cell_index=None, **kwargs):
            super().cell_complete(cell, cell_index=cell_index, **kwargs)
            if self.stop is not None and self.stop.is_set():
                raise KeyboardInterrupt

    class ThrottledEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, stop=None, **kwargs):
            manager = ThrottledSaves(nb, output_path=output_path, progress_bar=progress_bar,
                                     log_output=log_output, autosave_cell_every=autosave_cell_every)
            manager.stop = stop
            manager.notebook_start()
            try:
                cls.execute_managed_notebook(manager, kernel_name, log_output=log_output, **kwargs)
            finally:
                manager.cleanup_pbar()
                manager.notebook_complete()
            return manager.nb

    papermill_engines.register(ENGINE_NAME, ThrottledEngine)
    return ENGINE_NAME


@contextlib.contextmanager
def ctrl_c_noted(kernel: PrivateKernel, noted: threading.Event) -> Iterator[None]:
    """While a notebook runs, Ctrl-C sets ``noted``, interrupts the running cell, then raises.

    The KeyboardInterrupt alone can be lost: one raised while the runner happens to be in a
    ``__del__`` or a garbage-collection callback (jupyter_client's clients have both) is
    printed and dropped by Python, and the notebook would run on. The kernel's own interrupt
    ends a running cell either way, the engine starts no cell after ``noted`` is set, and
    ``noted`` tells :func:`execute` what happened.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return

    def on_ctrl_c(_signum, _frame):
        noted.set()
        kernel.interrupt()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def kernel_run_dir(run_dir: Path) -> str:
    """The relative name under which a kernel sees the run folder (never importable)."""
    name = Path(run_dir).resolve().name
    return name if _SAFE_LINK.fullmatch(name) else "run-folder"


def execute(notebook: Path, run_dir: Path, parameters: dict, kernel_name: str,
            cell_timeout: int, kernel: PrivateKernel | None = None) -> NotebookRun:
    """Run one notebook into the run folder; failures become a one-line error, output kept.

    ``kernel``: the notebook's own kernel, already started (:class:`runbook_lib.kernels.KernelQueue`);
    it is asked to exit afterwards and reaped by its queue. None: one is started here and shut down.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    record = NotebookRun(notebook.stem)
    output = run_dir / notebook.name
    started = time.monotonic()
    progress_line(f"{notebook.stem}: running")
    owned = kernel is None
    kernel = kernel or PrivateKernel(kernel_name, run_dir)
    replacements = path_replacements(run_dir, kernel.cwd)
    interrupted = threading.Event()
    try:
        if output.is_symlink():  # papermill would write through it, outside the folder
            raise NotebookError(notebook.stem, f"{output.name} in the run folder is a symlink: not written")
        with kernel_output(notebook.stem, replacements) as (kernel_stderr, verbose), \
                ctrl_c_noted(kernel, interrupted):
            papermill.execute_notebook(
                str(notebook), str(output), parameters=parameters, kernel_name=kernel_name, km=kernel.manager,
                cwd=kernel.cwd, execution_timeout=cell_timeout, progress_bar=False, engine_name=register_engine(),
                request_save_on_cell_execute=True, log_output=verbose, stderr_file=kernel_stderr, stop=interrupted)
        record.status = "ok"
    except PapermillExecutionError as exc:
        record.status = "failed"
        evalue = " ".join(scrub_text(str(exc.evalue), replacements).split())
        record.error = str(NotebookError(notebook.stem, f"{exc.ename}: {evalue}", cell=exc.exec_count))
    except NotebookError as exc:
        record.status, record.error = "failed", str(exc)
    except Exception as exc:  # a dead kernel, a timeout: keep going to archive what exists
        record.status = "failed"
        message = scrub_text(f"{type(exc).__name__}: {exc}", replacements)
        record.error = str(NotebookError(notebook.stem, message, cell=running_cell(output)))
    except KeyboardInterrupt:  # Ctrl-C: the folder is still finished and signed, then exit 2
        interrupted.set()
    finally:
        if owned:
            kernel.close()
        else:
            kernel.begin_close()
    if interrupted.is_set():  # whatever papermill made of the interrupted cell
        record.status = "failed"
        record.error = str(NotebookError(notebook.stem, "interrupted", cell=running_cell(output)))
    record.seconds = round(time.monotonic() - started, 1)
    if output.is_file() and not output.is_symlink():
        scrub_notebook_file(output, replacements)
    progress_line(f"{notebook.stem}: {record.status} in {record.seconds:.1f}s"
                  + (f" - {record.error}" if record.error else ""),
                  logging.WARNING if record.status == "failed" else logging.INFO)
    return record


def running_cell(output: Path) -> int | None:
    """The execution count of the cell that was running when the kernel died or timed out.

    papermill gives every cell it started a ``start_time``; code cells run in order, so the
    last started one is the culprit and its position among code cells is its execution count.
    """
    import nbformat

    try:
        nb = nbformat.read(str(output), as_version=4)
    except Exception:  # no output written yet: the notebook is named without a cell
        return None
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    started = [n for n, c in enumerate(code_cells, start=1) if c.metadata.get("papermill", {}).get("start_time")]
    return started[-1] if started else None


# -- output hygiene -----------------------------------------------------------------
def path_replacements(run_dir: Path, kernel_cwd: str = "") -> list[tuple[str, str]]:
    """Absolute paths of this machine and what an archived notebook says instead, longest first."""
    package = Path(__file__).resolve().parent
    pairs = [(str(Path(run_dir).resolve()), kernel_run_dir(run_dir)), (str(package), package.name),
             (str(Path.cwd()), "<cwd>"), (tempfile.gettempdir(), "<tmp>"), (str(Path.home()), "~")]
    if kernel_cwd:
        pairs.append((kernel_cwd, "."))
    sites = list(site.getsitepackages()) + [site.getusersitepackages()]
    pairs += [(p, "<site-packages>") for p in sites]
    pairs += [(p, "<python>") for p in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}]
    out = {}
    for absolute, placeholder in pairs:
        for variant in {absolute, os.path.realpath(absolute)}:
            if variant and variant != "/":
                out.setdefault(variant.rstrip("/"), placeholder)
    return sorted(out.items(), key=lambda p: -len(p[0]))


def scrub_text(text: str, replacements: list[tuple[str, str]]) -> str:
    """``text`` with each absolute path replaced where it is a whole path (``/tmp``, not ``/tmpx``)."""
    if not replacements:
        return text
    by_path = dict(replacements)
    pattern = "|".join(re.escape(absolute) for absolute, _ in replacements)  # longest first
    return re.sub(f"(?:{pattern})(?![\\w.-])", lambda m: by_path[m.group()], text)


def _scrub_output(output, replacements: list[tuple[str, str]]) -> None:
    if output.get("output_type") == "stream":
        output["text"] = scrub_text(output.get("text", ""), replacements)
    elif output.get("output_type") == "error":
        output["evalue"] = scrub_text(output.get("evalue", ""), replacements)
        output["traceback"] = [scrub_text(line, replacements) for line in output.get("traceback", [])]
    else:
        for mime, value in list(output.get("data", {}).items()):
            if mime.startswith("text/") or mime.endswith("+json") or mime == "application/json":
                text = value if isinstance(value, str) else json.dumps(value)
                scrubbed = scrub_text(text, replacements)
                output["data"][mime] = scrubbed if isinstance(value, str) else json.loads(scrubbed)


def scrub_notebook_file(path: Path, replacements: list[tuple[str, str]]) -> None:
    """Remove absolute paths and user names from papermill's metadata, the injected cell and outputs."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = Path(meta[key]).name
    if "parameters" in meta:
        meta["parameters"] = json.loads(scrub_text(json.dumps(meta["parameters"]), replacements))
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = scrub_text(cell.source, replacements)
        for output in cell.get("outputs", []):
            _scrub_output(output, replacements)
    nbformat.write(nb, str(path))
