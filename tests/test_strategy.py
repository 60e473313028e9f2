"""Choosing a function's code strategy, and refusing in one line what no strategy can change."""

import pytest

from runbook_lib.exceptions import InputError
from runbook_lib.implementation import strategy as S


def config(runtime="python3.12", package="Zip"):
    return {"FunctionName": "f", "Runtime": runtime, "PackageType": package}


@pytest.mark.parametrize("runtime", ["python3.9", "python3.13", "nodejs18.x", "nodejs20.x", "nodejs22.x"])
def test_auto_picks_the_wrapper_on_managed_python_and_node_runtimes(runtime):
    chosen = S.choose(config(runtime))
    assert chosen.name == "wrapper" and not chosen.changes_code
    assert chosen.describe().startswith("strategy wrapper: ") and "no code change" in chosen.describe()


def test_code_path_means_package_and_reference_only_by_name():
    assert S.choose(config("nodejs20.x"), has_code=True).name == "package"
    assert S.choose(config("provided.al2023"), "package", has_code=True).changes
    assert S.choose(config(), "reference").name == "reference"
    assert S.choose(config(), "wrapper").why == "asked for by name"


@pytest.mark.parametrize("cfg, kwargs, words", [
    (config(package="Image"), {}, "container image"),
    (config("provided.al2023"), {}, "OS-only runtime"),
    (config("java21"), {}, "no fetcher for java21"),
    (config("ruby3.3"), {}, "no fetcher for ruby3.3"),
    (config("nodejs16.x"), {}, "SDK for JavaScript v2 only"),
    (config(), {"edge_mode": True}, "Lambda@Edge"),
    (config("nodejs20.x"), {"requested": "reference"}, "reference handler is Python"),
    (config(), {"requested": "package"}, "pass code_path"),
    (config(), {"requested": "wrapper", "has_code": True}, "drop code_path"),
    (config(), {"requested": "magic"}, "is not one of"),
])
def test_what_no_strategy_can_change_is_one_line_naming_what_applies(cfg, kwargs, words):
    with pytest.raises(InputError) as raised:
        S.choose(cfg, **kwargs)
    message = str(raised.value)
    assert words in message and "\n" not in message
    if "is not one of" not in message:
        assert "nothing was changed" in message


def test_families_and_wrapper_problems():
    assert [S.family(r) for r in ("python3.12", "nodejs20.x", "provided.al2", "dotnet8", "")] == [
        "python", "nodejs", "provided", "dotnet", "unknown"]
    assert S.wrapper_problem("python3.12") == S.wrapper_problem("nodejs18.x") == ""
