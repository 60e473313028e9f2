"""``runbook lab-runtimes``: install the SDKs the lab's Lambda runtimes offer functions.

Lambda gives a function boto3 (Python) or the AWS SDK for JavaScript v3 (Node.js) besides its
own package and layers. The lab offers the same, from a folder of its own
(:func:`runbook_lib.lab.runtimes.runtimes_home`: ``$RUNBOOK_LAB_RUNTIMES``, else
``<sys.prefix>/lambda-runtimes``), filled from the pinned manifests shipped in
``runbook_lib/lab/sdk/``: ``pip install --no-deps --target`` of ``python-requirements.txt``
and ``npm ci`` of ``package-lock.json``. ``make lab-runtimes`` runs this command in a checkout;
an installed package runs it once after ``pip install``. Needs the package index (pip) and
the npm registry (npm), once.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

from .runtimes import runtimes_home

FAMILIES = ("python", "nodejs")
MARKER = ".installed"


def sdk_manifests() -> Path:
    """The folder of pinned SDK manifests shipped with the package."""
    return Path(str(resources.files("runbook_lib.lab") / "sdk"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--family", choices=FAMILIES, action="append", default=[],
                        help="install only this runtime family's SDK (repeatable; default: both)")
    parser.add_argument("--into", type=Path, default=None, metavar="DIR",
                        help="install under DIR (default: $RUNBOOK_LAB_RUNTIMES, else <sys.prefix>/lambda-runtimes)")


def install_python(home: Path, manifests: Path) -> str:
    """boto3 as pinned, into ``home/python`` (replaced whole: a half-installed folder never counts)."""
    target = home / "python"
    shutil.rmtree(target, ignore_errors=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                           "-r", str(manifests / "python-requirements.txt")], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install of the Python runtime SDK failed: {_last_line(done.stderr)}")
    target.mkdir(parents=True, exist_ok=True)
    (target / MARKER).touch()
    return f"python: boto3 installed in {target}"


def install_nodejs(home: Path, manifests: Path) -> str:
    """The AWS SDK for JavaScript v3 clients as locked, into ``home/nodejs`` with ``npm ci``."""
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm not found: the lab will not run Node.js functions "
                           "(install Node.js, then run `runbook lab-runtimes --family nodejs`)")
    target = home / "nodejs"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(manifests / name, target / name)
    done = subprocess.run([npm, "ci", "--silent", "--omit=dev", "--no-audit", "--no-fund"], cwd=target,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"npm ci of the Node.js runtime SDK failed: {_last_line(done.stderr)}")
    (target / MARKER).touch()
    return f"nodejs: AWS SDK for JavaScript v3 installed in {target}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


INSTALLERS = {"python": install_python, "nodejs": install_nodejs}


def main(args: argparse.Namespace) -> int:
    """Install each asked family; exit 0 when all were installed, 1 when one was not (each says why)."""
    from ..render import terminal

    home = args.into or runtimes_home()
    manifests = sdk_manifests()
    failed = 0
    for family in args.family or FAMILIES:
        try:
            line, stream = INSTALLERS[family](home, manifests), sys.stdout
        except (RuntimeError, OSError) as exc:
            line, stream, failed = str(exc), sys.stderr, failed + 1
        print(terminal(f"runbook: {line}"), file=stream)
    return 1 if failed else 0
