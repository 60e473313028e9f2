"""``runbook unlock RUN_DIR``: release the locks a dead run left, after checking its process is gone.

A killed kernel (or a lost laptop) leaves the run's ledger lock and the function's lock
tag behind; every later change of that function refuses, naming the holder. This command
reads the holder from the ledger (what, run, host, pid, process start time), checks that
no live process holds it (a holder on another host cannot be checked: ``--force``), then
releases the ledger lock and, when the target is reachable, the function's lock tag. The
run's journal records the release.

The folder's signature (:mod:`runbook_lib.manifest`) is checked first. A folder that
matches its manifest, signed by a trusted key, is signed again after the release (the
ledger changed). A runner that was killed leaves a folder it never signed (no
``manifest.json``), or one whose files no longer match the manifest of an earlier step
(a ``runbook backout`` killed half-way); ``runbook backout`` refuses both. ``--sign``
is the operator's word that they checked such a folder: its state is journaled and the
folder is signed as it stands with their key, after which ``runbook backout`` runs. A
manifest that was itself tampered with (bad signature, untrusted signer) or a symlink in
the folder is never signed over.

For a lab run whose lab has stopped, only the ledger lock exists any more: the lab's
state, tag included, went with it.

Examples
--------
>>> release(run_dir, target, sign=True)            # doctest: +SKIP
['released the ledger lock of apply of run 2026...-aws (pid 4242 on host ci-7, started ...)', ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..exceptions import ChangeRefused
from ..ledger import Ledger
from ..manifest import MANIFEST_FILE, scan_folder, verify_run, write_manifest
from ..render import terminal
from ..session import Target
from ..signing import ensure_outside, load_signing_key, trusted_fingerprints
from . import locks

NOTEBOOK = "unlock"
#: Differences a killed runner leaves: files written after the last signature, or no signature at all.
SIGNABLE = frozenset({"not signed", "changed", "missing", "unexpected"})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``runbook unlock`` (``--signing-key`` and ``--trusted-key`` come from cli)."""
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("--target", choices=("lab", "aws"), default=None,
                        help="where the function lives (default: the run's target)")
    parser.add_argument("--region", default="", help="AWS region (default: the run's)")
    parser.add_argument("--profile", default="", help="named AWS profile")
    parser.add_argument("--endpoint-url", default="", help="a running lab, or AWS_ENDPOINT_URL")
    parser.add_argument("--force", action="store_true",
                        help="release a lock whose holder runs on another host (once you know it is dead)")
    parser.add_argument("--sign", action="store_true",
                        help="sign, as it stands and with your key, a folder its killed runner left unsigned "
                             "(or changed after its last signature), once you have checked it")


@dataclass(frozen=True)
class FolderState:
    """Whether a run folder matches its signed manifest; if not, the first reason and whether ``--sign`` may help."""

    verified: bool
    problem: str = ""
    signable: bool = False


def folder_state(run_dir: Path, trusted: Iterable[str]) -> FolderState:
    """How ``run_dir`` stands against its manifest (see the module docstring for what is signable)."""
    if not (Path(run_dir) / MANIFEST_FILE).is_file():
        never = f"never signed (no {MANIFEST_FILE}: its runner stopped before finishing it)"
        odd = scan_folder(run_dir)[1]
        return FolderState(False, f"{never}; {odd[0]}" if odd else never, not odd)
    differences = verify_run(run_dir, list(trusted)).differences
    if not differences:
        return FolderState(True)
    problems = {d.problem for d in differences}
    return FolderState(False, f"not as signed ({differences[0]}; {len(differences)} difference(s))",
                       problems <= SIGNABLE)


def release(run_dir: Path, target: Target | None, force: bool = False, sign: bool = False,
            signing_key: str | os.PathLike | None = None, trusted_keys: Iterable[str] = ()) -> list[str]:
    """Release the dead holder's locks of ``run_dir``; return what was done (and not), one line each.

    Raises
    ------
    ChangeRefused
        A live holder (or, without ``force``, one on another host); ``sign`` on a folder
        whose manifest was tampered with. Nothing is released or written then.
    InputError
        The signing key is unusable or lies in the folder (checked before anything changes).
    """
    run_dir = Path(run_dir)
    ledger = Ledger.open(run_dir, create=False)
    key = load_signing_key(signing_key)  # an unusable key stops here, before anything is released
    ensure_outside(key, run_dir)
    state = folder_state(run_dir, trusted_fingerprints(list(trusted_keys), signing_key))
    if sign and not state.verified and not state.signable:
        raise ChangeRefused(str(run_dir), f"not signed over: {state.problem}; --sign signs only a folder its "
                            "runner left unsigned or changed, never a forged or foreign manifest (pass "
                            "--trusted-key for a colleague's key); nothing was released")
    lam = target.client("lambda") if target else None
    lines = locks.unlock(ledger, lam, ledger.context.get("function_name", ""), force=force)
    released = not lines[0].startswith("no lock")
    vouched = sign and not state.verified
    if vouched:
        lines.append(f"signed {run_dir} as it stands with {key.public.fingerprint}: it was {state.problem}")
    if released or vouched:
        ledger.log(NOTEBOOK, "; ".join(lines))
    if (released and state.verified) or vouched:
        write_manifest(run_dir, key)  # the ledger changed, or the operator vouched for the folder
    elif not state.verified:
        lines.append(_way_on(run_dir, state))
        lines.append(_what_backout_reads(ledger))
    if target is None:
        lines.append("the function's lock tag was not checked: the run's lab has stopped and its tags with it; "
                     "pass --endpoint-url of a running lab to check one")
    return lines


def _what_backout_reads(ledger: Ledger) -> str:
    """The ledger's active records, one clause each: what the operator checks before vouching."""
    active = [f"{r.kind} {r.resource}" for r in ledger.records(active_only=True)]
    return ("its ledger records, for backout to undo: " + "; ".join(active)) if active else \
        "its ledger records nothing for backout to undo"


def _way_on(run_dir: Path, state: FolderState) -> str:
    """What the operator of a folder that does not verify can do next."""
    said = f"{run_dir} is {state.problem}: `runbook backout` refuses it. "
    if not state.signable:
        return said + ("`runbook verify RUN_DIR` lists every difference; a folder a colleague signed runs with "
                       "--trusted-key of their key")
    return said + ("Check it (`runbook verify RUN_DIR` lists every difference), then sign it as it stands with "
                   f"`runbook unlock RUN_DIR --sign`, or back it out in JupyterLab (notebooks/04_backout.ipynb "
                   f"with run_dir={run_dir})")


def main(args: argparse.Namespace) -> int:
    context = Ledger.open(args.run_dir, create=False).context
    name = args.target or context.get("target", "aws")
    target = None
    if name != "lab" or args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"):
        target = Target.from_parameters(name, region=args.region or context.get("region", ""),
                                        profile=args.profile, endpoint_url=args.endpoint_url)
    for line in release(args.run_dir, target, args.force, args.sign, args.signing_key, args.trusted_key):
        print(terminal(f"runbook: {line}"), file=sys.stdout)
    return 0
