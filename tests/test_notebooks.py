"""All four notebooks executed through papermill against the embedded lab.

One seeded lab for the module; the runner is pointed at it (as `runbook run
--endpoint-url` would be) so the test can read the planted secret values from the
lab first and then search every artifact of the run for them.
"""

import getpass
import io
import json
import sys
import zipfile
from pathlib import Path
from urllib.request import urlopen

import pytest

from runbook_lib import runner
from runbook_lib.lab import Lab
from runbook_lib.manifest import verify_manifest

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def lab():
    with Lab(seed=True) as running:
        yield running


def planted_values(lab) -> list[str]:
    """Every seeded secret value: env vars, hardcoded keys in code, the layer's token."""
    lam = lab.client("lambda")
    fn = lam.get_function(FunctionName="orders-api")
    env = fn["Configuration"]["Environment"]["Variables"]
    values = [env["PARTNER_API_KEY"], env["DB_PASSWORD"]]
    code = zipfile.ZipFile(io.BytesIO(urlopen(fn["Code"]["Location"]).read()))
    source = code.read("app.py").decode()
    iam = lab.client("iam")
    for key in iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"]:
        values.append(key["AccessKeyId"])
    layer = lam.get_layer_version_by_arn(Arn=fn["Configuration"]["Layers"][0]["Arn"])
    layer_zip = zipfile.ZipFile(io.BytesIO(urlopen(layer["Content"]["Location"]).read()))
    values.append(json.loads(layer_zip.read("python/shared_config.json"))["service_token"])
    assert all(bool(v) and v in source for v in values[2:3]), "seeded access key id not in code"
    return values


def leaks(run_dir, values) -> list[str]:
    """Names of artifacts holding any planted value (names only: values never printed)."""
    hits = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.name}#{i}" for i, v in enumerate(values) if v.encode() in data]
    return hits


def machine_names(run_dir: Path, *more: Path) -> list[str]:
    """``artifact: what`` for every artifact of the folder naming the home folder, the checkout, the Python
    installation, the working directory or the user (every file, binary ones included)."""
    machine = {"home": str(Path.home()) + "/", "checkout": str(Path(runner.__file__).resolve().parents[1]),
               "python": sys.prefix, "working directory": str(Path.cwd()), "user": f"/{getpass.getuser()}/",
               **{f"folder {i}": str(p) for i, p in enumerate(more)}}
    hits = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits += [f"{path.relative_to(run_dir)}: {what}" for what, text in machine.items() if text.encode() in data]
    return hits


def test_full_cycle_on_the_lab(lab, tmp_path, monkeypatch):
    values = planted_values(lab)
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    options = runner.RunOptions(target="lab", endpoint_url=lab.endpoint_url, region=lab.region,
                                function_name="orders-api", out=tmp_path / "runs")
    outcome = runner.run_runbook(options)
    run_dir = outcome.run_dir

    assert outcome.exit_code == 0, outcome.reason
    for stem in ("01_test_plan", "02_implementation", "03_functional_validation", "04_backout"):
        assert (run_dir / f"{stem}.ipynb").is_file() and (run_dir / f"{stem}.html").is_file()
    for name in ("checks.json", "summary.md", "manifest.json", "ledger.json", "findings.json"):
        assert (run_dir / name).is_file(), name
    assert verify_manifest(run_dir) == []

    checks = {(c["phase"], c["id"]): c for c in json.loads((run_dir / "checks.json").read_text())}
    # the baseline found the secrets; after the change, validation finds none
    assert checks[("baseline", "no-secrets-in-environment")]["status"] == "FAIL"
    assert checks[("validation", "no-secrets-in-environment")]["status"] == "PASS"
    assert checks[("validation", "cloudtrail-attribution")]["status"] == "PASS"
    assert checks[("backout", "function-restored")]["status"] == "PASS"
    # every check of a real run is declared once in the catalog, and carries exactly its metadata
    from runbook_lib import catalog

    declared = {s.id: s for s in catalog.specs()}
    for (phase, check_id), check in checks.items():
        spec = declared.get(check_id)
        assert spec is not None, f"{check_id} is in checks.json but not in the catalog"
        assert (check["title"], check["controls"]) == (spec.title, list(spec.controls)), check_id
        assert phase in spec.phases, f"{check_id} ran in {phase}, declared for {spec.phases}"

    assert leaks(run_dir, values) == [], "a planted secret value reached an artifact"
    # papermill hygiene: no credentials anywhere, no absolute path or user name in the notebooks
    credentials = [lab.env["AWS_SECRET_ACCESS_KEY"], lab.env["AWS_ACCESS_KEY_ID"]]
    assert leaks(run_dir, credentials) == [], "the lab's credentials reached an artifact"
    assert machine_names(run_dir, tmp_path) == [], "an artifact names this machine (path or user)"
    for notebook in run_dir.glob("*.ipynb"):
        papermill_meta = json.loads(notebook.read_text())["metadata"]["papermill"]
        assert papermill_meta["input_path"] == notebook.name and papermill_meta["output_path"] == notebook.name


def test_backout_later_from_the_archived_run_folder(tmp_path, monkeypatch):
    """`runbook backout RUN_DIR` on a run that kept its change: same folder, refreshed artifacts."""
    from runbook_lib import cli

    with Lab(seed=True) as own:
        for key, value in own.env.items():
            monkeypatch.setenv(key, value)
        options = runner.RunOptions(target="lab", endpoint_url=own.endpoint_url, region=own.region,
                                    function_name="orders-api", out=tmp_path / "runs", backout=False)
        kept = runner.run_runbook(options)
        assert kept.exit_code == 0, kept.reason
        run_dir = kept.run_dir
        assert not (run_dir / "04_backout.ipynb").exists()
        assert "SECRET_ID" in own.client("lambda").get_function_configuration(
            FunctionName="orders-api")["Environment"]["Variables"]

        code = cli.main(["backout", str(run_dir), "--endpoint-url", own.endpoint_url, "--apply",
                         "-p", "change_ticket", "CHG-BACKOUT"])
        assert code == 0
        variables = own.client("lambda").get_function_configuration(FunctionName="orders-api")["Environment"]
        assert sorted(variables["Variables"]) == ["DB_PASSWORD", "LOG_LEVEL", "PARTNER_API_KEY",
                                                  "PARTNER_API_URL", "TABLE_NAME"]
    checks = {(c["phase"], c["id"]): c["status"] for c in json.loads((run_dir / "checks.json").read_text())}
    assert checks[("backout", "function-restored")] == "PASS"
    assert checks[("validation", "cloudtrail-attribution")] == "PASS"  # the earlier checks are kept
    assert "| 04_backout | ok |" in (run_dir / "summary.md").read_text()
    assert (run_dir / "04_backout.html").is_file()
    assert verify_manifest(run_dir) == []
