"""Close-out: moto in-process for the steps and refusals, the seeded lab for the done-when scenarios."""

import json
import secrets
import time
import urllib.request

import pytest

from runbook_lib import functions
from runbook_lib.backout import Backout
from runbook_lib.closeout import Closeout, read_rotation_file
from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.implementation import Implementation
from runbook_lib.ledger import Ledger
from runbook_lib.records import Closeout as CloseoutRecord
from runbook_lib.records import Rotation
from runbook_lib.session import Target
from moto_world import FUNCTION


def contains_any(text: str, values) -> bool:
    """True when ``text`` holds one of ``values`` (a bool, so a failed assert prints no value)."""
    return any(v and v in text for v in values)


def run_folder_text(folder) -> str:
    return "\n".join(p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file())


# -- moto in-process ------------------------------------------------------------------------------
def implement(world, target=None):
    Implementation(target or world.target, world.ledger, function_name=FUNCTION, change_ticket="CHG-1",
                   apply=True, fingerprinter=world.fingerprinter, strategy="reference").apply()


def closeout(world, target=None, **kw):
    kw.setdefault("change_ticket", "CHG-CLOSE")
    return Closeout(target or world.target, world.ledger, fingerprinter=world.fingerprinter, **kw)


def versions(world):
    return [v["Version"] for v in world.client("lambda").list_versions_by_function(FunctionName=FUNCTION)["Versions"]
            if v["Version"] != "$LATEST"]


def test_rotation_file_errors_name_the_problem_never_a_value(tmp_path):
    value = "pk_" + secrets.token_urlsafe(20)
    broken = tmp_path / "broken.json"
    broken.write_text('{"PARTNER_API_KEY": "' + value)
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"OTHER": value}))
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"PARTNER_API_KEY": ""}))
    messages = []
    for path in (tmp_path / "missing.json", broken, unknown, empty):
        with pytest.raises(InputError) as err:
            read_rotation_file(str(path), ["PARTNER_API_KEY", "DB_PASSWORD"])
        messages.append(str(err.value))
    assert "does not exist" in messages[0] and "not valid JSON" in messages[1]
    assert "names OTHER" in messages[2] and "non-empty string" in messages[3]
    assert contains_any(" ".join(messages), [value]) is False
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"PARTNER_API_KEY": value}))
    loaded = read_rotation_file(str(good), ["PARTNER_API_KEY"])
    assert contains_any(repr(loaded) + str(loaded), [value]) is False and bool(loaded) is True


def test_refusals_before_any_change(world):
    with pytest.raises(InputError, match="names no function"):
        closeout(world)
    with pytest.raises(InputError, match="no applied implementation"):
        closeout(world, function_name=FUNCTION)
    implement(world)
    with pytest.raises(InputError, match="change_ticket"):
        Closeout(world.target, world.ledger, apply=True)
    Backout(world.target, world.ledger, change_ticket="CHG-B", apply=True).apply()
    with pytest.raises(InputError, match="backed out"):
        closeout(world)


def test_closeout_deletes_snapshot_and_old_versions_then_backout_refuses(world):
    lam = world.client("lambda")
    functions.update_configuration(lam, FUNCTION, variables=dict(world.env, LOG_LEVEL="DEBUG"))
    old = lam.publish_version(FunctionName=FUNCTION)["Version"]
    functions.update_configuration(lam, FUNCTION, variables=world.env)
    implement(world)
    snapshot = world.ledger.snapshot(FUNCTION).version
    clean = lam.publish_version(FunctionName=FUNCTION)["Version"]  # after the change: no value in it
    plan = closeout(world).plan()
    deletes = sorted(r.resource for r in plan if r.action == "delete")
    assert deletes == [f"{FUNCTION}:{old}", f"{FUNCTION}:{snapshot}"]
    assert versions(world) == [old, snapshot, clean], "a plan changes nothing"

    closing = closeout(world, apply=True)
    results = closing.apply()
    assert [r.status for r in results] == ["unchanged", "unchanged", "applied"]
    assert versions(world) == [clean]
    record = world.ledger.latest(CloseoutRecord, FUNCTION)
    assert record.status == "complete" and record.deleted_versions == sorted([old, snapshot])
    checks = {c.id: c for c in closing.checks()}
    assert checks["no-secret-residue"].status == "PASS" and checks["closeout-versions"].status == "PASS"
    assert checks["exposed-credentials-rotated"].status == "WARN"
    assert "PARTNER_API_KEY" in checks["exposed-credentials-rotated"].reason

    with pytest.raises(ChangeRefused) as err:
        Backout(world.target, world.ledger, change_ticket="CHG-B")
    message = str(err.value)
    assert "closed out" in message and f"snapshot (version {snapshot}) is deleted" in message
    assert "\n" not in message
    assert {r.action for r in closeout(world).plan()} == {"none"}, "a second close-out has nothing to do"
    text = run_folder_text(world.run_dir) + repr(plan) + repr(results) + repr(closing.checks())
    assert contains_any(text, [world.env["PARTNER_API_KEY"], world.env["DB_PASSWORD"]]) is False


def test_alias_on_an_old_version_blocks_with_an_explanation(world):
    lam = world.client("lambda")
    functions.update_configuration(lam, FUNCTION, variables=dict(world.env, LOG_LEVEL="DEBUG"))
    old = lam.publish_version(FunctionName=FUNCTION)["Version"]
    functions.update_configuration(lam, FUNCTION, variables=world.env)
    lam.create_alias(FunctionName=FUNCTION, Name="prod", FunctionVersion=old)
    implement(world)
    [blocked] = [r for r in closeout(world).plan() if r.action == "blocked"]
    assert blocked.resource == f"{FUNCTION}:{old}"
    assert "alias(es) prod point to version" in blocked.reason and "update-alias" in blocked.reason
    with pytest.raises(ChangeRefused, match="nothing was changed"):
        closeout(world, apply=True).apply()
    assert old in versions(world) and world.ledger.latest(CloseoutRecord, FUNCTION) is None
    Backout(world.target, world.ledger)  # the snapshot is still there: backout stays possible


def test_rotation_puts_a_new_secret_version_without_writing_a_value(world, tmp_path):
    implement(world)
    sm = world.client("secretsmanager")
    arn = world.ledger.secret().resource
    new = {"PARTNER_API_KEY": "pk_" + secrets.token_urlsafe(24), "DB_PASSWORD": secrets.token_urlsafe(18)}
    values_file = tmp_path / "new-values.json"
    values_file.write_text(json.dumps(new))
    closing = closeout(world, apply=True, rotate_from=str(values_file))
    [row] = [r for r in closing.plan() if r.step == "rotate"]
    assert row.action == "update" and "DB_PASSWORD, PARTNER_API_KEY" in row.reason
    closing.apply()
    current = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    previous = json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")["SecretString"])
    assert bool(current == new) is True
    assert bool(previous == {k: world.env[k] for k in new}) is True
    assert world.ledger.latest(Rotation, arn).variables == ["DB_PASSWORD", "PARTNER_API_KEY"]
    assert {c.id: c.status for c in closing.checks()}["exposed-credentials-rotated"] == "PASS"
    text = run_folder_text(world.run_dir) + repr(closing.plan()) + repr(closing.checks())
    assert contains_any(text, list(new.values()) + list(world.env.values())[:2]) is False
    again = closeout(world, rotate_from=str(values_file)).plan()
    assert [r.action for r in again if r.step == "rotate"] == ["none"], "the same file again is a no-op"


def test_hardcoded_key_owner_shown_and_deactivated_on_aws(world):
    """On AWS the implementation only lists the key; close-out with apply deactivates it."""
    aws = Target("aws", world.target.region, session=world.target.session)
    implement(world, target=aws)
    iam = world.client("iam")
    assert [k["Status"] for k in iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"]] == ["Active"]
    closing = closeout(world, target=aws, apply=True)
    [row] = [r for r in closing.plan() if r.step == "access-keys"]
    assert row.action == "update" and "owner orders-legacy-ci (account 123456789012)" in row.reason
    owners = closing.owners_frame()
    assert list(owners["user"]) == ["orders-legacy-ci"] and list(owners["account"]) == ["123456789012"]
    closing.apply()
    assert [k["Status"] for k in iam.list_access_keys(UserName="orders-legacy-ci")["AccessKeyMetadata"]] == ["Inactive"]
    assert [k["Status"] for k in iam.list_access_keys(UserName="someone-else")["AccessKeyMetadata"]] == ["Active"]
    assert contains_any(run_folder_text(world.run_dir) + repr(closing.plan()), [world.key_id]) is False


# -- the seeded lab: the done-when scenarios ------------------------------------------------
LEGACY_COPY, NOTEBOOK_COPY = "orders-api-legacy", "orders-api-notebook"


@pytest.fixture(scope="module")
def closeout_lab():
    """A seeded lab of this module's own: these tests change the baseline."""
    from runbook_lib.lab import Lab
    with Lab(seed=True) as running:
        for copy in (LEGACY_COPY, NOTEBOOK_COPY):  # made first, while the seeded function still holds its secrets
            copy_function(running, running.seed_info["function_name"], copy)
        yield running


def lab_target(lab):
    return Target.from_parameters("lab", region=lab.region, endpoint_url=lab.endpoint_url, session=lab.session())


def copy_function(lab, source: str, name: str) -> None:
    """A second function with the seeded one's code and configuration (secrets included)."""
    lam = lab.client("lambda")
    got = lam.get_function(FunctionName=source)
    with urllib.request.urlopen(got["Code"]["Location"]) as response:  # noqa: S310 - lab loopback
        code = response.read()
    config = got["Configuration"]
    lam.create_function(FunctionName=name, Runtime=config["Runtime"], Role=config["Role"],
                        Handler=config["Handler"], Code={"ZipFile": code}, Timeout=config.get("Timeout", 10),
                        Environment={"Variables": config["Environment"]["Variables"]},
                        Layers=[layer["Arn"] for layer in config.get("Layers") or []])
    functions.wait_updated(lam, name)


def test_lab_old_versions_listed_residue_alias_block_closeout_and_backout_refused(closeout_lab, tmp_path):
    from runbook_lib.audit import Audit
    from runbook_lib.validation import Validation

    lab, name = closeout_lab, LEGACY_COPY
    target = lab_target(lab)
    lam = target.client("lambda")
    env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    values = [env[k] for k in lab.seed_info["secret_env_vars"]]
    old = []
    for level in ("DEBUG", "WARNING"):  # two versions published while the secrets sat in the environment
        functions.update_configuration(lam, name, variables=dict(env, LOG_LEVEL=level))
        old.append(lam.publish_version(FunctionName=name)["Version"])
    functions.update_configuration(lam, name, variables=env)

    # the test plan lists both old versions, with their numbers
    ledger = Ledger.open(tmp_path / "run")
    ledger.bind(target="lab", account=lab.account_id, region=lab.region, function_name=name)
    audit = Audit(target, function_names=[name], include_code=False, include_layers=False).run()
    audit.record(ledger, name)
    listed = sorted({(f["version"], f["variable"]) for f in audit.finding_records if f["version"] != "$LATEST"})
    assert listed == [(v, var) for v in old for var in ("DB_PASSWORD", "PARTNER_API_KEY")]
    assert ledger.baseline["target_function"]["old_versions_with_findings"] == old

    Implementation(target, ledger, name, change_ticket="CHG-LAB", apply=True, strategy="reference").apply()
    snapshot = ledger.snapshot(name).version
    validation = Validation(target, ledger, tmp_path / "run", name)
    residue_check, rotated_check = validation.residue_checks()
    assert residue_check.status == "FAIL" and all(f"version {v}:" in residue_check.reason for v in old)
    assert rotated_check.status == "WARN"

    # an alias on an old version blocks its deletion, with the explanation
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=old[0])
    plan = Closeout(target, ledger).plan()
    [blocked] = [r for r in plan if r.action == "blocked"]
    assert blocked.resource == f"{name}:{old[0]}" and "alias(es) live point to version" in blocked.reason
    with pytest.raises(ChangeRefused, match="alias"):
        Closeout(target, ledger, change_ticket="CHG-CLOSE", apply=True).apply()
    assert old[0] in [v["Version"] for v in lam.list_versions_by_function(FunctionName=name)["Versions"]]

    # the owner points the alias at a clean version: close-out goes through
    clean = lam.publish_version(FunctionName=name)["Version"]
    lam.update_alias(FunctionName=name, Name="live", FunctionVersion=clean)
    closing = Closeout(target, ledger, change_ticket="CHG-CLOSE", apply=True)
    closing.apply()
    left = lam.list_versions_by_function(FunctionName=name)["Versions"]
    assert [v["Version"] for v in left] == ["$LATEST", clean]
    assert contains_any(json.dumps(left, default=str), values) is False, "a version still holds a value"
    assert {c.id: c.status for c in closing.checks()}["no-secret-residue"] == "PASS"
    assert validation.residue_checks()[0].status == "PASS"
    refusal = rf"backout refused: this run was closed out .*\(version {snapshot}\) is deleted"
    with pytest.raises(ChangeRefused, match=refusal):
        Backout(target, ledger, change_ticket="CHG-B")
    text = run_folder_text(tmp_path / "run") + repr(plan) + repr(closing.checks())
    assert contains_any(text, values) is False


def partner_keys(lab, keys):
    request = urllib.request.Request(f"{lab.endpoint_url}/_lab/partner/keys", method="POST",
                                     data=json.dumps({"keys": keys}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:  # noqa: S310 - lab loopback
        return json.loads(response.read())


def test_lab_rotation_keeps_the_function_working_with_one_refetch(closeout_lab, tmp_path):
    from runbook_lib.evidence import RETRIEVAL_LOG_LINE, invoke_function

    lab = closeout_lab
    target = lab_target(lab)
    lam, sm = target.client("lambda"), target.client("secretsmanager")
    name = lab.seed_info["function_name"]
    env = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    exposed = [env[k] for k in lab.seed_info["secret_env_vars"]]
    run_dir = tmp_path / "run"
    ledger = Ledger.open(run_dir)
    Implementation(target, ledger, name, change_ticket="CHG-LAB", apply=True, strategy="reference").apply()
    before = invoke_function(lam, name, {}, 2)
    assert [(r["status_code"], r["http_status"], r["function_error"]) for r in before] == [(200, 200, "")] * 2
    residue_check, _ = __import__("runbook_lib.validation", fromlist=["Validation"]).Validation(
        target, ledger, run_dir, name).residue_checks()
    assert residue_check.status == "WARN" and "only the backout snapshot" in residue_check.reason

    new = {"PARTNER_API_KEY": "pk_" + secrets.token_urlsafe(24), "DB_PASSWORD": secrets.token_urlsafe(18)}
    values_file = tmp_path / "owner" / "new-values.json"  # outside the run folder, like the owner's file
    values_file.parent.mkdir()
    values_file.write_text(json.dumps(new))
    rotated_at = int(time.time() * 1000)
    closing = Closeout(target, ledger, change_ticket="CHG-CLOSE", apply=True, rotate_from=str(values_file))
    closing.apply()
    arn = ledger.secret().resource
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert len(stages) == 2 and sorted(s for v in stages.values() for s in v) == ["AWSCURRENT", "AWSPREVIOUS"]
    assert bool(json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]) == new) is True
    assert partner_keys(lab, [new["PARTNER_API_KEY"]])["valid_keys"] == 1  # the partner rotates at its source

    after = invoke_function(lam, name, {}, 2)
    assert [(r["status_code"], r["http_status"], r["function_error"]) for r in after] == [(200, 200, "")] * 2
    logs = target.client("logs")
    messages = []
    for _ in range(20):
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}", startTime=rotated_at)["events"]
        messages = [e["message"] for e in events]
        if sum(m.startswith("END RequestId") for m in messages) >= 2:
            break
        time.sleep(0.5)
    assert sum("refetching the secret once" in m for m in messages) == 1
    assert sum(RETRIEVAL_LOG_LINE in m for m in messages) == 1, "one refetch, then the cache again"
    checks = {c.id: c for c in closing.checks()}
    assert checks["exposed-credentials-rotated"].status == "PASS"
    assert checks["no-secret-residue"].status == "PASS"
    with pytest.raises(ChangeRefused, match="closed out"):
        Backout(target, ledger)
    text = (run_folder_text(run_dir) + "\n".join(messages) + repr(closing.plan()) + repr(checks)
            + json.dumps([r for r in before + after], default=str))
    assert contains_any(text, exposed + list(new.values())) is False


def test_lab_closeout_notebook_headless_into_the_run_folder(closeout_lab, tmp_path, monkeypatch):
    """``runner.run_closeout`` (what ``runbook closeout RUN_DIR --apply`` runs): plan, then apply."""
    from runbook_lib.manifest import write_manifest
    from runbook_lib.runner import run_closeout as run_closeout_notebook
    from runbook_lib.runner import RunOptions

    lab, name = closeout_lab, NOTEBOOK_COPY
    for key, value in lab.env.items():
        monkeypatch.setenv(key, value)
    target = lab_target(lab)
    env = target.client("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    exposed = [env[k] for k in lab.seed_info["secret_env_vars"]]
    run_dir = tmp_path / "run"
    ledger = Ledger.open(run_dir)
    ledger.bind(target="lab", account=lab.account_id, region=lab.region, function_name=name)
    Implementation(target, ledger, name, change_ticket="CHG-LAB", apply=True, strategy="reference").apply()
    write_manifest(run_dir)  # as `runbook run` leaves it: a later close-out runs only in a signed folder
    new = {"DB_PASSWORD": secrets.token_urlsafe(18)}
    values_file = tmp_path / "new-values.json"
    values_file.write_text(json.dumps(new))
    monkeypatch.chdir(tmp_path)  # a relative rotate_from is resolved before the kernel moves into the run folder

    planned = run_closeout_notebook(run_dir, RunOptions(target="lab", endpoint_url=lab.endpoint_url))
    assert planned.exit_code == 0, planned.reason
    assert Ledger.open(run_dir).latest(CloseoutRecord, name) is None
    applied = run_closeout_notebook(run_dir, RunOptions(
        target="lab", endpoint_url=lab.endpoint_url, apply=True,
        parameters={"change_ticket": "CHG-CLOSE", "rotate_from": "new-values.json"}))
    assert applied.exit_code == 0, applied.reason
    statuses = {c.id: c.status for c in applied.checks if c.notebook == "05_closeout"}
    assert statuses == {"closeout-rotate": "PASS", "closeout-access-keys": "PASS", "closeout-versions": "PASS",
                        "no-secret-residue": "PASS", "exposed-credentials-rotated": "WARN"}
    assert {c.id: c.status for c in applied.checks}["no-secret-in-artifacts"] == "PASS"
    assert (run_dir / "05_closeout.html").is_file() and (run_dir / "manifest.json").is_file()
    assert contains_any(run_folder_text(run_dir), exposed + list(new.values())) is False


def test_apply_is_refused_unless_built_with_apply_true_and_nothing_changes(world):
    implement(world)
    closing = closeout(world)  # a ticket, but a plan-only object
    before, ledger_before, kept = world.state(), world.ledger.path.read_text(), versions(world)
    with pytest.raises(InputError, match=r"^apply: this Closeout was built with apply=False \(plan only\)"):
        closing.apply()
    assert world.state() == before and world.ledger.path.read_text() == ledger_before and versions(world) == kept
