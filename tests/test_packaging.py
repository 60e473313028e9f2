"""The project's packaging stays coherent: environment.yml <-> pyproject, clean notebooks."""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import papermill
import pytest
import yaml

# make test runs in parallel (--dist loadgroup): the tests of the built wheel share one worker, so it is
# built once (tests/conftest.py groups the users of a module's own module-scoped fixture)

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


# -- the built package ------------------------------------------------------------------------
#: What never goes into the sdist's copy of the tree nor the wheel.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".venv*", ".cache", ".ipynb_checkpoints")


def _build(*args: str, cwd: Path) -> None:
    code = "import sys; from setuptools import build_meta as b; print(getattr(b, sys.argv[1])(sys.argv[2]))"
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """``(sdist, wheel)`` built as ``python -m build`` builds them: the sdist from the tree, the wheel from the sdist."""
    work = tmp_path_factory.mktemp("build")
    tree = work / "tree"
    shutil.copytree(ROOT, tree, ignore=_NOT_SOURCE, symlinks=True)
    _build("build_sdist", str(work / "dist"), cwd=tree)
    (sdist,) = (work / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "unpacked", filter="data")
    (unpacked,) = (work / "unpacked").iterdir()
    _build("build_wheel", str(work / "dist"), cwd=unpacked)
    (wheel,) = (work / "dist").glob("*.whl")
    return sdist, wheel


def _package_files() -> set[str]:
    """Every file of ``runbook_lib/`` in the tree (modules and data), as ``runbook_lib/...``."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "runbook_lib").rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_the_wheel_ships_the_notebooks_policies_handlers_and_lab_files(built):
    names = set(zipfile.ZipFile(built[1]).namelist())
    notebooks = {f"runbook_lib/notebooks/{p.name}" for p in NOTEBOOKS}
    policies = {f"runbook_lib/policies/{p.name}" for p in (ROOT / "policies").glob("*.json")}
    assert len(notebooks) == 5 and len(policies) >= 2
    assert notebooks | policies <= names, sorted((notebooks | policies) - names)
    assert _package_files() <= names, f"not in the wheel: {sorted(_package_files() - names)}"
    for shipped in ("runbook_lib/handlers/reference_handler.py", "runbook_lib/lab/node_bootstrap.mjs",
                    "runbook_lib/lab/python_bootstrap.py", "runbook_lib/lab/sdk/package-lock.json",
                    "runbook_lib/lab/sdk/python-requirements.txt"):
        assert shipped in names
    for name in notebooks:  # the shipped notebook is the committed one, byte for byte
        assert zipfile.ZipFile(built[1]).read(name) == (ROOT / "notebooks" / Path(name).name).read_bytes()


def test_the_wheel_holds_nothing_but_the_package_and_its_metadata(built):
    names = zipfile.ZipFile(built[1]).namelist()
    stray = [n for n in names if not n.startswith(("runbook_lib/", "lambda_secrets_runbook-"))]
    assert not stray, stray
    assert not [n for n in names if re.search(r"(^|/)(tests|benchmarks|runs|__pycache__)/|\.pyc$|^setup\.py$", n)]
    assert "runbook = runbook_lib.quick_exit:console_main" in zipfile.ZipFile(built[1]).read(
        "lambda_secrets_runbook-0.1.0.dist-info/entry_points.txt").decode()


def test_the_sdist_holds_the_top_level_folders_and_no_tests(built):
    with tarfile.open(built[0]) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {f"notebooks/{p.name}" for p in NOTEBOOKS} <= names
    assert {"policies/auditor.json", "policies/implementer.json", "setup.py", "pyproject.toml"} <= names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "runs/"))]


def test_package_data_globs_each_match_a_file():
    """A glob naming a folder that does not exist ships nothing and says nothing: each must match."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["runbook_lib"]
    assert globs
    for pattern in globs:
        assert list((ROOT / "runbook_lib").glob(pattern)), f"package-data {pattern!r} matches no file"


@pytest.mark.slow
def test_the_installed_wheel_runs_the_lab_cycle_from_any_folder(built, tmp_path):
    """``pip install`` of the wheel in a fresh venv, then ``runbook run --target lab`` from another folder.

    Offline: the dependencies are this environment's, seen through a plain path entry (so its
    ``.pth`` files, the editable install of this checkout among them, are not processed); the
    lab's runtime SDKs are this environment's (``RUNBOOK_LAB_RUNTIMES``), as ``runbook lab-runtimes``
    would install them.
    """
    import sysconfig

    from runbook_lib.lab.runtimes import runtimes_home

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                                "--no-deps", "--no-index", str(built[1])], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RUNBOOK_NOTEBOOKS", "AWS_ENDPOINT_URL")}
    env["RUNBOOK_LAB_RUNTIMES"] = str(runtimes_home())
    # nbconvert's templates are data files of this environment (share/jupyter), not importable code
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(Path(sys.prefix) / "share" / "jupyter"),
                                                       env.get("JUPYTER_PATH")) if p)
    where = subprocess.run([str(python), "-c", "import runbook_lib.resources as r; print(r.notebooks_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where) == site / "runbook_lib" / "notebooks", "the notebooks did not come from the installed wheel"
    run = subprocess.run([str(venv / "bin" / "runbook"), "-q", "run", "--target", "lab"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert run.stdout.startswith("runbook: every check passed") and run.stderr == ""
    [run_dir] = (elsewhere / "runs").iterdir()
    assert {f"{n}.html" for n in ("01_test_plan", "02_implementation", "03_functional_validation", "04_backout")} <= {
        p.name for p in run_dir.iterdir()}
