"""What every notebook sets up first: target, identity, ledger, check log, progress.

Keeps the first cells of each notebook to a line or two and identical across the
four, so an operator reads the same banner everywhere: which target (and that lab
evidence is not production evidence), which account and identity, which run folder.

Examples
--------
>>> ctx = start_notebook("01_test_plan", "baseline", target="lab", region="us-east-1",
...                      profile="", endpoint_url="", run_dir="runs/interactive")  # doctest: +SKIP
>>> print(ctx.banner())                                                           # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .checks import CheckLog
from .ledger import Ledger
from .render import show_full_tables
from .session import Target

Progress = Callable[[int, int, str], None]


def in_jupyter_kernel() -> bool:
    """True inside an IPython kernel (JupyterLab, papermill), where a widget can display."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return bool(get and get() is not None and hasattr(get(), "kernel"))


def headless() -> bool:
    """True under ``runbook run`` (papermill), where a progress line beats a widget."""
    return os.environ.get("RUNBOOK_HEADLESS") == "1"


def widget_bar():
    """tqdm's Jupyter widget bar when ipywidgets is importable, else None.

    Without ipywidgets, ``tqdm.auto`` warns (``TqdmWarning: IProgress not found``, with the
    path of tqdm's own file) into the cell's output: the text line is used instead.
    """
    try:
        import ipywidgets  # noqa: F401  (a dependency; a bare kernel may lack it)
        from tqdm.notebook import tqdm
    except ImportError:
        return None
    return tqdm


def make_progress(description: str) -> Progress:
    """A ``progress(done, total, label)`` callback: a widget bar in Jupyter, else a throttled stderr line.

    Under ``runbook run`` (:func:`headless`) and in a terminal, a line per step: ``[runbook] audit: 3/10 fn``.
    """
    tqdm = None if headless() or not in_jupyter_kernel() else widget_bar()
    if tqdm is not None:
        bar = tqdm(total=0, desc=description, unit="item")

        def update(done: int, total: int, label: str = "") -> None:
            bar.total = total
            bar.n = done
            bar.set_postfix_str(label[:40], refresh=False)
            bar.refresh()
            if done >= total:
                bar.close()
        return update

    last = [0.0]

    def line(done: int, total: int, label: str = "") -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= 2.0:
            last[0] = now
            print(f"[runbook] {description}: {done}/{total} {label}".rstrip(), file=sys.stderr, flush=True)
    return line


@dataclass
class NotebookContext:
    notebook: str
    phase: str
    target: Target
    identity: dict
    run_dir: Path
    ledger: Ledger
    checks: CheckLog

    def banner(self) -> str:
        label = ("embedded lab - evidence from a simulated account, NOT production evidence"
                 if self.target.name == "lab" else "AWS")
        return (f"target: {self.target.name} ({label})\n"
                f"account: {self.identity['account']}  region: {self.target.region}\n"
                f"acting as: {self.identity['arn']}\n"
                f"run folder: {self.run_dir}")

    def say(self, message: str) -> None:
        """Print a line and keep it in the ledger's journal."""
        print(message)
        self.ledger.log(self.notebook, message)

    def progress(self, description: str) -> Progress:
        return make_progress(description)

    def evidence_path(self, name: str) -> Path:
        return self.run_dir / name


def start_notebook(notebook: str, phase: str, *, target: str, region: str, profile: str,
                   endpoint_url: str, run_dir: str, function_name: str = "",
                   create_ledger: bool = True) -> NotebookContext:
    """Validate the common parameters, reach the target, open and bind the run's ledger.

    Also makes pandas display tables whole (:func:`runbook_lib.render.show_full_tables`).
    """
    show_full_tables()
    tgt = Target.from_parameters(target, region=region, profile=profile, endpoint_url=endpoint_url)
    identity = tgt.caller_identity()
    folder = Path(run_dir)
    ledger = Ledger.open(folder, create=create_ledger)
    ledger.bind(target=tgt.name, account=identity["account"], region=tgt.region,
                function_name=function_name)
    return NotebookContext(notebook, phase, tgt, identity, folder, ledger,
                           CheckLog(folder, notebook, phase))
