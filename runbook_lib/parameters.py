"""Notebook parameters of a headless run: which notebook gets which ``-p`` value, typed.

Each notebook declares its parameters in its ``parameters`` cell; a ``-p NAME VALUE``
goes to every notebook that declares ``NAME``, coerced to the declared type, and a
name no notebook declares is an error. The parameters the runner itself sets
(:data:`RUNNER_OWNED`: the run folder, the target, its region, profile and endpoint,
the function and whether to apply) cannot be set with ``-p``: a ``-p run_dir`` would
write into another run's folder and a ``-p target aws`` would label lab evidence as AWS.

Examples
--------
>>> refuse_runner_owned({"change_ticket": "CHG-1"})
>>> refuse_runner_owned({"run_dir": "runs/other"})
Traceback (most recent call last):
...
runbook_lib.exceptions.InputError: -p run_dir: is set by the runner, not by -p: use --out DIR (run, audit) or RUN_DIR (backout, closeout); nothing was run
"""

from __future__ import annotations

import functools

import json
from pathlib import Path
from typing import Sequence

from .exceptions import InputError

#: Parameter -> the option that sets it.
RUNNER_OWNED = {
    "run_dir": "--out DIR (run, audit) or RUN_DIR (backout, closeout)",
    "target": "--target",
    "region": "--region",
    "profile": "--profile",
    "endpoint_url": "--endpoint-url",
    "function_name": "--function",
    "apply": "--apply or --plan-only",
}
#: Parameters naming a file of the operator's: resolved against the operator's working
#: directory, because the kernel works in a folder of its own.
PATH_PARAMETERS = ("code_path", "rotate_from", "allowlist_path")


def refuse_runner_owned(extra: dict) -> None:
    """One line naming the option to use when a ``-p`` sets a runner-owned parameter."""
    owned = sorted(set(extra) & set(RUNNER_OWNED))
    if owned:
        raise InputError(f"-p {owned[0]}", f"is set by the runner, not by -p: use {RUNNER_OWNED[owned[0]]}; "
                         "nothing was run")


def resolve_path_parameters(extra: dict) -> dict:
    """``extra`` with each file parameter made absolute (the scrubber shortens it again in artifacts)."""
    out = dict(extra)
    for name in PATH_PARAMETERS:
        if out.get(name):
            out[name] = str(Path(out[name]).expanduser().resolve())
    return out


def declared_parameters(notebook: Path) -> dict:
    """The parameters a notebook's ``parameters`` cell declares (papermill's inspection).

    A run asks three times per notebook (check the input, route, route again with the run's
    values): the answer is kept per file and modification time.
    """
    path = Path(notebook)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    return dict(_inspected(str(path), stamp))


@functools.lru_cache(maxsize=64)
def _inspected(path: str, _stamp) -> dict:
    import papermill

    return papermill.inspect_notebook(path)


def coerce_parameter(name: str, raw, declared: dict):
    """Turn a ``-p name value`` string into the type the notebook declares."""
    if not isinstance(raw, str):
        return raw
    kind = (declared.get("inferred_type_name") or "").replace("typing.", "")
    text = raw.strip()
    if kind == "bool":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise InputError(name, f"expects true or false, got {raw!r}")
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise InputError(name, f"expects an integer, got {raw!r}") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise InputError(name, f"expects a number, got {raw!r}") from None
    if kind.startswith(("list", "dict")) or kind.startswith(("List", "Dict")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            if kind.lower().startswith("list"):
                return [part.strip() for part in text.split(",") if part.strip()]
            raise InputError(name, f"expects JSON, got {raw!r}") from None
    return raw


def route_parameters(notebooks: Sequence[Path], common: dict, extra: dict) -> dict[str, dict]:
    """Parameters per notebook: each gets the common and ``-p`` values it declares.

    A ``-p`` name that no notebook declares is an error, not a warning.
    """
    declared = {nb.stem: declared_parameters(nb) for nb in notebooks}
    known = set().union(*(d.keys() for d in declared.values())) if declared else set()
    unknown = sorted(set(extra) - known)
    if unknown:
        raise InputError(unknown[0], "no notebook declares this parameter; known: "
                         + ", ".join(sorted(known)))
    routed = {}
    for nb in notebooks:
        params = {}
        for name, value in {**common, **extra}.items():
            if name in declared[nb.stem]:
                params[name] = coerce_parameter(name, value, declared[nb.stem][name])
        routed[nb.stem] = params
    return routed
