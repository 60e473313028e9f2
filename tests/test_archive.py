"""Finishing a run folder: hostile names from AWS are text in the HTML, summary.md and CSV.

The HTML is checked twice: with a parser (no element, attribute or script came from a
name; each name is visible text) everywhere, and in headless Chromium (no payload ran,
with the page's Content-Security-Policy and without it) where Chromium is installed. A
control page with the same payloads unescaped proves the browser check can fail.
"""

import csv
import io
import json
import re
import zipfile

import nbformat
import pytest

from runbook_lib import archive, render, runner
from runbook_lib.checks import FAIL, PASS, Check, CheckLog
from runbook_lib.execution import NotebookRun
from test_render import ANSI, FORMULA, HOSTILE, IMG, PIPE, SCRIPT, assert_inert, parse

# make test runs in parallel (--dist loadgroup): the tests of the hostile run folder share one worker,
# so it is built once (tests/conftest.py groups the users of a module's own module-scoped fixture)

EXECUTED = ("<x-pwned", "<y-pwned")  # elements only a payload that ran can create


def _executed_notebook(path, hostile=HOSTILE):
    """A notebook as papermill leaves it: the checks table, a DataFrame, a print, a traceback."""
    import pandas as pd

    log = CheckLog(path.parent, "01_test_plan", "baseline")
    log.put(Check("no-secrets-in-code", "No secret in code", "baseline", FAIL, reason="found in " + ", ".join(hostile),
                  controls=["IA-5"]))
    styler, frame = log.frame(), pd.DataFrame({"where": hostile})
    cells = []
    for data in ({"text/html": styler._repr_html_(), "text/plain": "<Styler>"},
                 {"text/html": frame._repr_html_(), "text/plain": repr(frame)}):
        cell = nbformat.v4.new_code_cell("display")
        cell.outputs = [nbformat.v4.new_output("display_data", data=data)]
        cells.append(cell)
    printed = nbformat.v4.new_code_cell("print")
    printed.outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n".join(hostile) + "\n"),
                       nbformat.v4.new_output("error", ename="AwsCallError", evalue=SCRIPT,
                                              traceback=[IMG, ANSI])]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# test plan")] + cells + [printed]
    nbformat.write(nb, str(path))
    return path


def test_exported_html_is_inert_and_shows_hostile_names_as_text(tmp_path):
    page = archive.export_html(_executed_notebook(tmp_path / "01_test_plan.ipynb")).read_text()
    head = page.split("<head>", 1)[1]
    assert head.startswith('<meta http-equiv="Content-Security-Policy"')
    assert_inert(page)
    csp = [a for t, a in parse(page).tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert [a["content"] for a in csp] == [render.CONTENT_SECURITY_POLICY]


def _browser_pages(folder, page_path):
    """The exported page, the same page without its CSP, and a control page with the payloads raw."""
    page = page_path.read_text()
    without_csp = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
    assert without_csp != page
    (folder / "no-csp.html").write_text(without_csp)
    (folder / "control.html").write_text(without_csp.replace("</body>", SCRIPT + IMG + "</body>"))
    return [page_path, folder / "no-csp.html"], folder / "control.html"


def test_no_hostile_name_runs_in_a_browser(tmp_path, chromium):
    page = archive.export_html(_executed_notebook(tmp_path / "01_test_plan.ipynb"))
    pages, control = _browser_pages(tmp_path, page)
    assert all(marker in chromium(control) for marker in EXECUTED), "the browser check cannot see a payload run"
    for path in pages:
        dom = chromium(path)
        assert [m for m in EXECUTED if m in dom] == [], f"a payload ran in {path.name}"
        assert "createElement('x-'+'pwned')" in dom  # shown as text


def test_summary_md_keeps_each_row_one_row_of_text(tmp_path):
    checks = [Check("no-secrets-in-code", "No secret in | code", "baseline", FAIL,
                    reason="found in " + "; ".join(HOSTILE) + "\nsecond line", controls=["IA-5"]),
              Check("no-secret-in-artifacts", "No secret", "validation", PASS, controls=["IA-5"])]
    notebooks = [NotebookRun("01_test_plan", "failed", 1.0, f"01_test_plan cell 3: {ANSI} {PIPE}")]
    archive.write_summary(tmp_path, {"target": "lab", "region": "us-east-1", "function_name": IMG}, notebooks,
                          checks, 2, "reason with `code` and <b>html</b>")
    text = (tmp_path / "summary.md").read_text()
    assert "\x1b" not in text and re.search(r"(?<!\\)[<>`]", text) is None
    rows = [line for line in text.splitlines() if line.startswith("| no-secret")]
    assert len(rows) == 2
    for row in rows:  # seven cells: unescaped pipes only at the cell boundaries
        assert len(re.findall(r"(?<!\\)\|", row)) == 8, row
    assert "\\<script\\>" in text and "\\|b" in text and "\\x1b\\[2J" in text


def test_every_csv_of_the_folder_is_neutralised(tmp_path):
    (tmp_path / "findings.csv").write_text(f'where,line\n"{FORMULA.replace(chr(34), chr(34) * 2)}",1\n@SUM(A1),2\n')
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "extra.csv").write_text("a\n+1+cmd\n")
    (tmp_path / "inventory.csv").write_text("function,versions\norders-api,3\n")
    assert sorted(archive.neutralise_csv_files(tmp_path)) == ["checks/extra.csv", "findings.csv"]
    rows = list(csv.reader(io.StringIO((tmp_path / "findings.csv").read_text())))
    assert rows == [["where", "line"], ["'" + FORMULA, "1"], ["'@SUM(A1)", "2"]]
    assert (tmp_path / "checks" / "extra.csv").read_text() == "a\n'+1+cmd\n"


# -- the real path: names an attacker put on AWS, through the test plan notebook --------------------
MEMBERS = [SCRIPT + ".py", IMG + ".py", FORMULA + ".py", ANSI + ".py", PIPE + ".py"]


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return buf.getvalue()


@pytest.fixture(scope="module")
def hostile_audit(tmp_path_factory):
    """`runbook audit` of a lab function whose code and layer members have hostile names."""
    from runbook_lib.lab import Lab

    folder = tmp_path_factory.mktemp("hostile")
    with Lab(seed=False) as lab, pytest.MonkeyPatch.context() as patch:
        for key, value in lab.env.items():
            patch.setenv(key, value)
        iam, lam = lab.client("iam"), lab.client("lambda")
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        role = iam.create_role(RoleName="hostile-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        secret_line = 'DB_PASSWORD = "Vq3!pL8#wZ2mR7xK"\n'
        layer = lam.publish_layer_version(LayerName="hostile-layer", CompatibleRuntimes=["python3.12"], Content={
            "ZipFile": _zip({f"python/{m}": secret_line for m in MEMBERS})})["LayerVersionArn"]
        lam.create_function(FunctionName="hostile-fn", Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": _zip({"app.py": "def handler(e, c):\n    return {}\n",
                                                   **{m: secret_line for m in MEMBERS}})}, Layers=[layer])
        options = runner.RunOptions(target="lab", endpoint_url=lab.endpoint_url, region=lab.region,
                                    out=folder / "runs", apply=False, backout=False)
        outcome = runner.run_runbook(options, names=[runner.TEST_PLAN], include_baseline=True)
    assert outcome.exit_code == 1, outcome.reason
    return outcome.run_dir


@pytest.mark.lab
def test_hostile_member_names_from_aws_are_text_in_every_artifact(hostile_audit):
    run_dir = hostile_audit
    checks = {c["id"]: c for c in json.loads((run_dir / "checks.json").read_text())}
    assert all(m in checks["no-secrets-in-code"]["reason"] for m in MEMBERS), "the names did not reach a check"
    page = (run_dir / "01_test_plan.html").read_text()
    assert_inert(page, hostile=[SCRIPT, IMG, FORMULA, PIPE])
    summary = (run_dir / "summary.md").read_text()
    assert "\x1b" not in summary and re.search(r"(?<!\\)[<>]", summary) is None
    [row] = [line for line in summary.splitlines() if line.startswith("| no-secrets-in-code")]
    assert len(re.findall(r"(?<!\\)\|", row)) == 8, row
    cells = [cell for path in run_dir.glob("*.csv") for row in csv.reader(io.StringIO(path.read_text()))
             for cell in row]
    assert any(FORMULA in cell for cell in cells), "the formula name did not reach a CSV"
    assert [c for c in cells if c.startswith(render.FORMULA_PREFIXES) and not re.fullmatch(r"-?\d+", c)] == []
    assert not any("\x1b" in cell for cell in cells)


@pytest.mark.lab
def test_hostile_member_names_from_aws_do_not_run_in_a_browser(hostile_audit, chromium, tmp_path):
    pages, control = _browser_pages(tmp_path, hostile_audit / "01_test_plan.html")
    assert all(marker in chromium(control) for marker in EXECUTED)
    for path in pages:
        dom = chromium(path)
        assert [m for m in EXECUTED if m in dom] == [], f"a payload ran in {path.name}"


# -- the exit line: counts that say what they count ----------------------------------------------
def _check(check_id, phase, status, notebook="03_functional_validation"):
    return Check(check_id, "t", phase, status, reason="" if status == PASS else "why", notebook=notebook,
                 controls=["AU-2"])


def test_the_exit_line_counts_checks_in_words_and_says_the_baseline_is_left_out():
    checks = [_check("a", "validation", PASS), _check("b", "validation", "WARN"),
              _check("c", "baseline", FAIL, "01_test_plan")]
    gating = archive.gating_checks(checks, include_baseline=False)
    code, reason = archive._exit_code([NotebookRun("03_functional_validation", "ok")], gating,
                                      archive._left_out_note(checks, gating))
    assert code == 0
    assert reason == ("every check passed (2 checks: 1 PASS, 1 WARN, 0 SKIP); 1 baseline check of the test plan "
                      "not counted (the account before the change)")


def test_one_failed_check_is_one_check_and_nothing_is_said_left_out_when_nothing_is():
    checks = [_check("a", "validation", FAIL), _check("b", "validation", PASS)]
    code, reason = archive._exit_code([], checks, archive._left_out_note(checks, checks))
    assert (code, reason) == (1, "1 check of 2 failed: a (03_functional_validation)")


def test_an_audit_of_several_accounts_and_regions_names_each_in_the_summary(tmp_path):
    (tmp_path / "coverage.json").write_text(json.dumps({"regions": [
        {"account": "111111111111", "region": "us-east-1"}, {"account": "111111111111", "region": "eu-west-1"},
        {"account": "222222222222", "region": "us-east-1"}]}))
    archive.write_summary(tmp_path, {"target": "aws", "region": "us-east-1"}, [], [], 0, "ok")
    text = (tmp_path / "summary.md").read_text()
    assert ("- audited: 2 accounts (111111111111, 222222222222), 2 regions (eu-west-1, us-east-1)" in text)
    assert "- region:" not in text


def test_a_one_region_run_names_its_region(tmp_path):
    (tmp_path / "coverage.json").write_text(json.dumps({"regions": [{"account": "1", "region": "us-east-1"}]}))
    archive.write_summary(tmp_path, {"target": "lab", "region": "us-east-1"}, [], [], 0, "ok")
    assert "- region: us-east-1" in (tmp_path / "summary.md").read_text()
    (tmp_path / "coverage.json").write_text("not json")
    assert archive.audited_scope(tmp_path) == []


def test_a_failed_overlapped_export_is_reported_and_the_manifest_covers_what_exists(tmp_path, capsys):
    from runbook_lib.manifest import MANIFEST_FILE, verify_run
    from runbook_lib.signing import load_signing_key

    run_dir = tmp_path / "20261201T120000Z-lab"
    run_dir.mkdir()
    _executed_notebook(run_dir / "01_test_plan.ipynb")
    (run_dir / "02_implementation.ipynb").write_text('{"cells": [')  # the kernel died mid-write
    _executed_notebook(run_dir / "03_functional_validation.ipynb")
    notebooks = [NotebookRun("01_test_plan", "ok"), NotebookRun("02_implementation", "failed", error="died"),
                 NotebookRun("03_functional_validation", "skipped")]
    key = load_signing_key()
    with archive.HtmlExports() as exports:
        exports.submit(run_dir / "01_test_plan.ipynb")  # while the next notebook ran
        exports.submit(run_dir / "02_implementation.ipynb")
        outcome = archive.finish_run(run_dir, {"target": "lab", "region": "us-east-1"}, notebooks, False,
                                     "2026-12-01T12:00:00Z", key, exports=exports)
    err = capsys.readouterr().err
    assert "02_implementation: HTML export failed (" in err
    assert (run_dir / "01_test_plan.html").is_file() and (run_dir / "03_functional_validation.html").is_file()
    assert not (run_dir / "02_implementation.html").exists()
    listed = json.loads((run_dir / MANIFEST_FILE).read_text())["files"]
    names = {f["path"] for f in listed}
    assert {"01_test_plan.html", "03_functional_validation.html", "02_implementation.ipynb", "summary.md",
            "run.json", "checks.json"} <= names
    assert verify_run(run_dir, {key.public.fingerprint}).ok
    assert outcome.exit_code == 2 and outcome.run_dir == run_dir


def test_an_export_is_queued_once_and_links_and_missing_files_are_not_exported(tmp_path):
    page = _executed_notebook(tmp_path / "01_test_plan.ipynb")
    (tmp_path / "02_link.ipynb").symlink_to(page)
    with archive.HtmlExports() as exports:
        for path in (page, page, tmp_path / "02_link.ipynb", tmp_path / "04_missing.ipynb"):
            exports.submit(path)
        assert list(exports.pending) == [page]
        assert exports.wait() == []
    assert (tmp_path / "01_test_plan.html").is_file() and not (tmp_path / "02_link.html").exists()


def test_the_leak_guard_built_ahead_in_the_worker_still_finds_a_planted_secret(tmp_path):
    planted = "ghp_" + "Zq8vK2mW4xR7tY1uI3oP5aS6dF9gH0jL2kN4"
    (tmp_path / "notes.txt").write_text(f"token = {planted}\n")
    with archive.HtmlExports() as exports:
        check = archive.guard_against_leaks(tmp_path, None, exports.leak_scanner())
    assert check.status == FAIL and check.evidence["detection_engine"] is True
    assert "notes.txt:1" in check.reason and planted not in json.dumps(check.evidence) + check.reason


def test_an_export_queued_with_a_relative_path_is_written_after_the_working_directory_changed(tmp_path, monkeypatch):
    # `runbook run --out runs` gives relative run folders; papermill chdirs to the kernel's folder meanwhile
    (tmp_path / "runs").mkdir()
    elsewhere = tmp_path / "kernel-cwd"
    elsewhere.mkdir()
    _executed_notebook(tmp_path / "runs" / "01_test_plan.ipynb")
    monkeypatch.chdir(tmp_path)
    with archive.HtmlExports() as exports:
        exports.submit(archive.Path("runs/01_test_plan.ipynb"))
        assert list(exports.pending) == [tmp_path / "runs" / "01_test_plan.ipynb"]
        monkeypatch.chdir(elsewhere)
        assert exports.wait() == []
    assert (tmp_path / "runs" / "01_test_plan.html").is_file() and not any(elsewhere.iterdir())


def test_each_thread_keeps_one_exporter_whose_pages_match_a_fresh_exporters(tmp_path):
    import threading

    from nbconvert import HTMLExporter

    first = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {HOSTILE}"),
                                            nbformat.v4.new_code_cell("print('a')", outputs=[
                                                nbformat.v4.new_output("stream", text=f"{SCRIPT}\n")])])
    second = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    paths = []
    for name, nb in (("first", first), ("second", second)):
        nbformat.write(nb, str(tmp_path / f"{name}.ipynb"))
        paths.append(tmp_path / f"{name}.ipynb")
    archive._warm_exporter()
    exporter = archive.html_exporter()
    pages = [archive.export_html(p).read_text() for p in paths]
    assert archive.html_exporter() is exporter  # built once: its templates compile once
    fresh = [archive.inert_html_document(HTMLExporter(extra_template_basedirs=[]).from_notebook_node(nb)[0])
             for nb in (first, second)]
    assert pages == fresh  # nothing of one page (or of the warm-up page) carries into the next
    others = []
    worker = threading.Thread(target=lambda: others.append(archive.html_exporter()))
    worker.start()
    worker.join()
    assert others[0] is not exporter  # HtmlExports' worker and the main thread never share one
