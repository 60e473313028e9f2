"""Where the runbook's shipped files are: the notebooks and the operator policies.

In the repository they live at the top level (``notebooks/``, ``policies/``, beside
``runbook_lib/``); the wheel and the sdist carry them inside the package
(``runbook_lib/notebooks/``, ``runbook_lib/policies/``: ``setup.py``'s ``build_py`` copies
them there). :func:`shipped_folder` looks in the installed package first, with
:mod:`importlib.resources`, then in the checkout the package was imported from, so an
installed wheel, a checkout and an editable install all find them. ``RUNBOOK_NOTEBOOKS``
points the runner at another folder of notebooks.

Examples
--------
>>> notebooks_dir().joinpath("01_test_plan.ipynb").is_file()
True
>>> policies_dir().joinpath("auditor.json").is_file()
True
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .exceptions import InputError

PACKAGE = "runbook_lib"
#: The folders shipped with the package, by name.
SHIPPED = ("notebooks", "policies")
NOTEBOOKS_ENV = "RUNBOOK_NOTEBOOKS"


def shipped_folder(name: str) -> Path:
    """The folder ``name`` (one of :data:`SHIPPED`): inside the installed package, else the checkout's.

    When neither exists the installed package's path is returned: whoever reads a file from it
    says which one is missing (:func:`missing_file`).
    """
    if name not in SHIPPED:
        raise InputError("folder", f"{name!r} is not one of {', '.join(SHIPPED)}")
    packaged = Path(str(resources.files(PACKAGE) / name))
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[1] / name
    return checkout if checkout.is_dir() else packaged


def notebooks_dir() -> Path:
    """The notebooks ``runbook run`` executes: ``$RUNBOOK_NOTEBOOKS``, else the shipped ones."""
    configured = os.environ.get(NOTEBOOKS_ENV)
    return Path(configured) if configured else shipped_folder("notebooks")


def policies_dir() -> Path:
    """The operator policies (``auditor.json``, ``implementer.json``)."""
    return shipped_folder("policies")


def missing_file(parameter: str, path: Path) -> InputError:
    """The one-line error for a shipped file that is not there: what is missing and how to get it back."""
    configured = os.environ.get(NOTEBOOKS_ENV)
    if configured and Path(path).parent == Path(configured):
        remedy = f"put it there or unset {NOTEBOOKS_ENV}"
    else:
        remedy = "this installation of lambda-secrets-runbook is incomplete: reinstall it (pip install --force-reinstall)"
    return InputError(parameter, f"missing {path}: {remedy}")
