import pytest

from runbook_lib.exceptions import ChangeRefused, InputError
from runbook_lib.steps import (ADOPT, BLOCKED, CONTINUE, CREATE, NONE, STOP, PlanRow, Step, plan_frame, require_ticket,
                               run_steps)


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


class Pair(Step):
    """Two resources: one may be blocked; applying touches only what is not."""

    name = "pair"

    def __init__(self, world, blocked=()):
        self.world, self.blocked = world, set(blocked)

    def plan(self):
        return [PlanRow(self.name, r, BLOCKED if r in self.blocked else (NONE if self.world.get(r) else CREATE), "why")
                for r in ("a", "b")]

    def apply(self):
        for resource in ("a", "b"):
            if resource not in self.skip:
                self.world[resource] = True

    def verify(self):
        return ", ".join(sorted(r for r in ("a", "b") if self.world.get(r))) or "nothing"


def test_continue_leaves_blocked_resources_alone_and_applies_the_rest():
    world = {}
    [result] = run_steps([Pair(world, blocked={"b"})], apply=True, policy=CONTINUE)
    assert world == {"a": True} and result.status == "applied"
    assert [r.resource for r in result.refused] == ["b"] and result.detail == "a; left alone: b: why"
    [blocked] = run_steps([Pair({}, blocked={"a", "b"})], apply=True, policy=CONTINUE)
    assert blocked.status == "blocked" and len(blocked.refused) == 2
    with pytest.raises(ChangeRefused, match="why"):
        run_steps([Pair({}, blocked={"b"})], apply=True, policy=STOP)


def test_adopt_is_a_plan_action_that_applies():
    class Adopt(Counter):
        def plan(self):
            return [PlanRow(self.name, "thing", NONE if self.world.get("thing") else ADOPT, "record it")]
    world = {}
    [result] = run_steps([Adopt(world)], apply=True)
    assert result.action == ADOPT and result.status == "applied" and world["thing"]
    with pytest.raises(ValueError, match="not in"):
        PlanRow("s", "r", "steal", "why")


# -- the notebooks and docs list the steps in the code's order ---------------------------------------------
def _listed_steps(text: str) -> list[str]:
    """Step names written as ``N `name```, in the order they appear, numbered 1, 2, ..."""
    import re
    found = re.findall(r"(?<![\w`])(\d+) `([a-z-]+)`", text)
    assert [int(n) for n, _ in found] == list(range(1, len(found) + 1)), found
    return [name for _, name in found]


@pytest.mark.parametrize("notebook, sequence", [
    ("02_implementation", "runbook_lib.implementation"), ("04_backout", "runbook_lib.backout"),
    ("05_closeout", "runbook_lib.closeout")])
def test_each_notebook_lists_the_steps_in_the_codes_order(notebook, sequence):
    import importlib
    import json
    from pathlib import Path

    cells = json.loads((Path(__file__).parents[1] / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    order = [cls.name for cls in importlib.import_module(sequence).STEP_ORDER]
    assert _listed_steps(markdown) == order


@pytest.mark.parametrize("doc, sequence", [
    ("implementation.md", "runbook_lib.implementation"), ("implementation.md", "runbook_lib.backout"),
    ("closeout.md", "runbook_lib.closeout")])
def test_the_docs_tables_list_the_steps_in_the_codes_order(doc, sequence):
    import importlib
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / doc).read_text()
    after = text.split(f"`{sequence}.STEP_ORDER`", 1)[1]
    table = after.split("\n\n", 2)[1]  # the table follows its introducing paragraph
    listed = re.findall(r"^\| `([a-z-]+)`", table, re.MULTILINE)
    assert listed == [cls.name for cls in importlib.import_module(sequence).STEP_ORDER]
