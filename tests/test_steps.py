import pytest

from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.steps import BLOCKED, CREATE, NONE, PlanRow, Step, plan_frame, require_ticket, run_steps


class Counter(Step):
    """Creates a thing once; the fake world is a dict."""

    name = "counter"
    permissions = ("svc:Create",)

    def __init__(self, world, blocked=False):
        self.world, self.blocked = world, blocked

    def plan(self):
        if self.blocked:
            return [PlanRow(self.name, "thing", BLOCKED, "changed outside the runbook")]
        action = NONE if self.world.get("thing") else CREATE
        return [PlanRow(self.name, "thing", action, "exists" if action == NONE else "missing")]

    def apply(self):
        self.world["thing"] = self.world.get("applies", 0) + 1
        self.world["applies"] = self.world.get("applies", 0) + 1

    def verify(self):
        if not self.world.get("thing"):
            raise ChangeRefused("thing", "not there after apply")
        return "thing exists"


def test_plan_only_changes_nothing():
    world = {}
    [result] = run_steps([Counter(world)], apply=False)
    assert world == {} and result.status == "planned" and result.action == CREATE


def test_apply_then_reapply_is_a_no_op():
    world = {}
    run_steps([Counter(world)], apply=True)
    [again] = run_steps([Counter(world)], apply=True)
    assert world["applies"] == 1 and again.status == "unchanged" and again.detail == "thing exists"


def test_blocked_step_refuses_on_apply_and_is_reported_in_plan():
    with pytest.raises(ChangeRefused, match="changed outside the runbook"):
        run_steps([Counter({}, blocked=True)], apply=True)
    [planned] = run_steps([Counter({}, blocked=True)], apply=False)
    assert planned.status == "blocked"


def test_plan_frame_and_ticket():
    frame = plan_frame([PlanRow("s", "r", CREATE, "why")])
    assert list(frame.columns) == ["step", "resource", "action", "reason"]
    require_ticket(False, "")
    with pytest.raises(InputError, match="change_ticket: apply=True needs a change ticket"):
        require_ticket(True, "  ")
