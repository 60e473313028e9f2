"""Where the shipped notebooks and policies are (runbook_lib.resources): the package's, else the checkout's."""

from pathlib import Path

import pytest

from runbook_lib import resources
from runbook_lib.exceptions import InputError

CHECKOUT = Path(resources.__file__).resolve().parents[1]


def test_in_a_checkout_the_top_level_folders_are_found():
    assert resources.notebooks_dir() == CHECKOUT / "notebooks"
    assert resources.policies_dir() == CHECKOUT / "policies"


def test_an_installed_package_s_own_copy_comes_first(tmp_path, monkeypatch):
    package = tmp_path / "runbook_lib"
    (package / "notebooks").mkdir(parents=True)
    monkeypatch.setattr(resources.resources, "files", lambda name: package)
    assert resources.shipped_folder("notebooks") == package / "notebooks"
    assert resources.shipped_folder("policies") == CHECKOUT / "policies"  # not in the package: the checkout's


def test_runbook_notebooks_points_the_runner_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv(resources.NOTEBOOKS_ENV, str(tmp_path))
    assert resources.notebooks_dir() == tmp_path
    error = resources.missing_file("notebooks", tmp_path / "01_test_plan.ipynb")
    assert str(error) == f"notebooks: missing {tmp_path / '01_test_plan.ipynb'}: put it there or unset RUNBOOK_NOTEBOOKS"


def test_a_missing_shipped_file_says_to_reinstall(tmp_path):
    error = resources.missing_file("part", tmp_path / "auditor.json")
    assert isinstance(error, InputError) and "reinstall it (pip install --force-reinstall)" in str(error)


def test_an_unknown_folder_is_refused():
    with pytest.raises(InputError, match="'tests' is not one of notebooks, policies"):
        resources.shipped_folder("tests")
