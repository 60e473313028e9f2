"""``runbook scan``: the detection engine as a command, and a pre-deployment gate.

``runbook scan dist/function.zip`` exits 1 when it finds a secret, in every output format
(table, JSON, SARIF), 0 when clean, 2 when it cannot scan (one line on stderr). A folder is
scanned as git sees it (its ``.gitignore`` files apply) less the ``--exclude`` patterns.
Fingerprints are keyed per run unless a key is given (``--fingerprint-key-file`` or
``RUNBOOK_FINGERPRINT_KEY``), so a committed baseline compares across runs.
Output names locations, rules, redacted previews and fingerprints, never a value; every
table cell and line passes :func:`runbook_lib.render.terminal`, so a member name holding an
escape sequence is shown, not obeyed (JSON output escapes control characters itself).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .exceptions import InputError, RunbookError
from .redaction import KEY_ENV, Fingerprinter
from .render import terminal
from .rules import REMEDIATION_TEXT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files, directories or .zip archives")
    parser.add_argument("--env-json", type=Path, metavar="FILE",
                        help='environment variables: {"NAME": "value"} or get-function-configuration output')
    parser.add_argument("--format", choices=("table", "json", "sarif"), default="table",
                        help="table (default), json, or sarif (SARIF 2.1.0 for GitHub code scanning); "
                             "findings exit 1 in every format")
    parser.add_argument("--fail-on-findings", action="store_true",
                        help="exit 1 when anything is found: the default in every format, kept for old scripts")
    parser.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                        help="leave out paths matching this gitignore-style pattern, relative to each "
                             "scanned folder (repeatable)")
    parser.add_argument("--no-gitignore", dest="gitignore", action="store_false",
                        help="also scan what the folders' .gitignore files ignore")
    parser.add_argument("--fingerprint-key-file", type=Path, metavar="FILE",
                        help=f"hex key (at least 16 bytes) for stable fingerprints across runs; default "
                             f"{KEY_ENV} (hex), else a new key per run")
    parser.add_argument("--allowlist", type=Path, metavar="FILE",
                        help="file of accepted values, one sha256:<hex> entry per line")
    parser.add_argument("--print-allowlist-entries", action="store_true",
                        help="print the allowlist entry (a hash, never the value) of each finding")
    parser.add_argument("--jobs", type=_jobs, default=0, metavar="N",
                        help="processes that scan a folder's files (default 0: every core; small folders use one)")


def _jobs(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number of processes (0 = every core), not {text!r}")
    return int(text)


def load_environment(path: Path) -> dict[str, str]:
    """Variables from ``{"NAME": "value"}`` or the ``get-function-configuration`` shape."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError("--env-json", f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except ValueError as exc:  # the message of a JSON error quotes no content, only a position
        raise InputError("--env-json", f"{path} is not JSON (line {getattr(exc, 'lineno', '?')})") from None
    if isinstance(data, dict) and isinstance(data.get("Configuration"), dict):
        data = data["Configuration"]  # get-function output
    if isinstance(data, dict) and isinstance(data.get("Environment"), dict):
        data = data["Environment"].get("Variables") or {}
    elif isinstance(data, dict) and isinstance(data.get("Variables"), dict):
        data = data["Variables"]
    if not isinstance(data, dict):
        raise InputError("--env-json", f"{path}: expected an object of NAME: value")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


def _table(findings, report) -> str:
    rows = [("LOCATION", "RULE", "REMEDIATION", "PREVIEW", "FINGERPRINT")]
    for f in findings:
        rows.append(tuple(terminal(cell) for cell in (
            f.location, f.rule, REMEDIATION_TEXT.get(f.remediation, f.remediation), f.redacted, f.fingerprint)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows] if findings else []
    summary = (f"{len(findings)} finding(s) in {report['files_scanned']} file(s), {report['bytes_scanned']} bytes"
               f" and {report['variables_scanned']} variable(s); {len(report['skipped'])} skipped,"
               f" {report['allowlisted']} allowlisted")
    lines.append(summary)
    if findings and not report.get("stable_fingerprints"):
        lines.append(f"fingerprints are keyed for this run only: give --fingerprint-key-file (or {KEY_ENV}) "
                     "to compare them with a baseline")
    for skip in report["skipped"][:50]:
        lines.append(terminal(f"skipped {skip['path']}: {skip['reason']}"))
    if len(report["skipped"]) > 50:
        lines.append(f"... and {len(report['skipped']) - 50} more skipped")
    return "\n".join(lines)


def fingerprinter_of(args) -> tuple[Fingerprinter, bool]:
    """The scan's fingerprinter, and whether its key is the user's (stable across runs)."""
    if getattr(args, "fingerprint_key_file", None):
        return Fingerprinter.from_key_file(args.fingerprint_key_file), True
    return Fingerprinter(), bool(os.environ.get(KEY_ENV))


def run_scan(args) -> tuple[list, dict, object]:
    from .scan_ignore import PathFilter
    from .scanning import Scanner, ScanReport

    if not args.paths and not args.env_json:
        raise InputError("scan", "give at least one PATH or --env-json FILE")
    fingerprinter, stable = fingerprinter_of(args)
    scanner = Scanner(fingerprinter=fingerprinter, allowlist=args.allowlist, workers=getattr(args, "jobs", 0))
    report = ScanReport()
    for path in args.paths:
        paths = PathFilter(exclude=getattr(args, "exclude", []), gitignore=getattr(args, "gitignore", True))
        report.merge(scanner.scan_path(path, paths))
    variables = 0
    if args.env_json:
        env = load_environment(args.env_json)
        variables = len(env)
        before = scanner.allowlisted
        report.findings.extend(scanner.scan_environment(env))
        report.allowlisted += scanner.allowlisted - before
    summary = {"files_scanned": report.files_scanned, "bytes_scanned": report.bytes_scanned,
               "variables_scanned": variables, "skipped": report.skipped, "allowlisted": report.allowlisted,
               "stable_fingerprints": stable}
    return report.findings, summary, scanner


def main(args) -> int:
    try:
        findings, summary, scanner = run_scan(args)
    except RunbookError as exc:
        print(terminal(f"runbook: {exc}"), file=sys.stderr)
        return exc.exit_code
    if args.print_allowlist_entries:
        for f in findings:
            print(terminal(f"{scanner.allowlist_entry(f)}  # {f.location} {f.rule} {f.redacted}"))
    elif args.format in ("json", "sarif"):
        print(json.dumps(_document(args, findings, summary), indent=2))
        for skip in summary["skipped"]:
            print(terminal(f"runbook: skipped {skip['path']}: {skip['reason']}"), file=sys.stderr)
    else:
        print(_table(findings, summary))
    return 1 if findings else 0


def _document(args, findings, summary):
    if args.format == "json":
        return [f.to_dict() for f in findings]
    from . import __version__
    from .scan_sarif import sarif_log

    return sarif_log(findings, summary, __version__, env_source=str(args.env_json or ""))
