"""``runbook unlock RUN_DIR``: release the locks a dead run left, after checking its process is gone.

A killed kernel (or a lost laptop) leaves the run's ledger lock and the function's lock
tag behind; every later change of that function refuses, naming the holder. This command
reads the holder from the ledger (what, run, host, pid, process start time), checks that
no live process holds it (a holder on another host cannot be checked: ``--force``), then
releases the ledger lock and, when the target is reachable, the function's lock tag. The
run's journal records the release and the manifest is refreshed.

For a lab run whose lab has stopped, only the ledger lock exists any more: the lab's
state, tag included, went with it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..ledger import Ledger
from ..manifest import MANIFEST_FILE, write_manifest
from ..session import Target
from . import locks

NOTEBOOK = "unlock"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--target", choices=("lab", "aws"), default=None,
                        help="where the function lives (default: the run's target)")
    parser.add_argument("--region", default="", help="AWS region (default: the run's)")
    parser.add_argument("--profile", default="", help="named AWS profile")
    parser.add_argument("--endpoint-url", default="", help="a running lab, or AWS_ENDPOINT_URL")
    parser.add_argument("--force", action="store_true",
                        help="release a lock whose holder runs on another host (once you know it is dead)")


def release(run_dir: Path, target: Target | None, force: bool = False) -> list[str]:
    """Release the dead holder's locks of ``run_dir``; return what was done (and not), one line each."""
    ledger = Ledger.open(run_dir, create=False)
    lam = target.client("lambda") if target else None
    lines = locks.unlock(ledger, lam, ledger.context.get("function_name", ""), force=force)
    if lines and not lines[0].startswith("no lock"):
        ledger.log(NOTEBOOK, "; ".join(lines))
        if (Path(run_dir) / MANIFEST_FILE).is_file():
            write_manifest(run_dir)  # the ledger changed: the manifest says so
    if target is None:
        lines.append("the function's lock tag was not checked: the run's lab has stopped and its tags with it; "
                     "pass --endpoint-url of a running lab to check one")
    return lines


def main(args: argparse.Namespace) -> int:
    context = Ledger.open(args.run_dir, create=False).context
    name = args.target or context.get("target", "aws")
    target = None
    if name != "lab" or args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"):
        target = Target.from_parameters(name, region=args.region or context.get("region", ""),
                                        profile=args.profile, endpoint_url=args.endpoint_url)
    for line in release(args.run_dir, target, args.force):
        print(f"runbook: {line}", file=sys.stdout)
    return 0
