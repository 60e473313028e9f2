"""Finishing a run folder: what the auditor opens, escaped, checked for leaks, and signed.

:func:`finish_run` runs after the notebooks of ``runbook run`` (and of a later backout
or close-out): an inert HTML page per executed notebook (a Content-Security-Policy that
forbids every script), CSV files neutralised against formula injection, the leak guard,
``checks.json``, ``summary.md`` (every cell Markdown-escaped), ``run.json``, and last the
signed ``manifest.json``. It decides the exit code: 0 goal reached, 1 a check failed,
2 the run could not proceed.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from . import __version__
from .check_summary import evidence_summary
from .checks import FAIL, PASS, SKIP, WARN, Check, load_checks
from .exceptions import RunbookError
from .execution import NotebookRun, progress_line
from .manifest import scan_folder, write_manifest
from .redaction import Fingerprinter
from .render import inert_html_document, md_cell, neutralise_csv_file
from .signing import SigningKey
from .wording import counted

#: The "notebook" of the leak guard's check: the runner's own, after every command.
LEAK_GUARD = "99_leak_guard"


@dataclass
class Outcome:
    exit_code: int
    reason: str
    run_dir: Path | None
    notebooks: list[NotebookRun] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    signer: str = ""      # fingerprint of the key that signed the manifest
    public_key: str = ""  # its public key, base64, for the archive


_EXPORTERS = threading.local()


def html_exporter():
    """This thread's nbconvert HTML exporter: its templates compile once per thread (0.3 s), not per page."""
    exporter = getattr(_EXPORTERS, "html", None)
    if exporter is None:
        from nbconvert import HTMLExporter

        # nbconvert also looks for templates under the working directory, which papermill changes to the
        # kernel's folder while a notebook runs (and this may run then, in HtmlExports' worker): the
        # installed templates only, so the page never depends on where or when it was exported
        exporter = _EXPORTERS.html = HTMLExporter(extra_template_basedirs=[])
    return exporter


def export_html(notebook: Path) -> Path:
    """``NAME.html`` beside ``NAME.ipynb``: nbconvert's page, made inert by a CSP."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = html_exporter().from_notebook_node(nb)
    target = notebook.with_suffix(".html")
    target.write_text(inert_html_document(body))
    return target


def _warm_exporter() -> None:
    """Import nbconvert and render a small page (templates compiled, Markdown and highlighting loaded),
    while the first notebook runs: a command of one notebook waits for its page's export."""
    import nbformat

    cell = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")])
    page = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# a *page*"), cell])
    html_exporter().from_notebook_node(page)


def _import_runner_needs() -> None:
    """What the runner needs once the lab is up (boto3 for the identity check, papermill for the notebooks)."""
    import papermill  # noqa: F401

    from . import session  # noqa: F401


class HtmlExports:
    """HTML pages of executed notebooks, exported in one worker thread while the next notebook runs.

    :meth:`submit` queues a notebook (after its kernel is done and its paths are scrubbed);
    :meth:`wait` is called by :func:`finish_run` before the leak guard and the manifest, which
    then cover every page that exists. A failed export is reported, the others still happen.
    The worker first imports what the runner needs next (boto3, papermill), then builds the leak
    guard's scanner, which :meth:`leak_scanner` hands to :func:`guard_against_leaks`; :meth:`warm`
    then readies nbconvert while the first notebook runs.
    """

    def __init__(self):
        from concurrent.futures import ThreadPoolExecutor

        from .leak_guard import guard_scanner

        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runbook-html")
        self.pending: dict[Path, object] = {}
        self.pool.submit(_import_runner_needs)  # while the lab starts: the runner's main thread only waits then
        self.scanner = self.pool.submit(guard_scanner)
        self.warming = None

    def warm(self) -> None:
        """Import nbconvert and compile its templates in the worker, once: call it as the first notebook
        starts (earlier, it competes for the CPU with the lab's and the kernels' start)."""
        if self.warming is None:
            self.warming = self.pool.submit(_warm_exporter)

    def leak_scanner(self):
        """The leak guard's scanner (None without the detection engine); an error building it is raised here."""
        return self.scanner.result()

    def submit(self, notebook: Path) -> None:
        """Export ``notebook`` (``NAME.ipynb`` in the run folder) in the worker, once.

        The path is made absolute now: papermill changes the process's working directory while the
        next notebook runs, when the worker may read it.
        """
        notebook = Path(notebook).absolute()
        if notebook in self.pending or not notebook.is_file() or notebook.is_symlink():
            return
        self.pending[notebook] = self.pool.submit(export_html, notebook)

    def wait(self) -> list[str]:
        """Wait for every queued export; the names of the notebooks whose page could not be written."""
        failed = []
        for notebook, future in self.pending.items():
            try:
                future.result()
            except Exception as exc:  # an unreadable half-written notebook must not lose the rest
                progress_line(f"{notebook.stem}: HTML export failed ({type(exc).__name__})", logging.WARNING)
                failed.append(notebook.stem)
        self.pending = {}
        return failed

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def __enter__(self) -> "HtmlExports":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def neutralise_csv_files(run_dir: Path) -> list[str]:
    """Every CSV of the folder through :func:`~runbook_lib.render.csv_cell`; the files that changed."""
    files, _ = scan_folder(run_dir)
    return [rel for rel, path in files.items() if path.suffix == ".csv" and neutralise_csv_file(path)]


def gating_checks(checks: Sequence[Check], include_baseline: bool) -> list[Check]:
    """The checks that decide the exit code (the baseline describes the account *before*)."""
    return [c for c in checks if include_baseline or c.phase != "baseline"]


def _row(*cells) -> str:
    return "| " + " | ".join(md_cell(c) for c in cells) + " |"


def write_summary(run_dir: Path, options: dict, notebooks: Sequence[NotebookRun],
                  checks: Sequence[Check], exit_code: int, reason: str) -> None:
    """``summary.md``: notebooks, before and after, every check; each value Markdown-escaped."""
    lab_note = " (embedded lab: not production evidence)" if options["target"] == "lab" else ""
    lines = ["# Runbook run summary", "",
             f"- target: **{md_cell(options['target'])}**{lab_note}",
             scope_line(run_dir, options),
             f"- function: {md_cell(options.get('function_name') or '-')}",
             f"- runbook version: {__version__}",
             f"- result: exit {exit_code} - {md_cell(reason)}", "",
             "## Notebooks", "", "| notebook | status | seconds | error |", "|---|---|---|---|"]
    lines += [_row(n.name, n.status, n.seconds, n.error) for n in notebooks]
    before = {c.id: c for c in checks if c.phase == "baseline"}
    after = {c.id: c for c in checks if c.phase == "validation"}
    shared = [cid for cid in before if cid in after]
    if shared:
        lines += ["", "## Before and after", "", "| check | before (test plan) | after (validation) |",
                  "|---|---|---|"]
        lines += [_row(cid, before[cid].status, after[cid].status) for cid in shared]
    lines += ["", "## Checks", "",
              "| check | what it proves | phase | status | controls | evidence file | reason and evidence |",
              "|---|---|---|---|---|---|---|"]
    lines += [_row(c.id, c.title, c.phase, c.status, ", ".join(c.controls),
                   c.evidence_file or f"{c.notebook}.ipynb", evidence_summary(c)) for c in checks]
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n")


def audited_scope(run_dir: Path) -> list[tuple[str, str]]:
    """``(account, region)`` of every region the test plan read, from its ``coverage.json`` (empty without one)."""
    try:
        doc = json.loads((run_dir / "coverage.json").read_text())
        return [(str(r["account"]), str(r["region"])) for r in doc.get("regions", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def scope_line(run_dir: Path, options: dict) -> str:
    """``- region: R``, or for an audit of several: every account and region it read."""
    scope = audited_scope(run_dir)
    if len(scope) <= 1:
        return f"- region: {md_cell(options.get('region') or '-')}"
    accounts = sorted({a for a, _ in scope})
    regions = sorted({r for _, r in scope})
    return (f"- audited: {counted(len(accounts), 'account')} ({md_cell(', '.join(accounts))}), "
            f"{counted(len(regions), 'region')} ({md_cell(', '.join(regions))})")


_BUILD = object()


def guard_against_leaks(run_dir: Path, key_hex: str | None, scanner=_BUILD) -> Check:
    """Scan every artifact for handled values (by fingerprint) and detectable secrets.

    ``scanner``: the guard's scanner when it was built ahead (:meth:`HtmlExports.leak_scanner`; None
    without the detection engine); by default it is built here.
    """
    from .catalog import Verdict, make_check
    from .checks import CheckLog
    from .leak_guard import guard_scanner, scan_run_folder

    scanner = guard_scanner() if scanner is _BUILD else scanner
    fingerprinter = Fingerprinter(bytes.fromhex(key_hex)) if key_hex else Fingerprinter()
    # without the run's key (a later backout), recorded fingerprints cannot be matched
    hits = scan_run_folder(run_dir, fingerprinter, handled=None if key_hex else set(), scanner=scanner)
    log = CheckLog(run_dir, LEAK_GUARD, "validation")
    evidence = {"artifacts_scanned": len(scan_folder(run_dir)[0]),
                "handled_values_matched_by_fingerprint": bool(key_hex),
                "detection_engine": scanner is not None, "hits": [str(h) for h in hits[:50]]}
    if hits:
        verdict = Verdict(FAIL, f"{len(hits)} hit(s), first at {hits[0].path}:{hits[0].line}", evidence)
    else:
        verdict = Verdict(PASS, f"{evidence['artifacts_scanned']} artifacts scanned: no handled value (by keyed "
                          "fingerprint) and no scanner finding", evidence)
    return log.put(make_check("no-secret-in-artifacts", "validation", verdict, notebook=LEAK_GUARD))


def write_check_exports(run_dir: Path, options: dict, checks: Sequence[Check], include_baseline: bool) -> None:
    """OCSF, ASFF and JUnit XML of ``checks`` (:mod:`runbook_lib.exports`); a FAIL fails JUnit when it gates."""
    from . import catalog
    from .exports import ExportContext, write_exports

    context = ExportContext(account=str(options.get("account") or ""), region=str(options.get("region") or ""),
                            target=str(options.get("target") or ""),
                            function_name=str(options.get("function_name") or ""), version=__version__,
                            time=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    gating = {(c.phase, c.id) for c in gating_checks(checks, include_baseline)}
    proves = {s.id: s.proves for s in catalog.specs()}
    write_exports(run_dir, checks, context, gating, proves)


def _left_out_note(checks: Sequence[Check], gating: Sequence[Check]) -> str:
    """What the counts leave out, and why (the baseline; an earlier command's checks)."""
    counted_ids = {id(c) for c in gating}
    left = [c for c in checks if id(c) not in counted_ids]
    baseline = sum(c.phase == "baseline" for c in left)
    notes = []
    if baseline:
        notes.append(f"{counted(baseline, 'baseline check')} of the test plan not counted (the account before "
                     "the change)")
    if len(left) > baseline:
        notes.append(f"{counted(len(left) - baseline, 'check')} of earlier commands in this folder not counted")
    return "; " + "; ".join(notes) if notes else ""


def _exit_code(notebooks: Sequence[NotebookRun], gating: Sequence[Check], note: str = "") -> tuple[int, str]:
    failed_nb = [n for n in notebooks if n.status == "failed"]
    failed_checks = [c for c in gating if c.status == FAIL]
    if failed_nb:
        return 2, failed_nb[0].error
    if failed_checks:
        return 1, f"{counted(len(failed_checks), 'check')} of {len(gating)} failed: " + ", ".join(
            f"{c.id} ({c.notebook})" for c in failed_checks) + note
    counts = {s: sum(1 for c in gating if c.status == s) for s in (PASS, WARN, SKIP)}
    return 0, (f"every check passed ({counted(len(gating), 'check')}: {counts[PASS]} PASS, {counts[WARN]} WARN, "
               f"{counts[SKIP]} SKIP){note}")


def _write_run_record(run_dir: Path, record: dict) -> None:
    history = run_dir / "run.json"
    if history.exists():  # a later backout or close-out appends to the same record
        previous = json.loads(history.read_text())
        record["history"] = previous.get("history", []) + [
            {k: previous[k] for k in ("started", "finished", "notebooks", "exit_code", "reason") if k in previous}]
    history.write_text(json.dumps(record, indent=2) + "\n")


def finish_run(run_dir: Path, options: dict, notebooks: Sequence[NotebookRun], include_baseline: bool,
               started: str, key: SigningKey, key_hex: str | None = None,
               decided_by: Sequence[str] | None = None, change_note: str = "",
               exports: HtmlExports | None = None) -> Outcome:
    """HTML, CSV, leak guard, checks.json, summary.md, run.json and the signed manifest; the exit code.

    ``decided_by``: the notebooks this command ran (a later backout or close-out), whose outcome and checks
    (with the leak guard's) decide the exit code; the folder's other notebooks are in the summary only.
    None: every notebook. ``change_note`` ("nothing to do: ...") starts the reason of a command that changed nothing.
    ``exports``: the pages already being exported while the notebooks ran; the rest are exported here.
    """
    own = exports is None
    exports = exports or HtmlExports()
    try:
        for nb in notebooks:  # the ones not exported while the run went on (a later backout's earlier ones)
            exports.submit(run_dir / f"{nb.name}.ipynb")
        exports.wait()
        scanner = exports.leak_scanner()
    finally:
        if own:
            exports.close()
    neutralise_csv_files(run_dir)
    # written before the leak guard so it reads them; again after, with its own check added
    write_check_exports(run_dir, options, load_checks(run_dir), include_baseline)
    leak = guard_against_leaks(run_dir, key_hex, scanner)
    progress_line(f"leak guard: {leak.status}" + (f" - {leak.reason}" if leak.reason else ""))
    checks = load_checks(run_dir)
    (run_dir / "checks.json").write_text(json.dumps(
        [{**asdict(c), "summary": evidence_summary(c)} for c in checks], indent=2) + "\n")
    write_check_exports(run_dir, options, checks, include_baseline)
    gating = [c for c in gating_checks(checks, include_baseline)
              if decided_by is None or c.notebook in decided_by or c.notebook == LEAK_GUARD]
    exit_code, reason = _exit_code([n for n in notebooks if decided_by is None or n.name in decided_by],
                                   gating, _left_out_note(checks, gating))
    if change_note:
        reason = f"{change_note}; {reason}"
    write_summary(run_dir, options, notebooks, checks, exit_code, reason)
    _write_run_record(run_dir, {
        "tool": "lambda-secrets-runbook", "version": __version__, "started": started,
        "finished": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "options": options,
        "notebooks": [asdict(n) for n in notebooks], "exit_code": exit_code, "reason": reason,
        "signed_by": key.public.fingerprint})
    try:
        write_manifest(run_dir, key)
    except RunbookError as exc:  # a planted link or device: the folder stays unsigned, and says so
        progress_line(f"manifest: {exc}")
        return Outcome(2, str(exc), run_dir, list(notebooks), checks)
    progress_line(f"manifest signed by {key.public.fingerprint} (public key {key.public.b64}); "
                  f"keep the fingerprint with the archive: runbook verify {run_dir} --trusted-key "
                  f"{key.public.fingerprint}")
    return Outcome(exit_code, reason, run_dir, list(notebooks), checks, key.public.fingerprint, key.public.b64)
