"""Headless execution of the runbook: papermill into a dated, archived, signed run folder.

:func:`run_runbook` makes ``runs/<UTC timestamp>-<target>/``, starts the embedded lab
when the target is ``lab``, executes the notebooks in order with papermill, each in a
private kernel that works outside the run folder (:mod:`runbook_lib.execution`), then
finishes the folder (:mod:`runbook_lib.archive`): inert HTML of every executed notebook,
``checks.json``, ``summary.md``, ``run.json`` and the signed ``manifest.json``.
:func:`run_later` (``runbook backout``/``closeout RUN_DIR``) first verifies an archived
folder's signature and hashes, and refuses before anything runs on any difference.

Exit codes (:class:`Outcome`): 0 the runbook reached its goal, 1 a check failed,
2 the run could not proceed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .archive import HtmlExports, Outcome, finish_run
from .exceptions import ChangeRefused, InputError, LabError, RunbookError
from .execution import KERNEL_ENV, NotebookRun, execute, kernel_run_dir, progress_line
from .kernels import KernelQueue
from .manifest import MANIFEST_FILE, verify_run
from .parameters import (coerce_parameter, declared_parameters, refuse_runner_owned, resolve_path_parameters,
                         route_parameters)
from .redaction import KEY_ENV, Fingerprinter
from .resources import missing_file, notebooks_dir
from .waits import cell_timeout
from .signing import ensure_outside, load_signing_key, trusted_fingerprints

KERNEL_NAME = "python3"
CELL_TIMEOUT_SECONDS = 900

NOTEBOOKS_DIR = notebooks_dir()
TEST_PLAN = "01_test_plan"
IMPLEMENTATION = "02_implementation"
VALIDATION = "03_functional_validation"
BACKOUT = "04_backout"
CLOSEOUT = "05_closeout"  # never in the default cycle: backout is refused after close-out
CHANGE_NOTEBOOKS = (TEST_PLAN, IMPLEMENTATION, VALIDATION)

#: The lab applies by default under this ticket: nothing real can break there.
LAB_CHANGE_TICKET = "lab-demo"


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
    signing_key: str | None = None  # key file; None: RUNBOOK_SIGNING_KEY_FILE or the per-user key
    trusted_keys: list = field(default_factory=list)  # who may have signed an archived folder
    allowlist: str = ""  # committed allowlist file: the scanner applies it wherever it runs


# -- the run folder -------------------------------------------------------------------
def check_out_folder(out: Path) -> None:
    """Refuse, before anything starts, an ``--out`` that is a file or lies under one."""
    probe = Path(out)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError("--out", f"{probe} is a file, not a folder: pass the folder that holds the run folders")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError("--out", f"cannot create run folders under {out}: {probe} is not writable")


def new_run_dir(out: Path, target: str, now: _dt.datetime | None = None, label: str = "") -> Path:
    """``out/<UTC timestamp>-<target>[-<label>]``, unique even for two runs in one second.

    ``label`` names what kind of folder it is (``audit``), so an audit never looks like a change run.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    out = Path(out)
    name = f"{stamp}-{target}" + (f"-{label}" if label else "")
    candidate = out / name
    n = 1
    while candidate.exists():
        n += 1
        candidate = out / f"{name}-{n}"
    try:
        candidate.mkdir(parents=True)
    except OSError as exc:
        raise InputError("--out", f"cannot create a run folder under {out}: "
                         f"{exc.strerror or type(exc).__name__}") from None
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


# -- the commands -----------------------------------------------------------------------
def _notebook_paths(notebooks_dir: Path, names: Sequence[str]) -> list[Path]:
    paths = [Path(notebooks_dir) / f"{name}.ipynb" for name in names]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise missing_file("notebooks", missing[0])
    return paths


def _lab_or_endpoint(stack: contextlib.ExitStack, options: RunOptions) -> tuple[str, dict, dict, object]:
    """Start the embedded lab unless an endpoint was given; return endpoint, env, seed info and the lab (or None)."""
    if options.target != "lab" or options.endpoint_url:
        return options.endpoint_url, {}, {}, None
    from .lab import Lab
    from .lab.runtimes import launcher

    missing = launcher("python").problem  # the seeded function is Python: say it now, not at its first Invoke
    if missing:
        raise LabError(f"{missing}; nothing was run")
    progress_line("starting the embedded lab")
    lab = stack.enter_context(Lab(seed=True))
    progress_line(f"lab ready at {lab.endpoint_url}")
    return lab.endpoint_url, dict(lab.env), dict(lab.seed_info or {}), lab


@contextlib.contextmanager
def stopping_in_background(lab) -> Iterator[None]:
    """Stop the runner's own lab while the block (finishing the folder, which needs no AWS call) runs."""
    if lab is None:
        yield
        return
    import threading

    stopper = threading.Thread(target=lab.stop, name="lab-stop", daemon=True)
    stopper.start()
    try:
        yield
    finally:
        stopper.join()


def _preflight(options: RunOptions, endpoint_url: str, env: dict) -> dict:
    """Fail fast with one line when the run cannot proceed (credentials, region)."""
    from .session import Target

    with patched_environ(env):
        target = Target.from_parameters(options.target, options.region, options.profile, endpoint_url)
        return {"region": target.region, **target.caller_identity()}


def _execute_in_order(notebooks: Sequence[Path], run_dir: Path, routed: dict, options: RunOptions,
                      env: dict, exports: HtmlExports | None = None,
                      kernels: KernelQueue | None = None) -> list[NotebookRun]:
    """Each notebook in its own kernel; after a failure the rest are skipped.

    The next notebook's kernel starts (and imports) while the current one runs, and the
    current one's HTML page is exported in ``exports``' worker while the next runs.
    ``kernels``: the caller's queue (it may hold the first kernel already, and reaps them after
    the folder is finished); None: one of its own, reaped before this returns.
    """
    results: list[NotebookRun] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(patched_environ(env))
        if kernels is None:
            kernels = stack.enter_context(KernelQueue(options.kernel_name))
        kernels.link(run_dir)
        for index, nb in enumerate(notebooks):
            kernel = kernels.take(nb)
            if index + 1 < len(notebooks):
                kernels.prestart(notebooks[index + 1])
            timeout = cell_timeout(options.cell_timeout, nb.stem, routed[nb.stem], options.target)
            if exports is not None:
                exports.warm()
            result = execute(nb, run_dir, routed[nb.stem], options.kernel_name, timeout, kernel=kernel)
            results.append(result)
            if exports is not None:
                exports.submit(run_dir / nb.name)
            if result.status == "failed":
                results += [NotebookRun(p.stem, "skipped") for p in notebooks[len(results):]]
                break
    return results


def run_runbook(options: RunOptions, names: Sequence[str] | None = None,
                include_baseline: bool = False, progress: Callable[[str], None] = progress_line,
                folder_label: str = "") -> Outcome:
    """Execute notebooks ``names`` (default: the change cycle, plus backout when asked).

    ``folder_label`` ends the run folder's name (``audit``: ``<timestamp>-lab-audit``).
    """
    apply = options.apply if options.apply is not None else options.target == "lab"
    backout = options.backout if options.backout is not None else options.target == "lab"
    names = list(names or (CHANGE_NOTEBOOKS + ((BACKOUT,) if backout else ())))
    notebooks = _notebook_paths(options.notebooks_dir, names)
    with contextlib.ExitStack() as stack:
        # the fork server imports the kernels' modules while the input is checked (papermill's import)
        # and the lab starts; the export worker imports boto3 and compiles the leak guard's scanner
        # meanwhile; the first kernel boots while the identity is checked; all are reaped after signing.
        # Forked even for one notebook: as fast to its first cell, and it exits without Python's teardown
        # (a direct kernel of `runbook audit` took 0.5-0.8 s to exit after the folder was signed)
        key_hex = Fingerprinter.new_key_hex()
        starts_lab = options.target == "lab" and not options.endpoint_url
        with patched_environ(KERNEL_ENV):
            kernels = stack.enter_context(KernelQueue(options.kernel_name, notebooks=notebooks, fork=True))
        if not starts_lab:  # the kernels' environment is known already: the first one boots now
            with patched_environ({KEY_ENV: key_hex, **KERNEL_ENV}):
                kernels.prestart(notebooks[0])
        refuse_runner_owned(options.parameters)
        extra = resolve_path_parameters({**options.parameters, **allowlist_parameter(options.allowlist)})
        if apply and options.target == "lab":
            extra.setdefault("change_ticket", LAB_CHANGE_TICKET)
        if apply and not str(extra.get("change_ticket", "")).strip() and any(
                n in (IMPLEMENTATION, BACKOUT) for n in names):
            raise InputError("change_ticket", "--apply needs -p change_ticket <id> on the aws target; "
                             "nothing was run")
        route_parameters(notebooks, {}, extra)  # unknown or mistyped -p values fail before any change
        check_out_folder(options.out)
        key = load_signing_key(options.signing_key)
        started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        exports = stack.enter_context(HtmlExports())  # after: its worker's imports would hold up jupyter_client's
        endpoint_url, env, seed_info, lab = _lab_or_endpoint(stack, options)
        kernel_env = {**env, KEY_ENV: key_hex, **KERNEL_ENV}
        if starts_lab:
            with patched_environ(kernel_env):
                kernels.prestart(notebooks[0])
        identity = _preflight(options, endpoint_url, env)
        function_name = options.function_name or seed_info.get("function_name", "")
        declares = any("strategy" in declared_parameters(nb) for nb in notebooks)
        extra = {**seeded_strategy(seed_info, function_name, extra, declares), **extra}
        run_dir = new_run_dir(options.out, options.target, label=folder_label)
        progress(f"run folder {run_dir}")
        common = {"target": options.target, "region": identity["region"], "profile": options.profile,
                  "endpoint_url": endpoint_url, "run_dir": kernel_run_dir(run_dir),
                  "function_name": function_name, "apply": apply}
        routed = route_parameters(notebooks, common, extra)
        summary_options = {"target": options.target, "region": identity["region"],
                           "function_name": function_name, "apply": apply, "notebooks": names,
                           "account": identity["account"]}
        results = _execute_in_order(notebooks, run_dir, routed, options, kernel_env, exports, kernels)
        with stopping_in_background(lab):
            return finish_run(run_dir, summary_options, results, include_baseline, started, key, key_hex,
                              exports=exports)


def allowlist_parameter(path: str) -> dict:
    """``{"allowlist_path": path}`` for ``--allowlist``, checked first (a bad entry is one line, nothing runs)."""
    if not path:
        return {}
    from .allowlist import Allowlist

    Allowlist.from_file(path)
    return {"allowlist_path": path}


def seeded_strategy(seed_info: dict, function_name: str, extra: dict, declared: bool = True) -> dict:
    """The strategy the lab's seed names for its demo function (``reference``), unless ``-p strategy`` was given.

    Only for the function the runner's own lab seeded, and only when a notebook of the run declares
    ``strategy`` (``runbook audit`` runs the test plan alone): any other function gets the notebook's ``auto``.
    """
    if "strategy" in extra or not seed_info.get("strategy") or function_name != seed_info.get("function_name"):
        return {}
    if not declared:
        return {}
    return {"strategy": seed_info["strategy"]}


def verify_before_running(run_dir: Path, options: RunOptions, purpose: str):
    """The signing key, once the archived folder matches its manifest signed by a trusted key.

    Nothing runs and nothing is written in a folder that differs in any way: its files are
    data, and a planted or edited one must not decide what a backout or close-out does.
    """
    if not (run_dir / MANIFEST_FILE).is_file() and (run_dir / "ledger.json").is_file():
        raise ChangeRefused(str(run_dir), f"refusing to {purpose}: the folder was never signed (no {MANIFEST_FILE}: "
                            "its runner was stopped before finishing it); check it, then `runbook unlock RUN_DIR "
                            "--sign` releases its locks and signs it as it stands; nothing was run")
    key = load_signing_key(options.signing_key)
    ensure_outside(key, run_dir)
    trusted = trusted_fingerprints(options.trusted_keys, options.signing_key)
    verification = verify_run(run_dir, trusted)
    if not verification.ok:
        raise ChangeRefused(str(run_dir), f"refusing to {purpose}: {verification.differences[0]}; nothing was "
                            f"run (`runbook verify {run_dir}` lists every difference)")
    return key


def run_later(run_dir: Path, options: RunOptions, notebook: str, purpose: str) -> Outcome:
    """Run one notebook later (backout, close-out) into an archived run's folder, on its ledger.

    The folder is verified first (:func:`verify_before_running`). Same folder, same ledger;
    ``checks.json``, ``summary.md``, ``run.json`` and the signed manifest are refreshed.
    ``purpose`` words the errors ("back out", "close out").
    """
    run_dir = Path(run_dir)
    refuse_runner_owned(options.parameters)
    ledger_path = run_dir / "ledger.json"
    if not ledger_path.is_file():
        raise InputError("RUN_DIR", f"no ledger.json in {run_dir}: pass the folder of the run to {purpose}")
    key = verify_before_running(run_dir, options, purpose)
    context = json.loads(ledger_path.read_text()).get("context", {})
    options.target = options.target or context.get("target", "aws")
    options.region = options.region or context.get("region", "")
    if options.target == "lab" and not options.endpoint_url:
        raise InputError("endpoint_url", f"{run_dir} was run on an embedded lab, which stopped when its `runbook "
                         "run` ended and took every resource of the run with it: there is nothing left to "
                         f"{purpose}. To {purpose} on the lab later, keep one running: `runbook lab` in another "
                         "terminal (export the variables it prints), then `runbook run --endpoint-url URL --function orders-api "
                         f"--no-backout` and `runbook {purpose.replace(' ', '')} RUN_DIR --endpoint-url URL`")
    notebooks = _notebook_paths(options.notebooks_dir, [notebook])
    extra = resolve_path_parameters(options.parameters)
    apply = bool(options.apply)
    if apply and not str(extra.get("change_ticket", "")).strip():
        raise InputError("change_ticket", "--apply needs -p change_ticket <id>; nothing was run")
    started = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    identity = _preflight(options, options.endpoint_url, {})
    function_name = options.function_name or context.get("function_name", "")
    common = {"target": options.target, "region": identity["region"], "profile": options.profile,
              "endpoint_url": options.endpoint_url, "run_dir": kernel_run_dir(run_dir),
              "function_name": function_name, "apply": apply}
    routed = route_parameters(notebooks, common, extra)
    recorded = ledger_entries(ledger_path)
    results = _execute_in_order(notebooks, run_dir, routed, options,
                                {KEY_ENV: Fingerprinter.new_key_hex(), **KERNEL_ENV})
    done = what_changed(apply, recorded, ledger_entries(ledger_path), results)
    previous = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    earlier = [NotebookRun(**n) for n in previous.get("notebooks", []) if n["name"] != notebook]
    summary_options = {**previous.get("options", {}), "target": options.target,
                       "region": identity["region"], "function_name": function_name}
    # the original run's key is gone (never stored): the guard falls back to the detection engine
    return finish_run(run_dir, summary_options, earlier + results, False, started, key, None, decided_by=[notebook],
                      change_note=done)


def ledger_entries(ledger_path: Path) -> list:
    """The ledger's records of what the runbook created, changed and undid (not its journal of messages)."""
    return json.loads(ledger_path.read_text()).get("entries", [])


def what_changed(apply: bool, before: list, after: list, results: Sequence[NotebookRun]) -> str:
    """How a later command's summary starts when it changed nothing: a plan only, or nothing left to do."""
    if any(r.status != "ok" for r in results):
        return ""
    if not apply:
        return "plan only, nothing was changed (--apply -p change_ticket ID makes the change)"
    if before == after:
        return "nothing to do: the ledger records no change (the account already was as this command leaves it)"
    return ""


def run_backout(run_dir: Path, options: RunOptions) -> Outcome:
    """``runbook backout RUN_DIR``: the backout notebook against an archived run's ledger."""
    return run_later(run_dir, options, BACKOUT, "back out")


def run_closeout(run_dir: Path, options: RunOptions) -> Outcome:
    """``runbook closeout RUN_DIR``: delete residue and rotate, once the change is accepted."""
    return run_later(run_dir, options, CLOSEOUT, "close out")


def outcome_of_error(exc: RunbookError) -> Outcome:
    return Outcome(exc.exit_code, str(exc), None)


__all__ = ["RunOptions", "Outcome", "NotebookRun", "run_runbook", "run_backout", "run_closeout", "new_run_dir",
           "route_parameters", "coerce_parameter", "finish_run", "LabError"]
