"""Headless execution of the runbook: papermill into a dated, archived run folder.

:func:`run_runbook` makes ``runs/<UTC timestamp>-<target>/``, starts the embedded lab
when the target is ``lab``, executes the notebooks in order with papermill (kernel
named explicitly, a per-cell timeout), then finishes the folder: HTML of every executed
notebook, ``checks.json``, ``summary.md``, ``run.json`` and ``manifest.json``.

Exit codes (:class:`Outcome`): 0 the runbook reached its goal, 1 a check failed,
2 the run could not proceed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from . import __version__
from .checks import FAIL, PASS, SKIP, WARN, Check, load_checks
from .exceptions import InputError, LabError, NotebookError, RunbookError
from .manifest import write_manifest
from .redaction import KEY_ENV, Fingerprinter

KERNEL_NAME = "python3"
CELL_TIMEOUT_SECONDS = 900

NOTEBOOKS_DIR = Path(os.environ.get("RUNBOOK_NOTEBOOKS", Path(__file__).resolve().parents[1] / "notebooks"))
TEST_PLAN = "01_test_plan"
IMPLEMENTATION = "02_implementation"
VALIDATION = "03_functional_validation"
BACKOUT = "04_backout"
CLOSEOUT = "05_closeout"  # never in the default cycle: backout is refused after close-out
CHANGE_NOTEBOOKS = (TEST_PLAN, IMPLEMENTATION, VALIDATION)

#: The lab applies by default under this ticket: nothing real can break there.
LAB_CHANGE_TICKET = "lab-demo"


@dataclass
class NotebookRun:
    name: str
    status: str = "pending"  # ok / failed / skipped
    seconds: float = 0.0
    error: str = ""


@dataclass
class Outcome:
    exit_code: int
    reason: str
    run_dir: Path | None
    notebooks: list[NotebookRun] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


@dataclass
class RunOptions:
    target: str = "lab"
    region: str = ""
    profile: str = ""
    endpoint_url: str = ""
    function_name: str = ""
    out: Path = Path("runs")
    apply: bool | None = None   # None: the target's default (lab applies, aws plans)
    backout: bool | None = None  # None: the target's default (lab backs out, aws keeps the change)
    parameters: dict = field(default_factory=dict)
    notebooks_dir: Path = NOTEBOOKS_DIR
    kernel_name: str = KERNEL_NAME
    cell_timeout: int = CELL_TIMEOUT_SECONDS


# -- progress -----------------------------------------------------------------------
def _stderr(line: str) -> None:
    print(f"[runbook] {line}", file=sys.stderr, flush=True)


# -- the run folder -------------------------------------------------------------------
def new_run_dir(out: Path, target: str, now: _dt.datetime | None = None) -> Path:
    """``out/<UTC timestamp>-<target>``, unique even for two runs in one second."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    out = Path(out)
    candidate = out / f"{stamp}-{target}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = out / f"{stamp}-{target}-{n}"
    candidate.mkdir(parents=True)
    return candidate


@contextlib.contextmanager
def patched_environ(values: dict) -> Iterator[None]:
    """Environment for the kernels papermill starts (they inherit the runner's)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- parameters ---------------------------------------------------------------------
def declared_parameters(notebook: Path) -> dict:
    """The parameters a notebook's ``parameters`` cell declares (papermill's inspection)."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def coerce_parameter(name: str, raw, declared: dict):
    """Turn a ``-p name value`` string into the type the notebook declares."""
    if not isinstance(raw, str):
        return raw
    kind = (declared.get("inferred_type_name") or "").replace("typing.", "")
    text = raw.strip()
    if kind == "bool":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise InputError(name, f"expects true or false, got {raw!r}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise InputError(name, f"expects an integer, got {raw!r}") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise InputError(name, f"expects a number, got {raw!r}") from None
    if kind.startswith(("list", "dict")) or kind.startswith(("List", "Dict")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            if kind.lower().startswith("list"):
                return [part.strip() for part in text.split(",") if part.strip()]
            raise InputError(name, f"expects JSON, got {raw!r}") from None
    return raw


def route_parameters(notebooks: Sequence[Path], common: dict, extra: dict) -> dict[str, dict]:
    """Parameters per notebook: each gets the common and ``-p`` values it declares.

    A ``-p`` name that no notebook declares is an error, not a warning.
    """
    declared = {nb.stem: declared_parameters(nb) for nb in notebooks}
    known = set().union(*(d.keys() for d in declared.values())) if declared else set()
    unknown = sorted(set(extra) - known)
    if unknown:
        raise InputError(unknown[0], "no notebook declares this parameter; known: "
                         + ", ".join(sorted(known)))
    routed = {}
    for nb in notebooks:
        params = {}
        for name, value in {**common, **extra}.items():
            if name in declared[nb.stem]:
                params[name] = coerce_parameter(name, value, declared[nb.stem][name])
        routed[nb.stem] = params
    return routed


# -- executing one notebook ----------------------------------------------------------
class _PrivateKernel:
    """A kernel reached over IPC sockets in a private (0700) temporary folder.

    The default TCP transport opens loopback ports any local user can reach (and the kernel
    warns about it on every start); sockets in a folder only the runner's user can open
    keep the kernel, which handles the run's AWS credentials, to this user.
    """

    def __init__(self, kernel_name: str):
        # The async manager gives nbclient async channels: with blocking ones it waits on
        # IOPub forever when the kernel dies, instead of noticing the death.
        from jupyter_client.manager import AsyncKernelManager

        self.folder = tempfile.mkdtemp(prefix="runbook-kernel-")
        self.manager = AsyncKernelManager(kernel_name=kernel_name, transport="ipc",
                                          ip=os.path.join(self.folder, "kernel"))

    def close(self) -> None:
        from jupyter_core.utils import run_sync

        try:
            if self.manager.has_kernel:
                run_sync(self.manager.shutdown_kernel)(now=False)
        except Exception:  # a dead kernel cannot be shut down: its folder still goes
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


def execute(notebook: Path, run_dir: Path, parameters: dict, kernel_name: str,
            cell_timeout: int) -> NotebookRun:
    """Run one notebook into the run folder; failures become a one-line error, output kept."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    record = NotebookRun(notebook.stem)
    output = run_dir / notebook.name
    started = time.monotonic()
    _stderr(f"{notebook.stem}: running")
    kernel = _PrivateKernel(kernel_name)
    try:
        papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters, kernel_name=kernel_name, km=kernel.manager,
            cwd=str(run_dir), execution_timeout=cell_timeout, progress_bar=False,
            request_save_on_cell_execute=True, log_output=False)
        record.status = "ok"
    except PapermillExecutionError as exc:
        record.status = "failed"
        evalue = " ".join(str(exc.evalue).split())
        record.error = str(NotebookError(notebook.stem, f"{exc.ename}: {evalue}",
                                         cell=exc.exec_count))
    except Exception as exc:  # a dead kernel, a timeout: keep going to archive what exists
        record.status = "failed"
        record.error = str(NotebookError(notebook.stem, f"{type(exc).__name__}: {exc}",
                                         cell=running_cell(output)))
    finally:
        kernel.close()
    record.seconds = round(time.monotonic() - started, 1)
    if output.exists():
        scrub_notebook_file(output, run_dir)
    _stderr(f"{notebook.stem}: {record.status} in {record.seconds:.1f}s"
            + (f" - {record.error}" if record.error else ""))
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
def _path_replacements(run_dir: Path) -> list[tuple[str, str]]:
    pairs = [(str(run_dir.resolve()), "."), (str(Path.cwd().resolve()), "<cwd>"),
             (str(Path.home()), "~")]
    return sorted(((a, b) for a, b in pairs if a and a != "/"), key=lambda p: -len(p[0]))


def scrub_text(text: str, replacements: list[tuple[str, str]]) -> str:
    for absolute, relative in replacements:
        text = text.replace(absolute, relative)
    return text


def scrub_notebook_file(path: Path, run_dir: Path) -> None:
    """Remove absolute paths and user names from papermill's metadata and injected cell."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    replacements = _path_replacements(run_dir)
    meta = nb.metadata.get("papermill", {})
    for key in ("input_path", "output_path"):
        if meta.get(key):
            meta[key] = Path(meta[key]).name
    if "parameters" in meta:
        meta["parameters"] = json.loads(scrub_text(json.dumps(meta["parameters"]), replacements))
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = scrub_text(cell.source, replacements)
    nbformat.write(nb, str(path))


def export_html(notebook: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    target = notebook.with_suffix(".html")
    target.write_text(body)
    return target


# -- finishing the folder -------------------------------------------------------------
def gating_checks(checks: Sequence[Check], include_baseline: bool) -> list[Check]:
    """The checks that decide the exit code (the baseline describes the account *before*)."""
    return [c for c in checks if include_baseline or c.phase != "baseline"]


def write_summary(run_dir: Path, options: dict, notebooks: Sequence[NotebookRun],
                  checks: Sequence[Check], exit_code: int, reason: str) -> None:
    lines = ["# Runbook run summary", "",
             f"- target: **{options['target']}**"
             + (" (embedded lab: not production evidence)" if options["target"] == "lab" else ""),
             f"- region: {options.get('region') or '-'}",
             f"- function: {options.get('function_name') or '-'}",
             f"- runbook version: {__version__}",
             f"- result: exit {exit_code} - {reason}", "",
             "## Notebooks", "", "| notebook | status | seconds | error |", "|---|---|---|---|"]
    lines += [f"| {n.name} | {n.status} | {n.seconds} | {n.error.replace('|', '/')} |" for n in notebooks]
    before = {c.id: c for c in checks if c.phase == "baseline"}
    after = {c.id: c for c in checks if c.phase == "validation"}
    shared = [cid for cid in before if cid in after]
    if shared:
        lines += ["", "## Before and after", "", "| check | before (test plan) | after (validation) |",
                  "|---|---|---|"]
        lines += [f"| {cid} | {before[cid].status} | {after[cid].status} |" for cid in shared]
    lines += ["", "## Checks", "", "| check | what it proves | phase | status | controls | evidence file | reason |",
              "|---|---|---|---|---|---|---|"]
    for c in checks:
        evidence = c.evidence_file or f"{c.notebook}.ipynb"
        reason_text = c.reason.replace("|", "/").replace("\n", " ")
        lines.append(f"| {c.id} | {c.title.replace('|', '/')} | {c.phase} | {c.status} | "
                     f"{', '.join(c.controls)} | {evidence} | {reason_text} |")
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n")


def guard_against_leaks(run_dir: Path, key_hex: str | None) -> Check:
    """Scan every artifact for handled values (by fingerprint) and detectable secrets."""
    from .checks import CheckLog
    from .leak_guard import scan_run_folder

    try:
        from .scanning import Scanner
        scanner = Scanner()
    except ImportError:  # the guard still matches handled values without the engine
        scanner = None
    fingerprinter = Fingerprinter(bytes.fromhex(key_hex)) if key_hex else Fingerprinter()
    # without the run's key (a later backout), recorded fingerprints cannot be matched
    hits = scan_run_folder(run_dir, fingerprinter, handled=None if key_hex else set(), scanner=scanner)
    log = CheckLog(run_dir, "99_leak_guard", "validation")
    evidence = {"artifacts_scanned": sum(1 for p in run_dir.rglob("*") if p.is_file()),
                "handled_values_matched_by_fingerprint": bool(key_hex),
                "detection_engine": scanner is not None, "hits": [str(h) for h in hits[:50]]}
    if hits:
        return log.add("no-secret-in-artifacts", "No secret value in any artifact of the run", FAIL,
                       reason=f"{len(hits)} hit(s), first at {hits[0].path}:{hits[0].line}",
                       evidence=evidence, controls=["IA-5", "SC-28"],
                       evidence_file="checks/99_leak_guard.json")
    return log.add("no-secret-in-artifacts", "No secret value in any artifact of the run", PASS,
                   evidence=evidence, controls=["IA-5", "SC-28"], evidence_file="checks/99_leak_guard.json")


def finish_run(run_dir: Path, options: dict, notebooks: Sequence[NotebookRun],
               include_baseline: bool, started: str, key_hex: str | None = None) -> Outcome:
    """HTML, leak guard, checks.json, summary.md, run.json and manifest.json; the exit code."""
    for nb in notebooks:
        path = run_dir / f"{nb.name}.ipynb"
        if path.exists():
            try:
                export_html(path)
            except Exception as exc:  # an unreadable half-written notebook must not lose the rest
                _stderr(f"{nb.name}: HTML export failed ({type(exc).__name__})")
    leak = guard_against_leaks(run_dir, key_hex)
    _stderr(f"leak guard: {leak.status}" + (f" - {leak.reason}" if leak.reason else ""))
    checks = load_checks(run_dir)
    (run_dir / "checks.json").write_text(json.dumps([asdict(c) for c in checks], indent=2) + "\n")
    failed_nb = [n for n in notebooks if n.status == "failed"]
    gating = gating_checks(checks, include_baseline)
    failed_checks = [c for c in gating if c.status == FAIL]
    if failed_nb:
        exit_code, reason = 2, failed_nb[0].error
    elif failed_checks:
        exit_code = 1
        reason = f"{len(failed_checks)} check(s) failed: " + ", ".join(
            f"{c.id} ({c.notebook})" for c in failed_checks)
    else:
        counts = {s: sum(1 for c in gating if c.status == s) for s in (PASS, WARN, SKIP)}
        exit_code = 0
        reason = f"all checks passed ({counts[PASS]} pass, {counts[WARN]} warn, {counts[SKIP]} skip)"
    write_summary(run_dir, options, notebooks, checks, exit_code, reason)
    run_record = {"tool": "lambda-secrets-runbook", "version": __version__, "started": started,
                  "finished": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "options": options, "notebooks": [asdict(n) for n in notebooks],
                  "exit_code": exit_code, "reason": reason}
    history = run_dir / "run.json"
    if history.exists():  # a later backout or close-out appends to the same record
        previous = json.loads(history.read_text())
        run_record["history"] = previous.get("history", []) + [
            {k: previous[k] for k in ("started", "finished", "notebooks", "exit_code", "reason")
             if k in previous}]
    history.write_text(json.dumps(run_record, indent=2) + "\n")
    write_manifest(run_dir)
    return Outcome(exit_code, reason, run_dir, list(notebooks), checks)


# -- the commands -----------------------------------------------------------------------
def _notebook_paths(notebooks_dir: Path, names: Sequence[str]) -> list[Path]:
    paths = [Path(notebooks_dir) / f"{name}.ipynb" for name in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError("notebooks", f"missing {missing[0]}: run from a checkout of the runbook")
    return paths


def _lab_or_endpoint(stack: contextlib.ExitStack, options: RunOptions) -> tuple[str, dict, dict]:
    """Start the embedded lab unless an endpoint was given; return endpoint, env, seed info."""
    if options.target != "lab" or options.endpoint_url:
        return options.endpoint_url, {}, {}
    from .lab import Lab

    _stderr("starting the embedded lab")
    lab = stack.enter_context(Lab(seed=True))
    _stderr(f"lab ready at {lab.endpoint_url}")
    return lab.endpoint_url, dict(lab.env), dict(lab.seed_info or {})


def _preflight(options: RunOptions, endpoint_url: str, env: dict) -> dict:
    """Fail fast with one line when the run cannot proceed (credentials, region)."""
    from .session import Target

    with patched_environ(env):
        target = Target.from_parameters(options.target, options.region, options.profile, endpoint_url)
        return {"region": target.region, **target.caller_identity()}


def run_runbook(options: RunOptions, names: Sequence[str] | None = None,
                include_baseline: bool = False, progress: Callable[[str], None] = _stderr) -> Outcome:
    """Execute notebooks ``names`` (default: the change cycle, plus backout when asked)."""
    apply = options.apply if options.apply is not None else options.target == "lab"
    backout = options.backout if options.backout is not None else options.target == "lab"
    names = list(names or (CHANGE_NOTEBOOKS + ((BACKOUT,) if backout else ())))
    notebooks = _notebook_paths(options.notebooks_dir, names)
    extra = dict(options.parameters)
    if apply and options.target == "lab":
        extra.setdefault("change_ticket", LAB_CHANGE_TICKET)
    if apply and not str(extra.get("change_ticket", "")).strip() and any(
            n in (IMPLEMENTATION, BACKOUT) for n in names):
        raise InputError("change_ticket", "--apply needs -p change_ticket <id> on the aws target; "
                         "nothing was run")
    route_parameters(notebooks, {}, extra)  # unknown or mistyped -p values fail before anything starts
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with contextlib.ExitStack() as stack:
        endpoint_url, env, seed_info = _lab_or_endpoint(stack, options)
        identity = _preflight(options, endpoint_url, env)
        function_name = options.function_name or seed_info.get("function_name", "")
        run_dir = new_run_dir(options.out, options.target)
        progress(f"run folder {run_dir}")
        common = {"target": options.target, "region": identity["region"], "profile": options.profile,
                  "endpoint_url": endpoint_url, "run_dir": ".", "function_name": function_name,
                  "apply": apply}
        routed = route_parameters(notebooks, common, extra)
        summary_options = {"target": options.target, "region": identity["region"],
                           "function_name": function_name, "apply": apply, "notebooks": names,
                           "account": identity["account"]}
        key_hex = Fingerprinter.new_key_hex()
        kernel_env = {**env, KEY_ENV: key_hex, "RUNBOOK_HEADLESS": "1", "MPLBACKEND": "Agg"}
        results = []
        with patched_environ(kernel_env):
            for nb in notebooks:
                result = execute(nb, run_dir, routed[nb.stem], options.kernel_name, options.cell_timeout)
                results.append(result)
                if result.status == "failed":
                    results += [NotebookRun(p.stem, "skipped") for p in notebooks[len(results):]]
                    break
        return finish_run(run_dir, summary_options, results, include_baseline, started, key_hex)


def run_later(run_dir: Path, options: RunOptions, notebook: str, purpose: str) -> Outcome:
    """Run one notebook later (backout, close-out) into an archived run's folder, on its ledger.

    Same folder, same ledger; ``checks.json``, ``summary.md``, ``run.json`` and the manifest
    are refreshed. ``purpose`` words the errors ("back out", "close out").
    """
    run_dir = Path(run_dir)
    ledger_path = run_dir / "ledger.json"
    if not ledger_path.is_file():
        raise InputError("RUN_DIR", f"no ledger.json in {run_dir}: pass the folder of the run to {purpose}")
    context = json.loads(ledger_path.read_text()).get("context", {})
    options.target = options.target or context.get("target", "aws")
    options.region = options.region or context.get("region", "")
    if options.target == "lab" and not options.endpoint_url:
        raise InputError("endpoint_url", "the run's lab has stopped: start `runbook lab` with the same "
                         "state, or pass --endpoint-url of a running lab")
    notebooks = _notebook_paths(options.notebooks_dir, [notebook])
    extra = dict(options.parameters)
    for name in ("code_path", "rotate_from"):  # the kernel runs in the run folder
        if extra.get(name):
            extra[name] = str(Path(extra[name]).resolve())
    apply = bool(options.apply)
    if apply and not str(extra.get("change_ticket", "")).strip():
        raise InputError("change_ticket", "--apply needs -p change_ticket <id>; nothing was run")
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    identity = _preflight(options, options.endpoint_url, {})
    function_name = options.function_name or context.get("function_name", "")
    common = {"target": options.target, "region": identity["region"], "profile": options.profile,
              "endpoint_url": options.endpoint_url, "run_dir": ".", "function_name": function_name,
              "apply": apply}
    routed = route_parameters(notebooks, common, extra)
    key_hex = Fingerprinter.new_key_hex()
    with patched_environ({KEY_ENV: key_hex, "RUNBOOK_HEADLESS": "1", "MPLBACKEND": "Agg"}):
        result = execute(notebooks[0], run_dir, routed[notebook], options.kernel_name, options.cell_timeout)
    previous = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    earlier = [NotebookRun(**n) for n in previous.get("notebooks", []) if n["name"] != notebook]
    summary_options = {**previous.get("options", {}), "target": options.target,
                       "region": identity["region"], "function_name": function_name}
    # the original run's key is gone (never stored): the guard falls back to the detection engine
    return finish_run(run_dir, summary_options, earlier + [result], False, started, None)


def run_backout(run_dir: Path, options: RunOptions) -> Outcome:
    """``runbook backout RUN_DIR``: the backout notebook against an archived run's ledger."""
    return run_later(run_dir, options, BACKOUT, "back out")


def run_closeout(run_dir: Path, options: RunOptions) -> Outcome:
    """``runbook closeout RUN_DIR``: delete residue and rotate, once the change is accepted."""
    return run_later(run_dir, options, CLOSEOUT, "close out")


def outcome_of_error(exc: RunbookError) -> Outcome:
    return Outcome(exc.exit_code, str(exc), None)


__all__ = ["RunOptions", "Outcome", "NotebookRun", "run_runbook", "run_backout", "run_closeout", "new_run_dir",
           "route_parameters", "finish_run", "LabError"]
