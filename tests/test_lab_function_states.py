"""Pending after create, InProgress after an update: observed, refused as AWS refuses, waited for."""

import json
import time
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from lab_functions import FAST_WAIT, deploy, invoke, make_role, package, unique
from runbook_lib import functions
from runbook_lib.lab.function_states import FunctionStates, function_name_of, seconds_argument, validate_seconds

V1 = {"app.py": "def handler(e, c):\n    return 'v1'\n"}
V2 = {"app.py": "def handler(e, c):\n    return 'v2'\n"}
PENDING = "The operation cannot be performed at this time. The function is currently in the following state: Pending"


#: Longer than any loaded machine takes between a change and its checks: each test ends it itself.
HELD_SECONDS = 60.0


@pytest.fixture
def slow_states(lab):
    """The shared lab holding every transition until the test releases it, restored afterwards."""
    before = lab.configure()["function_state_seconds"]
    lab.configure(function_state_seconds=HELD_SECONDS)
    yield lab
    lab.configure(function_state_seconds=before)


class ReleasedOnceSeen:
    """Ends the lab's transition as soon as a poll of ``lam`` has seen it (a transition lasts the
    seconds in force when it is read), and keeps what each poll saw: a waiter that never saw the
    transition had nothing to wait for."""

    def __init__(self, lab, lam):
        self.lab, self.seen = lab, []
        for operation in ("GetFunction", "GetFunctionConfiguration"):
            lam.meta.events.register(f"after-call.lambda.{operation}", self)

    def __call__(self, parsed=None, **_):
        config = (parsed or {}).get("Configuration", parsed or {})
        state = (config.get("State"), config.get("LastUpdateStatus"))
        self.seen.append(state)
        if state[0] == "Pending" or state[1] == "InProgress":
            self.lab.configure(function_state_seconds=0)

    def hold(self) -> None:
        """Hold the next transition again (after one was released)."""
        self.lab.configure(function_state_seconds=HELD_SECONDS)


def _deployed(lab, files) -> str:
    """A function already Active (created while transitions last no time), then transitions held again."""
    lab.configure(function_state_seconds=0)
    try:
        return deploy(lab, files, wait=False)
    finally:
        lab.configure(function_state_seconds=HELD_SECONDS)


def _conflict(call) -> dict:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    return caught.value.response["Error"]


def test_a_new_function_is_pending_refuses_invoke_and_updates_then_becomes_active(slow_states):
    lab, lam = slow_states, slow_states.client("lambda")
    name = unique("states-new")
    created = lam.create_function(FunctionName=name, Runtime="python3.12", Role=make_role(lab.client("iam")),
                                  Handler="app.handler", Code={"ZipFile": package(V1)})
    assert (created["State"], created["StateReason"], created["StateReasonCode"]) == \
        ("Pending", "The function is being created.", "Creating")
    config = lam.get_function(FunctionName=name)["Configuration"]
    assert config["State"] == "Pending" and config["LastUpdateStatus"] == "InProgress"
    for call in (lambda: lam.invoke(FunctionName=name),
                 lambda: lam.update_function_configuration(FunctionName=name, Description="x"),
                 lambda: lam.update_function_code(FunctionName=name, ZipFile=package(V2)),
                 lambda: lam.publish_version(FunctionName=name)):
        error = _conflict(call)
        assert error["Code"] == "ResourceConflictException" and error["Message"] == PENDING
    polls = ReleasedOnceSeen(lab, lam)
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
    assert polls.seen[0][0] == "Pending" and polls.seen[-1][0] == "Active", "the waiter had nothing to wait for"
    listed = [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == name]
    assert listed[0]["State"] == "Active" and "StateReasonCode" not in listed[0]
    assert invoke(lab, name)[1] == "v1"


def test_an_update_is_in_progress_refuses_more_updates_while_invoke_runs_the_previous_code(slow_states):
    lab, lam = slow_states, slow_states.client("lambda")
    name = _deployed(lab, V1)
    assert invoke(lab, name)[1] == "v1"
    updated = lam.update_function_code(FunctionName=name, ZipFile=package(V2))
    assert updated["LastUpdateStatus"] == "InProgress" and updated["LastUpdateStatusReasonCode"] == "Creating"
    assert lam.get_function_configuration(FunctionName=name)["State"] == "Active"
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    for call in (lambda: lam.update_function_configuration(FunctionName=name, Description="x"),
                 lambda: lam.publish_version(FunctionName=arn)):
        error = _conflict(call)
        assert error["Message"] == ("The operation cannot be performed at this time. "
                                    f"An update is in progress for resource: {arn}")
    assert invoke(lab, name)[1] == "v1", "during an update Lambda runs the previous code"
    polls = ReleasedOnceSeen(lab, lam)
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST_WAIT)
    assert polls.seen[0][1] == "InProgress"
    assert lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "Successful"
    assert invoke(lab, name)[1] == "v2"


def test_deleting_a_version_keeps_the_update_in_progress_deleting_the_function_ends_it(slow_states):
    lab, lam = slow_states, slow_states.client("lambda")
    name = _deployed(lab, V1)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.update_function_code(FunctionName=name, ZipFile=package(V2))
    lam.delete_function(FunctionName=name, Qualifier=version)
    assert lam.get_function_configuration(FunctionName=name)["LastUpdateStatus"] == "InProgress"
    lam.delete_function(FunctionName=name)
    recreated = lam.create_function(FunctionName=name, Runtime="python3.12", Role=make_role(lab.client("iam")),
                                    Handler="app.handler", Code={"ZipFile": package(V1)})
    assert recreated["State"] == "Pending"


def test_a_failed_update_leaves_no_transition_behind(slow_states):
    lab, lam = slow_states, slow_states.client("lambda")
    name = _deployed(lab, V1)
    with pytest.raises(ClientError):  # moto refuses a layer that does not exist
        lam.update_function_configuration(FunctionName=name,
                                          Layers=["arn:aws:lambda:us-east-1:123456789012:layer:none:1"])
    assert lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus") == "Successful"


def test_the_runbooks_waiter_waits_for_the_update(slow_states):
    lab, lam = slow_states, slow_states.client("lambda")
    name = _deployed(lab, V1)
    polls = ReleasedOnceSeen(lab, lam)
    functions.update_configuration(lam, name, variables={"STAGE": "blue"})
    assert polls.seen[0][1] == "InProgress" and polls.seen[-1][1] == "Successful", \
        "the runbook went on while the update was in progress"
    config = lam.get_function_configuration(FunctionName=name)
    assert config["LastUpdateStatus"] == "Successful" and config["Environment"]["Variables"] == {"STAGE": "blue"}
    polls.hold()
    functions.deploy_zip(lam, name, package(V2))  # a second change right after the first one waited
    assert polls.seen[-2][1] == "InProgress" and polls.seen[-1][1] == "Successful"
    assert invoke(lab, name)[1] == "v2"


def test_the_setting_is_read_and_refused_through_the_control_plane(lab):
    assert isinstance(lab.configure()["function_state_seconds"], float)
    for bad in ("1", -1, 61, True):
        request = urllib.request.Request(lab.endpoint_url + "/_lab/config", method="POST",
                                         data=json.dumps({"function_state_seconds": bad}).encode())
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 400


def test_zero_seconds_turns_transitions_off(lab):
    before = lab.configure()["function_state_seconds"]
    lab.configure(function_state_seconds=0)
    try:
        lam = lab.client("lambda")
        name = deploy(lab, V1, wait=False)
        assert lam.get_function_configuration(FunctionName=name)["State"] == "Active"
        assert invoke(lab, name)[1] == "v1"
    finally:
        lab.configure(function_state_seconds=before)


# --------------------------------------------------------------------------- unit
def test_transitions_expire_restore_and_forget():
    states = FunctionStates(0.05)
    key = ("123456789012", "us-east-1", "f")
    assert states.created(key, "arn") is None
    assert states.conflict(key, "Invoke") == PENDING and states.conflict(key, "TagResource") is None
    prior = states.updated(key, "arn", previous="spec")
    assert prior.kind == "create" and states.serving(key) == "spec" and states.conflict(key, "Invoke") is None
    states.restore(key, prior)
    assert states.current(key).kind == "create"
    time.sleep(0.06)
    assert states.current(key) is None and states.overrides(key, on_create=False) == {}
    states.created(key, "arn")
    states.deleted(key)
    assert states.current(key) is None


@pytest.mark.parametrize("value, name", [
    ("orders-api", "orders-api"), ("orders-api:3", "orders-api"), ("123456789012:function:orders-api", "orders-api"),
    ("arn:aws:lambda:us-east-1:123456789012:function:orders-api:live", "orders-api"),
])
def test_function_names_are_read_from_every_form_lambda_accepts(value, name):
    assert function_name_of(value) == name


def test_seconds_are_checked_with_a_one_line_reason():
    import argparse

    assert validate_seconds(0) == 0.0 and seconds_argument("0.5") == 0.5
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        seconds_argument("120")
    assert str(caught.value) == "'120': function_state_seconds must be between 0 and 60"
    with pytest.raises(TypeError):
        validate_seconds(True)


def test_runbook_lab_option_sets_the_time(tmp_path):
    from runbook_lib.lab import Lab

    with Lab(seed=False, function_state_seconds=2.5) as running:
        assert running.configure()["function_state_seconds"] == 2.5
