"""Mutation testing of runbook_lib modules: do the tests notice when the code is wrong?

Usage::

    .venv/bin/python benchmarks/mutation.py [--tests TEST.py ...] [--jobs N] [--min-score 85] MODULE...
    make mutation MODULES="runbook_lib/rules.py runbook_lib/redaction.py"

For each module, mutmut (3.x, the ``mutation`` extra of ``pyproject.toml``) changes the
module's functions one small edit at a time (``<`` for ``<=``, ``and`` for ``or``, a
constant, a dropped argument, ...) and runs the module's unit tests against each mutant.
A mutant the tests fail on is *killed*; one they pass on *survived*: a bug the tests would
not catch. Printed per module: mutants, killed, survived, timeout, no tests, equivalent,
score, then every survivor as its diff lines.

Which tests: ``tests/test_<module>.py`` plus what ``benchmarks/mutation.toml`` lists for
the module under ``[tests]`` (or ``--tests``, which replaces both). Only fast unit tests
run: tests marked ``lab``/``notebooks`` and tests using a lab or moto-server fixture are
deselected, so no lab process starts per mutant.

Score = (killed + timeout + segfault) / (mutants - equivalent). A timeout or a crash
counts as killed (the tests noticed); a mutant no selected test reaches counts as not killed.
Equivalent mutants (same behaviour as the original, so no test can kill them) are listed
in ``benchmarks/mutation.toml`` under ``[[equivalent]]`` with a one-line reason.

Each module runs in a fresh copy of the project under ``benchmarks/.cache/mutation/``, so
the work tree is never touched and results never go stale. Exit code 0 when every module
scores at least ``--min-score``, 1 when one does not, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = HERE / "mutation.toml"
WORK = HERE / ".cache" / "mutation"
PACKAGE = "runbook_lib"
#: Fixtures that start a lab or a server: tests using them are not run per mutant.
SLOW_FIXTURES = {"lab", "seeded_lab", "enforcing_lab", "moto_endpoint"}
#: Appended to the copy's tests/conftest.py: deselects what needs a lab or a server.
FAST_ONLY_HOOK = '''

# --- added by benchmarks/mutation.py: unit tests only, no lab process per mutant ---
def pytest_collection_modifyitems(config, items):
    slow = set({slow!r})
    keep, drop = [], []
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        marked = item.get_closest_marker("lab") or item.get_closest_marker("notebooks")
        (drop if marked or names & slow or any(n.endswith("_lab") for n in names) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
'''


#: Statuses that mean the tests noticed the mutant: they failed, hung, or crashed.
DETECTED = ("killed", "timeout", "segfault", "caught by type check")


class UsageError(Exception):
    """Bad input: one line naming what is wrong and what to do."""


@dataclass
class Outcome:
    """The mutants of one module, by status, and the diff of each one not killed."""

    module: str
    tests: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    survivors: list[tuple[str, str, list[str]]] = field(default_factory=list)  # name, status, diff lines
    equivalent: list[tuple[str, str]] = field(default_factory=list)  # name, reason
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def detected(self) -> int:
        return sum(self.counts.get(status, 0) for status in DETECTED)

    @property
    def score(self) -> float:
        judged = self.total - len(self.equivalent)
        return 100.0 * self.detected / judged if judged else 100.0


def load_config(path: Path = CONFIG) -> dict:
    if not path.exists():
        return {"tests": {}, "equivalent": []}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {"tests": data.get("tests", {}), "equivalent": data.get("equivalent", [])}


def resolve_module(name: str) -> str:
    """``runbook_lib/x.py`` (as given, or from ``x.py`` / ``runbook_lib.x``) if the file exists."""
    rel = name.replace("\\", "/")
    if rel.endswith(".py") and not rel.startswith(PACKAGE + "/"):
        rel = f"{PACKAGE}/{rel}"
    elif not rel.endswith(".py"):
        rel = rel.replace(".", "/") + ".py"
        rel = rel if rel.startswith(PACKAGE + "/") else f"{PACKAGE}/{rel}"
    if not (ROOT / rel).is_file():
        raise UsageError(f"module {name}: no file {rel} in {ROOT}; give a path like runbook_lib/rules.py")
    return rel


def tests_for(module: str, config: dict, override: list[str] | None) -> list[str]:
    """The test files to run against the mutants of ``module``."""
    if override:
        chosen = list(override)
    else:
        stem = Path(module).relative_to(PACKAGE).with_suffix("").as_posix().replace("/", "_")
        mirror = f"tests/test_{stem}.py"
        chosen = ([mirror] if (ROOT / mirror).is_file() else []) + list(config["tests"].get(module, []))
    chosen = list(dict.fromkeys(chosen))
    missing = [t for t in chosen if not (ROOT / t).is_file()]
    if missing:
        raise UsageError(f"{module}: test file(s) {', '.join(missing)} do not exist")
    if not chosen:
        raise UsageError(f"{module}: no tests/test_{Path(module).stem}.py and none listed in {CONFIG.name} "
                         f"[tests]; pass --tests tests/test_x.py")
    return chosen


def _toml_value(value) -> str:
    return json.dumps(value)  # strings and lists of strings: JSON is valid TOML for these


def prepare_workdir(module: str, tests: list[str], workdir: Path) -> None:
    """A fresh copy of the package and the tests, configured for mutmut on ``module`` only."""
    if workdir.exists():
        shutil.rmtree(workdir)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    shutil.copytree(ROOT / PACKAGE, workdir / PACKAGE, ignore=ignore)
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=ignore)
    conftest = workdir / "tests" / "conftest.py"
    conftest.write_text(conftest.read_text(encoding="utf-8") + FAST_ONLY_HOOK.format(slow=sorted(SLOW_FIXTURES)),
                        encoding="utf-8")
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    lines = ["[tool.mutmut]",
             f"source_paths = {_toml_value([PACKAGE])}",
             f"only_mutate = {_toml_value([module])}",
             f"pytest_add_cli_args = {_toml_value(['-p', 'no:cacheprovider', '-q'])}",
             f"pytest_add_cli_args_test_selection = {_toml_value(tests)}",
             "use_git_change_detection = false",
             "", "[tool.pytest.ini_options]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in pytest_ini.items() if key != "addopts"]
    (workdir / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def mutmut(workdir: Path, *args: str, log=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "RUNBOOK_FINGERPRINT_KEY")}
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=workdir, env=env, text=True,
                          stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT if log else subprocess.PIPE)


def function_of(mutant: str, module: str) -> str:
    """``runbook_lib.rules.x_key_class__mutmut_3`` -> ``key_class``; methods as ``Class.method``."""
    prefix = Path(module).with_suffix("").as_posix().replace("/", ".") + "."
    name = mutant[len(prefix):] if mutant.startswith(prefix) else mutant
    name = name.rsplit("__mutmut_", 1)[0]
    if name.startswith("x\u01c1"):
        return ".".join(part for part in name[2:].split("\u01c1") if part)
    return name[2:] if name.startswith("x_") else name


def diff_lines(workdir: Path, module: str, mutant: str) -> list[str]:
    """The changed lines of a mutant: ``-original`` and ``+mutated``."""
    try:  # in process: one `mutmut show` per survivor costs a second each
        from mutmut.mutation.diff_apply import get_diff_for_mutant
    except ImportError:  # pragma: no cover - another mutmut 3 layout
        get_diff_for_mutant = None
    if get_diff_for_mutant is not None:
        here = os.getcwd()
        os.chdir(workdir)
        try:
            text = get_diff_for_mutant(mutant, path=module)
        finally:
            os.chdir(here)
    else:
        text = mutmut(workdir, "show", mutant).stdout or ""
    out = [line for line in text.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return out or ["(mutmut gave no diff for this mutant)"]


def equivalent_reason(module: str, function: str, diff: list[str], config: dict) -> str | None:
    mutated = " | ".join(line[1:].strip() for line in diff if line.startswith("+"))
    for entry in config["equivalent"]:
        if (entry.get("module") == module and entry.get("function") == function
                and entry.get("mutant", "").strip() == mutated):
            return entry.get("reason", "equivalent")
    return None


def collect(module: str, tests: list[str], workdir: Path, config: dict) -> Outcome:
    from mutmut.stats import status_by_exit_code

    meta = workdir / "mutants" / (module + ".meta")
    if not meta.is_file():
        raise UsageError(f"{module}: mutmut made no mutants (see {workdir / 'mutmut.log'})")
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    outcome = Outcome(module, tests)
    for name, code in sorted(codes.items(), key=lambda kv: _mutant_order(kv[0])):
        status = status_by_exit_code[code]
        outcome.counts[status] = outcome.counts.get(status, 0) + 1
        if status in DETECTED:
            continue
        diff = diff_lines(workdir, module, name)
        reason = equivalent_reason(module, function_of(name, module), diff, config)
        if reason:
            outcome.equivalent.append((name, reason))
        else:
            outcome.survivors.append((name, status, diff))
    return outcome


def _mutant_order(name: str) -> tuple[str, int]:
    base, _, number = name.rpartition("__mutmut_")
    return base, int(number) if number.isdigit() else 0


def run_module(module: str, tests: list[str], config: dict, jobs: int) -> Outcome:
    workdir = WORK / module.replace("/", "_").removesuffix(".py")
    prepare_workdir(module, tests, workdir)
    started = time.monotonic()
    with open(workdir / "mutmut.log", "w", encoding="utf-8") as log:
        done = mutmut(workdir, "run", "--max-children", str(jobs), log=log)
    if done.returncode != 0:
        tail = (workdir / "mutmut.log").read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        raise UsageError(f"{module}: mutmut run failed (exit {done.returncode}): {' / '.join(tail)[-300:]}")
    outcome = collect(module, tests, workdir, config)
    outcome.seconds = time.monotonic() - started
    return outcome


COLUMNS = ("mutants", "killed", "survived", "timeout", "no tests", "equivalent", "score")


def table(outcomes: list[Outcome]) -> str:
    width = max([len("module")] + [len(o.module) for o in outcomes])
    rows = ["  ".join(["module".ljust(width)] + [c.rjust(10) for c in COLUMNS] + ["seconds".rjust(8)])]
    for o in outcomes:
        left = [status for _, status, _ in o.survivors]  # not killed and not listed as equivalent
        cells = [o.total, o.counts.get("killed", 0), left.count("survived"), o.counts.get("timeout", 0),
                 left.count("no tests"), len(o.equivalent)]
        rows.append("  ".join([o.module.ljust(width)] + [str(c).rjust(10) for c in cells]
                              + [f"{o.score:.1f}%".rjust(10), f"{o.seconds:.0f}".rjust(8)]))
    return "\n".join(rows)


def survivors_text(outcome: Outcome) -> str:
    lines = [f"\n{outcome.module}: {len(outcome.survivors)} not killed (tests: {' '.join(outcome.tests)})"]
    for name, status, diff in outcome.survivors:
        lines.append(f"  {function_of(name, outcome.module)} [{status}] {name.rsplit('__mutmut_', 1)[-1]}")
        lines.extend(f"      {line}" for line in diff)
    for name, reason in outcome.equivalent:
        lines.append(f"  {function_of(name, outcome.module)} [equivalent] {reason}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", metavar="MODULE", help="runbook_lib/x.py (or x.py, runbook_lib.x)")
    parser.add_argument("--tests", nargs="+", metavar="TEST", help="test files to run instead of the default ones")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested in parallel")
    parser.add_argument("--min-score", type=float, default=85.0, help="exit 1 when a module scores below (percent)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import mutmut as _tool  # noqa: F401  (installed with the `mutation` extra)
    except ImportError:
        print("mutation: mutmut is not installed; run `make mutation` or "
              "`.venv/bin/pip install -e '.[test,mutation]'`", file=sys.stderr)
        return 2
    config = load_config()
    try:
        plan = [(m, tests_for(m, config, args.tests)) for m in dict.fromkeys(resolve_module(n) for n in args.modules)]
    except UsageError as exc:
        print(f"mutation: {exc}", file=sys.stderr)
        return 2
    outcomes, failed = [], []
    for module, tests in plan:
        print(f"mutation: {module} against {' '.join(tests)} ...", file=sys.stderr, flush=True)
        try:
            outcomes.append(run_module(module, tests, config, max(1, args.jobs)))
        except UsageError as exc:  # one module that cannot run does not stop the others
            failed.append(str(exc))
            print(f"mutation: {exc}", file=sys.stderr, flush=True)
    if outcomes:
        print(table(outcomes))
    for outcome in outcomes:
        print(survivors_text(outcome))
    low = [o.module for o in outcomes if o.score < args.min_score]
    if low:
        print(f"\nbelow {args.min_score:g}%: {', '.join(low)}")
    for message in failed:
        print(f"\ncould not run: {message}")
    return 2 if failed else 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
