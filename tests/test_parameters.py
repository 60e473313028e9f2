"""Parameters of a headless run: typed routing, and the runner's own ones refused from -p."""

from pathlib import Path

import pytest

from runbook_lib import parameters
from runbook_lib.exceptions import InputError


def test_coerce_parameter_follows_declared_types():
    assert parameters.coerce_parameter("n", "5", {"inferred_type_name": "int"}) == 5
    assert parameters.coerce_parameter("b", "false", {"inferred_type_name": "bool"}) is False
    assert parameters.coerce_parameter("l", '["a", "b"]', {"inferred_type_name": "list"}) == ["a", "b"]
    assert parameters.coerce_parameter("l", "a,b", {"inferred_type_name": "list"}) == ["a", "b"]
    with pytest.raises(InputError, match="expects an integer"):
        parameters.coerce_parameter("n", "five", {"inferred_type_name": "int"})


@pytest.mark.parametrize("name, option", [
    ("run_dir", "--out DIR"), ("target", "--target"), ("region", "--region"), ("profile", "--profile"),
    ("endpoint_url", "--endpoint-url"), ("function_name", "--function"), ("apply", "--apply")])
def test_every_runner_owned_parameter_is_refused_naming_its_option(name, option):
    with pytest.raises(InputError) as caught:
        parameters.refuse_runner_owned({"change_ticket": "CHG-1", name: "x"})
    message = str(caught.value)
    assert message.startswith(f"-p {name}: is set by the runner") and option in message
    assert "nothing was run" in message and len(message.splitlines()) == 1


def test_other_parameters_pass():
    assert parameters.refuse_runner_owned({"change_ticket": "CHG-1", "invocations": "3"}) is None
    assert parameters.refuse_runner_owned({}) is None


def test_file_parameters_are_resolved_against_the_operators_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = parameters.resolve_path_parameters({"code_path": "build/fn.zip", "rotate_from": "~/new.json",
                                              "change_ticket": "CHG-1"})
    assert out == {"code_path": str(tmp_path / "build" / "fn.zip"),
                   "rotate_from": str(Path.home() / "new.json"), "change_ticket": "CHG-1"}
    assert parameters.resolve_path_parameters({"code_path": ""}) == {"code_path": ""}


def _parameters_notebook(path: Path, line: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(line)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_declared_parameters_are_read_again_when_the_notebook_changes(tmp_path):
    import os

    nb = _parameters_notebook(tmp_path / "n.ipynb", 'region: str = "us-east-1"  # where')
    assert list(parameters.declared_parameters(nb)) == ["region"]
    first = parameters.declared_parameters(nb)
    first.clear()  # a caller's copy: the kept answer is not changed
    assert list(parameters.declared_parameters(nb)) == ["region"]
    _parameters_notebook(nb, 'retries: int = 3  # how many')
    stat = nb.stat()
    os.utime(nb, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert list(parameters.declared_parameters(nb)) == ["retries"]
