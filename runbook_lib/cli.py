"""``runbook``: the command line of the Lambda secrets runbook.

Subcommands: ``run`` (the whole cycle), ``audit`` (test plan alone, findings fail),
``backout RUN_DIR``, ``closeout RUN_DIR``, ``unlock RUN_DIR``, ``verify RUN_DIR``, ``key``,
``scan PATH...``, ``lab`` and ``lab-runtimes``. ``-q`` prints only the final line and errors, ``-v`` also
each notebook cell's output as papermill logs it. Exit codes: 0 goal reached, 1 a check failed (or findings, for
``audit``/``scan``; or differences, for ``verify``), 2 the run could not proceed, with a
one-line reason on stderr. Every line printed passes :func:`runbook_lib.render.terminal`:
names from AWS or from a run folder cannot send escape sequences to the terminal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .exceptions import RunbookError
from .render import terminal
from .wording import counted


def _target_options(parser: argparse.ArgumentParser, default_target: str | None = "lab") -> None:
    parser.add_argument("--target", choices=("lab", "aws"), default=default_target,
                        help="where to run: the embedded lab (default) or AWS via the boto3 credential chain")
    parser.add_argument("--region", default="", help="AWS region (default: the profile's or AWS_REGION)")
    parser.add_argument("--profile", default="", help="named AWS profile")
    parser.add_argument("--endpoint-url", default="",
                        help="send every call here (a running `runbook lab`, or AWS_ENDPOINT_URL)")
    parser.add_argument("--function", dest="function_name", default="",
                        help="function to migrate (lab default: the seeded orders-api)")


def _parameter_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="notebook parameter passed to every notebook that declares it "
                             "(not run_dir, target, region, profile, endpoint_url, function_name, apply: "
                             "their options set them)")
    _signing_option(parser)


def _allowlist_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allowlist", metavar="FILE", default="",
                        help="committed allowlist (sha256: entries, see `runbook scan --print-allowlist-entries`) "
                             "the secret scanner applies in every notebook that scans")


def _signing_option(parser: argparse.ArgumentParser, role: str = "signs the run's manifest") -> None:
    parser.add_argument("--signing-key", metavar="FILE", default=None,
                        help=f"Ed25519 private key (PEM) that {role}; default "
                             "RUNBOOK_SIGNING_KEY_FILE, else a per-user key created on first use")


def _trusted_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trusted-key", metavar="PUBFILE|FINGERPRINT", action="append", default=[],
                        help="a key the folder may be signed by (repeatable); default: your own signing key")


def _command(sub, name: str, summary: str, loudness: bool = True) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` starts with ``summary`` as its description line."""
    command = sub.add_parser(name, help=summary, description=f"runbook {name}: {summary}.")
    if loudness:  # `runbook run -q` as well as `runbook -q run`
        _verbosity_options(command, default=argparse.SUPPRESS)
    return command


def _verbosity_options(parser: argparse.ArgumentParser, default) -> None:
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const=-1, default=default,
                          help="print only the final line and errors")
    loudness.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const=1, default=default,
                          help="also print each notebook cell's output as it runs (debug lines)")


def _later_command(sub, name: str, summary: str) -> None:
    """``backout``/``closeout RUN_DIR``: one notebook later, on an archived run's ledger."""
    command = _command(sub, name, summary)
    command.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    _target_options(command, default_target=None)
    command.add_argument("--apply", action="store_true", help="make the changes (needs -p change_ticket ID)")
    _parameter_option(command)
    _trusted_option(command)


#: The subcommands whose options live in a module of their own (it defines ``add_arguments`` and ``main``).
COMMAND_MODULES = {"unlock": "runbook_lib.change.unlock", "scan": "runbook_lib.scan_cli",
                   "lab": "runbook_lib.lab.__main__", "lab-runtimes": "runbook_lib.lab.sdk_install"}


def chosen_command(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (top-level options take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; ``command`` set: only that subcommand's module is imported.

    A module of :data:`COMMAND_MODULES` can be slow to import (``unlock`` pulls in boto3), so
    ``runbook scan`` imports the scanner and nothing else; the other subcommands' parsers
    keep their summaries (``runbook --help`` lists them) without their options.
    """
    parser = argparse.ArgumentParser(prog="runbook", description="The AWS Lambda secrets runbook: audit, change, "
                                     "validate and back out, into signed run folders an auditor can read.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _verbosity_options(parser, default=0)
    sub = parser.add_subparsers(dest="command", required=True)

    run = _command(sub, "run", "run test plan, implementation, validation (and backout) headless")
    _target_options(run)
    run.add_argument("--out", type=Path, default=Path("runs"), help="parent of the dated run folder")
    run.add_argument("--apply", dest="apply", action="store_true", default=None,
                     help="make the change (default on the lab; on aws needs -p change_ticket ID)")
    run.add_argument("--plan-only", dest="apply", action="store_false", help="show the plans, change nothing")
    run.add_argument("--backout", dest="backout", action="store_true", default=None,
                     help="run the backout notebook after validation (default on the lab)")
    run.add_argument("--no-backout", dest="backout", action="store_false", help="keep the change")
    _allowlist_option(run)
    _parameter_option(run)

    audit = _command(sub, "audit", "run the test plan alone; a finding fails (exit 1)")
    _target_options(audit)
    audit.add_argument("--out", type=Path, default=Path("runs"))
    _allowlist_option(audit)
    _parameter_option(audit)

    _later_command(sub, "backout", "undo an archived run's change, from its ledger")
    _later_command(sub, "closeout", "after acceptance: delete secret residue, rotate exposed values, "
                   "deactivate hardcoded keys (backout is refused afterwards)")

    unlock = _command(sub, "unlock", "release the locks of a run whose process died (checked first)")
    _optional_module("unlock", unlock, command)
    _signing_option(unlock, role="signs the folder again after the release")
    _trusted_option(unlock)

    verify = _command(sub, "verify", "check a run folder's signature and hashes against its manifest.json")
    verify.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    _trusted_option(verify)
    _signing_option(verify, role="is trusted when no --trusted-key is given")

    key = _command(sub, "key", "print the fingerprint and public key (PEM) of your signing key")
    _signing_option(key)

    scan = _command(sub, "scan", "scan files, zips or environment variables for secrets")
    _optional_module("scan", scan, command)

    # its own --verbose logs every request (`runbook -v lab` too)
    lab = _command(sub, "lab", "serve the embedded AWS lab in the foreground", loudness=False)
    _optional_module("lab", lab, command)

    runtimes = _command(sub, "lab-runtimes", "install the SDKs the lab's Lambda runtimes offer functions "
                        "(boto3, AWS SDK for JavaScript v3); once, after pip install")
    _optional_module("lab-runtimes", runtimes, command)
    return parser


def _optional_module(name: str, parser: argparse.ArgumentParser, command: str | None) -> None:
    import importlib

    if command is not None and command != name:
        return  # not the command being run: its module stays unimported
    module = COMMAND_MODULES[name]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:  # a partial install still runs the other commands
        reason = f"{module} is not installed ({exc.name})"
        parser.set_defaults(handler=lambda args: _say(f"runbook: {reason}", sys.stderr) or 2)
        return
    mod.add_arguments(parser)
    parser.set_defaults(handler=mod.main)


def _say(line, stream=None) -> None:
    print(terminal(line), file=stream or sys.stdout)


def _options(args):
    from . import runner

    return runner.RunOptions(notebooks_dir=runner.NOTEBOOKS_DIR, target=args.target, region=args.region,
                             profile=args.profile, endpoint_url=args.endpoint_url, function_name=args.function_name,
                             out=getattr(args, "out", Path("runs")), apply=getattr(args, "apply", None),
                             backout=getattr(args, "backout", None), parameters=dict(args.parameter),
                             signing_key=args.signing_key, trusted_keys=getattr(args, "trusted_key", []),
                             allowlist=getattr(args, "allowlist", ""))


def _report(outcome, quiet: bool = False) -> int:
    if outcome.run_dir and not quiet:
        _say(outcome.run_dir)
    _say(f"runbook: {outcome.reason}", sys.stdout if outcome.exit_code == 0 else sys.stderr)
    return outcome.exit_code


def _verify(args) -> int:
    from .manifest import verify_run
    from .signing import trusted_fingerprints

    trusted = trusted_fingerprints(args.trusted_key, args.signing_key)
    result = verify_run(args.run_dir, trusted)
    signer = f"signed by {result.signer}" if result.signer else "not signed"
    if result.signer:
        signer += " (a trusted key)" if result.trusted else " (NOT a trusted key)"
    for difference in result.differences:
        _say(difference, sys.stderr)
    if result.differences:
        _say(f"runbook: {args.run_dir} does NOT match its signed manifest "
             f"({counted(len(result.differences), 'difference')}); {signer}", sys.stderr)
        return 1
    _say(f"runbook: {args.run_dir} matches its signed manifest ({counted(result.files, 'file')}); {signer}")
    return 0


def _key(args) -> int:
    from .signing import load_signing_key

    key = load_signing_key(args.signing_key)
    _say(f"runbook: signing key {key.path}: {key.public.fingerprint}", sys.stderr)
    print(key.public.pem(), end="")
    return 0


def set_verbosity(verbosity: int) -> None:
    """``-q`` (-1): failures and the final line; default (0): a line per step; ``-v`` (1): debug lines too."""
    import logging

    from .execution import LOG

    LOG.setLevel({-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[verbosity])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(chosen_command(argv)).parse_args(argv)
    if args.command != "scan":  # the runner's log; the scanner prints only its results
        set_verbosity(args.verbosity)
    if args.command == "lab" and args.verbosity > 0:
        args.verbose = True
    quiet = args.verbosity < 0
    try:
        if hasattr(args, "handler"):
            return args.handler(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "key":
            return _key(args)
        from . import runner

        if args.command == "run":
            return _report(runner.run_runbook(_options(args)), quiet)
        if args.command == "audit":
            options = _options(args)
            options.apply, options.backout = False, False
            return _report(runner.run_runbook(options, names=[runner.TEST_PLAN], include_baseline=True,
                                              folder_label="audit"), quiet)
        if args.command == "backout":
            return _report(runner.run_backout(args.run_dir, _options(args)), quiet)
        if args.command == "closeout":
            return _report(runner.run_closeout(args.run_dir, _options(args)), quiet)
    except RunbookError as exc:
        _say(f"runbook: {exc}", sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a file the operator named: one line, not a traceback
        _say(f"runbook: {exc.filename or 'file'}: {exc.strerror or type(exc).__name__}", sys.stderr)
        return 2
    except KeyboardInterrupt:
        _say("runbook: interrupted", sys.stderr)
        return 2
    return 2


if __name__ == "__main__":  # pragma: no cover
    from .quick_exit import exit_now

    exit_now(main())
