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

# make test runs in parallel (--dist loadgroup): the tests of the module's full_cycle share one worker, so
# the cycle runs once (tests/conftest.py groups them); the backout test makes its own run on another worker
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


@pytest.fixture(scope="module")
def full_cycle(lab, tmp_path_factory):
    """One whole `runbook run` on the lab: (outcome, the folder that held the runs)."""
    out = tmp_path_factory.mktemp("cycle")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in lab.env.items():
            patch.setenv(key, value)
        # a lab the runner did not start: its seed cannot tell the runner the demo's strategy, so the test does
        options = runner.RunOptions(target="lab", endpoint_url=lab.endpoint_url, region=lab.region,
                                    function_name="orders-api", out=out / "runs",
                                    parameters={"strategy": "reference"})
        yield runner.run_runbook(options), out


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


def test_full_cycle_on_the_lab(lab, full_cycle):
    values = planted_values(lab)
    outcome, tmp_path = full_cycle
    run_dir = outcome.run_dir

    assert outcome.exit_code == 0, outcome.reason
    for stem in ("01_test_plan", "02_implementation", "03_functional_validation", "04_backout"):
        assert (run_dir / f"{stem}.ipynb").is_file() and (run_dir / f"{stem}.html").is_file()
    for name in ("checks.json", "summary.md", "manifest.json", "ledger.json", "findings.json",
                 "checks.ocsf.json", "checks.asff.json", "checks.junit.xml"):
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
                                    function_name="orders-api", out=tmp_path / "runs", backout=False,
                                    parameters={"strategy": "reference"})  # the demo's, as `make run` passes it
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


#: Runs after the page loaded (in a copy without the page's script-forbidding policy): lists every
#: element whose content is clipped or scrolled sideways out of view, and a page wider than the window.
OVERFLOW_PROBE = """<script>
window.addEventListener('load', () => {
  const clipped = [];
  document.querySelectorAll('body *').forEach(el => {
    const style = getComputedStyle(el);
    if (el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'visible' && el.clientWidth > 0)
      clipped.push(el.tagName + '.' + el.className + ': ' + el.textContent.trim().slice(0, 120));
  });
  if (document.documentElement.scrollWidth > window.innerWidth + 1) clipped.push('page wider than the window');
  const mark = document.createElement('pre');
  mark.id = 'overflow-probe';
  mark.textContent = JSON.stringify(clipped);
  document.body.appendChild(mark);
});
</script>"""


def _cut_cells(dom: str) -> list[str]:
    """Text of table cells and outputs that ends in pandas' ``...`` or holds an ellipsis that is not a redaction."""
    import html as html_lib
    import re

    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>|<pre[^>]*>(.*?)</pre>", dom, flags=re.S)
    texts = [html_lib.unescape(re.sub(r"<[^>]+>", "", a or b)).strip() for a, b in cells]
    return [t for t in texts if t.endswith("...") or re.search(r"…(?!\(\d+\))", t)]


def test_every_exported_page_shows_its_text_whole_in_chromium(full_cycle, chromium, tmp_path):
    """Screenshots and DOMs of each exported HTML: nothing cut, nothing clipped, the full CloudTrail identity."""
    import re
    import shutil
    import subprocess

    outcome, _ = full_cycle
    binary = next(filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))))
    pages = sorted(outcome.run_dir.glob("*.html"))
    assert [p.stem for p in pages] == ["01_test_plan", "02_implementation", "03_functional_validation", "04_backout"]
    doms = {}
    for page in pages:
        dom = doms[page.stem] = chromium(page)
        assert _cut_cells(dom) == [], f"{page.name}: truncated text"
        assert "<Figure size" not in dom and "TqdmWarning" not in dom, page.name
        probed = tmp_path / page.name
        text = page.read_text()
        text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text, count=1)
        probed.write_text(text.replace("</body>", OVERFLOW_PROBE + "</body>"))
        done = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1280,4000",
             f"--user-data-dir={tmp_path / ('profile-' + page.stem)}", "--virtual-time-budget=5000",
             "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=180)
        marks = re.search(r'<pre id="overflow-probe">(.*?)</pre>', done.stdout, flags=re.S)
        assert marks is not None, done.stderr[-2000:]
        import html as html_lib

        assert json.loads(html_lib.unescape(marks.group(1))) == [], f"{page.name}: text clipped from view"
        shot = tmp_path / f"{page.stem}.png"
        subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--window-size=1280,4000", f"--user-data-dir={tmp_path / ('shot-' + page.stem)}",
                        f"--screenshot={shot}", page.resolve().as_uri()], capture_output=True, timeout=180)
        assert shot.read_bytes().startswith(b"\x89PNG"), f"{page.name}: no screenshot"
    validation = doms["03_functional_validation"]  # the DOMs Chromium made of the pages above
    cells = re.findall(r"<td[^>]*>(.*?)</td>", validation, flags=re.S)
    assert any("assumed-role/orders-api-role/orders-api" in c and "from Lambda" not in c for c in cells), (
        "the CloudTrail table does not show the full identity")
    plan = doms["01_test_plan"]
    assert re.search(r'<img[^>]+src="data:image/png;base64,', plan), "the findings chart is not an image"


def test_the_exports_of_a_lab_run_meet_their_formats(full_cycle):
    from export_formats import assert_exports

    outcome, _ = full_cycle
    checks = json.loads((outcome.run_dir / "checks.json").read_text())
    cases = assert_exports(outcome.run_dir, checks)
    assert all(c["summary"] for c in checks)
    assert cases["baseline/no-secrets-in-environment"].find("failure") is None  # describes the before
    least = next(c for c in checks if c["id"] == "least-privilege")
    assert "proven by" in least["summary"]
