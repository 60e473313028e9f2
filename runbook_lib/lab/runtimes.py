"""Which Lambda runtimes exist, which of them the lab runs, and with what on this machine.

Three things live here:

- :data:`LIFECYCLE`, AWS's published runtime schedule (deprecation, block-create and
  block-update dates per identifier, as the Lambda runtimes page gives them in August
  2026). :func:`lifecycle_refusal` answers CreateFunction and the update calls as Lambda
  does: an identifier past its block date is refused with AWS's error and message, one
  Lambda never had fails its enum validation.
- :func:`launcher`, how the lab starts a runtime family here: the interpreter (Python)
  or ``node`` binary, the SDK folder ``make lab-runtimes`` installed (boto3 for Python,
  the AWS SDK for JavaScript v3 for Node.js) and the unprivileged user functions run as.
- :func:`layer_paths` and :func:`search_path`, the ``/opt`` layout and the
  ``PYTHONPATH``/``NODE_PATH`` values AWS documents per runtime.

The SDK folders are found from the lab's own interpreter: ``$RUNBOOK_LAB_RUNTIMES``,
else ``<sys.prefix>/lambda-runtimes`` (``.venv/lambda-runtimes`` after ``make venv``).
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

#: identifier -> (deprecated, block function create, block function update); None: not scheduled.
LIFECYCLE: dict[str, tuple[str | None, str | None, str | None]] = {
    "nodejs24.x": ("2028-04-30", "2028-06-01", "2028-07-01"),
    "nodejs22.x": ("2027-04-30", "2027-06-01", "2027-07-01"),
    "nodejs20.x": ("2026-04-30", "2027-02-01", "2027-03-03"),
    "nodejs18.x": ("2025-09-01", "2027-02-01", "2027-03-03"),
    "nodejs16.x": ("2024-06-12", "2027-02-01", "2027-03-03"),
    "nodejs14.x": ("2023-12-04", "2024-01-09", "2027-03-03"),
    "nodejs12.x": ("2023-03-31", "2023-03-31", "2023-04-30"),
    "nodejs10.x": ("2021-07-30", "2021-07-30", "2022-02-14"),
    "nodejs8.10": ("2020-03-06", "2020-02-04", "2020-03-06"),
    "nodejs6.10": ("2019-08-12", "2019-07-12", "2019-08-12"),
    "nodejs4.3": ("2020-03-05", "2020-02-03", "2020-03-05"),
    "nodejs4.3-edge": ("2020-03-05", "2019-03-31", "2019-04-30"),
    "nodejs": ("2016-08-30", "2016-09-30", "2016-10-31"),
    "python3.14": ("2029-06-30", "2029-07-31", "2029-08-31"),
    "python3.13": ("2029-06-30", "2029-07-31", "2029-08-31"),
    "python3.12": ("2028-10-31", "2028-11-30", "2029-01-10"),
    "python3.11": ("2027-06-30", "2027-07-31", "2027-08-31"),
    "python3.10": ("2026-10-31", "2027-02-01", "2027-03-03"),
    "python3.9": ("2025-12-15", "2027-02-01", "2027-03-03"),
    "python3.8": ("2024-10-14", "2027-02-01", "2027-03-03"),
    "python3.7": ("2023-12-04", "2024-01-09", "2027-03-03"),
    "python3.6": ("2022-07-18", "2022-07-18", "2022-08-29"),
    "python2.7": ("2021-07-15", "2021-07-15", "2022-05-30"),
    "java25": ("2029-06-30", "2029-07-31", "2029-08-31"),
    "java21": ("2029-06-30", "2029-07-31", "2029-08-31"),
    "java17": ("2027-06-30", "2027-07-31", "2027-08-31"),
    "java11": ("2027-06-30", "2027-07-31", "2027-08-31"),
    "java8.al2": ("2027-06-30", "2027-07-31", "2027-08-31"),
    "java8": ("2024-01-08", "2024-02-08", "2027-03-03"),
    "dotnet10": ("2028-11-14", "2028-12-14", "2029-01-15"),
    "dotnet8": ("2026-11-10", "2027-02-01", "2027-03-03"),
    "dotnet7": ("2024-05-14", "2024-05-14", "2024-05-14"),
    "dotnet6": ("2024-12-20", "2027-02-01", "2027-03-03"),
    "dotnetcore3.1": ("2023-04-03", "2023-04-03", "2023-05-03"),
    "dotnetcore2.1": ("2022-01-05", "2022-01-05", "2022-04-13"),
    "dotnetcore2.0": ("2019-05-30", "2019-04-30", "2019-05-30"),
    "dotnetcore1.0": ("2019-06-27", "2019-06-30", "2019-07-30"),
    "ruby4.0": ("2029-03-31", "2029-04-30", "2029-05-31"),
    "ruby3.4": ("2028-03-31", "2028-04-30", "2028-05-31"),
    "ruby3.3": ("2027-03-31", "2027-04-30", "2027-05-31"),
    "ruby3.2": ("2026-03-31", "2027-02-01", "2027-03-03"),
    "ruby2.7": ("2023-12-07", "2024-01-09", "2027-03-03"),
    "ruby2.5": ("2021-07-30", "2021-07-30", "2022-03-31"),
    "go1.x": ("2024-01-08", "2024-02-08", "2027-03-03"),
    "provided.al2023": ("2029-06-30", "2029-07-31", "2029-08-31"),
    "provided.al2": ("2026-07-31", "2027-02-01", "2027-03-03"),
    "provided": ("2024-01-08", "2024-02-08", "2027-03-03"),
}
#: What the lab runs (all Python ones on its own interpreter, all Node.js ones on ``node``).
PYTHON_RUNTIMES = ("python3.8", "python3.9", "python3.10", "python3.11", "python3.12",
                   "python3.13", "python3.14")
NODEJS_RUNTIMES = ("nodejs18.x", "nodejs20.x", "nodejs22.x")
#: The unprivileged user functions run as when the lab runs as root (Lambda's sbx_user).
SANDBOX_UID = 65534
INSTALL_COMMAND = "runbook lab-runtimes"
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def lifecycle_refusal(runtime: str, *, creating: bool, today: date | None = None
                      ) -> tuple[str, str, int] | None:
    """``(code, message, status)`` Lambda answers a create or update with ``runtime``, or None.

    Examples
    --------
    >>> lifecycle_refusal("python3.7", creating=True, today=date(2026, 12, 1))[0]
    'InvalidParameterValueException'
    >>> lifecycle_refusal("python3.12", creating=True, today=date(2026, 12, 1)) is None
    True
    """
    today = today or datetime.now(timezone.utc).date()
    dates = LIFECYCLE.get(runtime)
    if dates is None:
        return _unknown_runtime(runtime)
    block = dates[1] if creating else dates[2]
    if block is not None and today >= date.fromisoformat(block):
        return ("InvalidParameterValueException",
                f"The runtime parameter of {runtime} is no longer supported for creating or updating "
                "AWS Lambda functions. We recommend you use a supported runtime while creating or "
                "updating functions.", 400)
    return None


def _unknown_runtime(runtime: str) -> tuple[str, str, int]:
    enum = _runtime_enum()
    if runtime not in enum:
        return ("ValidationException",
                f"1 validation error detected: Value '{runtime}' at 'runtime' failed to satisfy "
                f"constraint: Member must satisfy enum value set: [{', '.join(enum)}]", 400)
    # botocore knows the name but AWS has not published a schedule for it: the lab cannot
    # tell whether Lambda accepts it yet, so it refuses rather than guess
    return ("InvalidParameterValueException",
            f"The lab does not know whether Lambda offers the {runtime} runtime yet (its table "
            f"follows AWS's runtime schedule of August 2026); use a listed runtime.", 400)


@functools.lru_cache(maxsize=1)
def _runtime_enum() -> tuple[str, ...]:
    from .botocore_data import botocore_session

    model = botocore_session().get_service_model("lambda")
    return tuple(model.shape_for("Runtime").enum)


def family(runtime: str) -> str | None:
    """``python`` or ``nodejs`` for a runtime the lab runs, else None."""
    if runtime in PYTHON_RUNTIMES:
        return "python"
    if runtime in NODEJS_RUNTIMES:
        return "nodejs"
    return None


def language_version(runtime: str) -> str:
    """``3.12`` for ``python3.12``, ``20`` for ``nodejs20.x``."""
    return runtime.removeprefix("python") if runtime.startswith("python") \
        else runtime.removeprefix("nodejs").removesuffix(".x")


def layer_paths(runtime: str, opt: Path) -> list[Path]:
    """Where a runtime looks for layer content under ``/opt`` (here: ``opt``), first first."""
    if runtime.startswith("python"):
        return [opt / "python" / "lib" / f"python{language_version(runtime)}" / "site-packages",
                opt / "python"]
    return [opt / "nodejs" / f"node{language_version(runtime)}" / "node_modules",
            opt / "nodejs" / "node_modules"]


def search_path(runtime: str, runtime_dir: Path, sdk: Path, task_root: Path) -> tuple[str, str]:
    """``("PYTHONPATH", value)`` or ``("NODE_PATH", value)`` as Lambda sets it.

    ``/opt`` entries keep AWS's literal paths: the bootstrap maps ``/opt/`` to the
    environment's own folder, for these entries and for any a wrapper adds.
    """
    if runtime.startswith("python"):
        return "PYTHONPATH", str(runtime_dir)
    version = language_version(runtime)
    return "NODE_PATH", ":".join([f"/opt/nodejs/node{version}/node_modules", "/opt/nodejs/node_modules",
                                  str(sdk / "node_modules"), str(runtime_dir), str(task_root)])


def runtimes_home() -> Path:
    """Where ``runbook lab-runtimes`` (``make lab-runtimes`` in a checkout) put the SDK folders."""
    configured = os.environ.get("RUNBOOK_LAB_RUNTIMES")
    return Path(configured) if configured else Path(sys.prefix) / "lambda-runtimes"


@dataclass(frozen=True)
class Launcher:
    """How the lab starts one runtime family on this machine.

    Attributes
    ----------
    family:
        ``python`` or ``nodejs``.
    executable:
        The interpreter or ``node`` binary ("" when there is none).
    sdk:
        The SDK folder (``<home>/python`` holds boto3, ``<home>/nodejs/node_modules`` the
        ``@aws-sdk`` clients).
    user:
        The uid functions run as (:data:`SANDBOX_UID` when the lab is root and that user
        can read the interpreter and SDK), None for the lab's own user.
    problem:
        Why functions of this family cannot run here, one line; "" when they can.
    """

    family: str
    executable: str
    sdk: Path
    user: int | None
    problem: str = ""

    def command(self, runtime_dir: Path) -> list[str]:
        """The runtime start-up command (what an exec wrapper receives as ``"$@"``)."""
        if self.family == "python":
            # -S: no site-packages of this machine's interpreter, only what Lambda offers
            return [self.executable, "-S", str(runtime_dir / "bootstrap.py")]
        return [self.executable, str(runtime_dir / "index.mjs")]


def launcher(family_name: str) -> Launcher:
    """The :class:`Launcher` for ``python`` or ``nodejs`` (checked at every cold start)."""
    sdk = runtimes_home() / family_name
    candidates = _python_candidates() if family_name == "python" else _node_candidates()
    if not candidates:
        return Launcher(family_name, "", sdk, None,
                        "node is not installed on this machine: the lab cannot run Node.js functions")
    if not (sdk / ".installed").is_file():
        what = "boto3 for Python" if family_name == "python" else "the AWS SDK for JavaScript v3"
        return Launcher(family_name, candidates[0], sdk, None,
                        f"the lab's {family_name} runtime SDK ({what}) is missing from {sdk}: "
                        f"run `{INSTALL_COMMAND}`")
    return _choose_user(family_name, candidates, sdk)


def _choose_user(family_name: str, candidates: list[str], sdk: Path) -> Launcher:
    if os.geteuid() == 0:
        for executable in candidates:
            if _others_can_use(Path(executable), execute=True) and _others_can_use(sdk, execute=True):
                return Launcher(family_name, executable, sdk, SANDBOX_UID)
    return Launcher(family_name, candidates[0], sdk, None)


@functools.lru_cache(maxsize=1)
def _python_candidates() -> list[str]:
    # the lab's base interpreter first; a system one of the same version when the
    # sandbox user cannot reach the first (a pyenv interpreter under /root)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    found = [os.environ.get("RUNBOOK_LAB_PYTHON", ""), getattr(sys, "_base_executable", ""),
             sys.executable, shutil.which(version, path=_SYSTEM_PATH) or ""]
    return list(dict.fromkeys(str(Path(p).resolve()) for p in found if p and Path(p).exists()))


def _node_candidates() -> list[str]:
    found = shutil.which("node") or shutil.which("node", path=_SYSTEM_PATH)
    return [str(Path(found).resolve())] if found else []


def _others_can_use(path: Path, execute: bool) -> bool:
    """Whether a user with no special rights can read (and run) ``path``: every folder on
    the way must be searchable by others."""
    try:
        resolved = path.resolve(strict=True)
        mode = resolved.stat().st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if execute or resolved.is_dir() else 0)
        if mode & needed != needed:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in resolved.parents)
    except OSError:
        return False
