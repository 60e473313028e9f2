"""The project's packaging stays coherent: environment.yml <-> pyproject, clean notebooks."""

import json
import re
import tomllib
from pathlib import Path

import papermill
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _name(requirement: str) -> str:
    return re.split(r"[<>=!\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def _spec(requirement: str) -> str:
    return re.sub(r"^[A-Za-z0-9_.-]+(\[[^\]]*\])?", "", requirement.replace(" ", ""))


def _pyproject_requirements() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["test"]
    return {_name(r): _spec(r) for r in reqs}


def _environment_requirements() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e") or _name(item) in ("python", "pip"):
                continue
            out.setdefault(_name(item), _spec(item))
    return out


def test_environment_yml_lists_exactly_the_pyproject_dependencies():
    assert _environment_requirements() == _pyproject_requirements()


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make run" in readme
    commands = [line.strip() for line in ci.splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert commands == ["make test"]


def test_four_notebooks_exist():
    assert [p.name for p in NOTEBOOKS][:4] == [
        "01_test_plan.ipynb", "02_implementation.ipynb",
        "03_functional_validation.ipynb", "04_backout.ipynb"]


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell.get("outputs") == [], f"{path.name} has outputs"
                assert cell.get("execution_count") is None, f"{path.name} has execution counts"


def test_each_notebook_has_one_documented_parameters_cell():
    line = re.compile(r"^[a-z_]+: [A-Za-z\[\], |]+ = .+  # .+$")
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: {len(tagged)} parameters cells"
        source = "".join(tagged[0]["source"]).strip().splitlines()
        code = [l for l in source if l.strip() and not l.startswith("#")]
        bad = [l for l in code if not line.match(l)]
        assert not bad, f"{path.name}: parameter lines not in `name: type = default  # help` form: {bad}"
        for common in ("target", "region", "profile", "endpoint_url", "run_dir"):
            assert any(l.startswith(f"{common}:") for l in code), f"{path.name} lacks {common}"
        # papermill skips a line with a second "=" (even in its help): every line must be seen
        seen = papermill.inspect_notebook(str(path))
        declared = [l.split(":", 1)[0] for l in code]
        assert list(seen) == declared, f"{path.name}: papermill does not see {set(declared) - set(seen)}"


def test_runbook_lib_never_imports_ipython():
    for path in (ROOT / "runbook_lib").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import IPython|from IPython)", text, re.M), path
