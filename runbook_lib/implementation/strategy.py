"""How one function gets its secret after the change: the code strategy, chosen per function.

=============  ===============================================  ===============================================
strategy       when                                             what changes
=============  ===============================================  ===============================================
``wrapper``    ``auto`` on managed Python and Node.js 18+       nothing of the code: the runbook's exec-wrapper
               runtimes, secrets in environment variables, no   layer fetches the secret at init and hands its
               ``code_path``                                    keys to the runtime; configuration holds
                                                                ``SECRET_ID`` and the wrapper, never a value
``package``    ``code_path`` given (``auto`` picks it)           the code: the team's refactored package,
                                                                checked against the runtime's handler rules
``reference``  asked for by name (the lab's demo)               the code: the bundled reference handler
=============  ===============================================  ===============================================

What no strategy can change is refused before anything is read or written (an
:class:`~runbook_lib.exceptions.InputError`, exit 2), in one line naming what does apply:
container images, OS-only ``provided*`` runtimes without ``code_path``, runtimes the wrapper
has no fetcher for (Java, .NET, Ruby, Node.js 16 and older), Lambda@Edge without ``code_path``.

Examples
--------
>>> choose({"Runtime": "python3.12", "PackageType": "Zip", "FunctionName": "f"}, "auto").name
'wrapper'
>>> choose({"Runtime": "nodejs20.x", "PackageType": "Zip", "FunctionName": "f"}, "auto", has_code=True).name
'package'
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..exceptions import InputError

AUTO, WRAPPER, PACKAGE, REFERENCE = "auto", "wrapper", "package", "reference"
STRATEGIES = (AUTO, WRAPPER, PACKAGE, REFERENCE)
#: Node.js runtimes before 18 ship the AWS SDK for JavaScript v2 only; the fetcher needs v3.
MIN_NODE_MAJOR = 18
_NOTHING = "nothing was changed"


@dataclass(frozen=True)
class Strategy:
    """The chosen strategy: its name, why it was chosen and what it changes, in words."""

    name: str
    why: str
    changes: str

    @property
    def changes_code(self) -> bool:
        return self.name in (PACKAGE, REFERENCE)

    def describe(self) -> str:
        """One sentence for the plan (shown whole, never truncated)."""
        return f"strategy {self.name}: {self.why}; {self.changes}"


def family(runtime: str) -> str:
    """``python``, ``nodejs``, ``provided`` (OS-only), or the language of another managed runtime."""
    for prefix in ("python", "nodejs", "provided", "java", "dotnet", "ruby", "go"):
        if runtime.startswith(prefix):
            return prefix
    return runtime or "unknown"


def node_major(runtime: str) -> int:
    match = re.match(r"nodejs(\d+)", runtime)
    return int(match.group(1)) if match else 0


def wrapper_problem(runtime: str) -> str:
    """Why the runbook's wrapper cannot run on ``runtime`` ("" when it can)."""
    kind = family(runtime)
    if kind == "python":
        return ""
    if kind == "nodejs":
        if node_major(runtime) < MIN_NODE_MAJOR:
            return (f"{runtime} ships the AWS SDK for JavaScript v2 only and the wrapper's fetcher needs v3 "
                    f"(nodejs{MIN_NODE_MAJOR}.x or later)")
        return ""
    if kind == "provided":
        return f"{runtime} is an OS-only runtime: Lambda runs no exec wrapper there"
    return (f"the runbook's wrapper has no fetcher for {runtime} (it fetches with the boto3 or the AWS SDK for "
            "JavaScript v3 of the Python and Node.js 18+ runtimes)")


def choose(config: dict, requested: str = AUTO, has_code: bool = False, edge_mode: bool = False) -> Strategy:
    """The strategy for this function, or an :class:`InputError` naming what applies instead.

    ``config`` is the function's configuration; ``has_code``: a ``code_path`` was given;
    ``edge_mode``: the function becomes a Lambda@Edge viewer-request function.
    """
    if requested not in STRATEGIES:
        raise InputError("strategy", f"{requested!r} is not one of {', '.join(STRATEGIES)}")
    name, runtime = config.get("FunctionName", "the function"), config.get("Runtime", "")
    if config.get("PackageType") == "Image":
        raise InputError("strategy", f"{name} is a container image: layers and .zip packages do not apply to images, "
                         "so none of the runbook's strategies (wrapper, package, reference) can change it; what "
                         "applies is a rebuilt image whose code reads SECRET_ID from Secrets Manager; " + _NOTHING)
    _check_combination(requested, has_code)
    if requested == REFERENCE:
        return _reference(name, runtime)
    if has_code:  # auto or package
        return Strategy(PACKAGE, "code_path given", f"the code is replaced by {_package_kind(runtime)}; "
                        "handler, layers and the other variables stay")
    if requested == PACKAGE:
        raise InputError("code_path", "strategy package deploys your refactored package: pass code_path "
                         "(a .zip for the function's runtime); " + _NOTHING)
    if edge_mode:
        raise InputError("strategy", f"{name} becomes a Lambda@Edge function, which can have neither environment "
                         "variables nor layers, so strategy wrapper cannot apply: use strategy package (code_path "
                         "whose code finds the secret's id in its package) or strategy reference; " + _NOTHING)
    problem = wrapper_problem(runtime)
    if problem:
        raise InputError("strategy", f"{name}: {problem}, so strategy wrapper cannot apply: use strategy package "
                         "with code_path (code that reads SECRET_ID from Secrets Manager); " + _NOTHING)
    why = "asked for by name" if requested == WRAPPER else (
        f"{runtime} is a managed runtime with an exec-wrapper path and no code_path was given")
    return Strategy(WRAPPER, why, "no code change: the runbook's exec-wrapper layer fetches the secret once per "
                    "execution environment with the function's role and hands its keys to the runtime as the "
                    "same environment variables; the configuration keeps SECRET_ID and the wrapper, never a value")


def _check_combination(requested: str, has_code: bool) -> None:
    if has_code and requested in (WRAPPER, REFERENCE):
        raise InputError("strategy", f"strategy {requested} deploys no package of yours but code_path was given: "
                         "drop code_path, or use strategy package (or auto); " + _NOTHING)


def _reference(name: str, runtime: str) -> Strategy:
    if family(runtime) != "python":
        raise InputError("strategy", f"the reference handler is Python and {name} runs on {runtime or 'no runtime'}: "
                         "use strategy wrapper or package; " + _NOTHING)
    return Strategy(REFERENCE, "asked for by name", "the code is replaced by the bundled reference handler "
                    "(reference_handler.handler), which reads the secret at run time; its own behaviour, not "
                    "the function's")


def _package_kind(runtime: str) -> str:
    kind = family(runtime)
    if kind == "provided":
        return "your package (its bootstrap reads the secret)"
    return f"your refactored {kind} package"
