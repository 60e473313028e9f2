"""Close-out step ``rotate``: the values replaced at their source, in a new version of the secret."""

from __future__ import annotations

from .. import secrets_store
from ..exceptions import ChangeRefused
from ..records import Rotation
from ..steps import NONE, UPDATE, Step


class RotateStep(Step):
    name = "rotate"
    permissions = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                   "secretsmanager:PutSecretValue", "kms:GenerateDataKey", "kms:Decrypt")

    def __init__(self, ctx):
        self.c = ctx
        self.version_id = ""

    def _secret_arn(self) -> str:
        record = self.c.ledger.secret()
        return record.resource if record else ""

    def _wanted(self, current: dict) -> dict:
        return {**current, **self.c.new_values.items}

    def plan(self):
        arn, moved = self._secret_arn(), self.c.moved_variables()
        if not arn:
            return [self.c.row(self.name, "-", NONE, "no secret in the ledger: nothing to rotate")]
        if not self.c.new_values:
            return [self.c.row(self.name, arn, NONE, f"no rotate_from file: {', '.join(moved) or 'the values'} "
                               "stay valid as exposed until replaced at their source; then re-run with "
                               "rotate_from=<JSON file of the new values>")]
        current = secrets_store.current_values(self.c.sm, arn)
        names = sorted(self.c.new_values.items)
        if self._wanted(current) == current:
            return [self.c.row(self.name, arn, NONE, f"the secret already holds the supplied values of "
                               f"{', '.join(names)}")]
        left = sorted(set(moved) - set(names))
        return [self.c.row(self.name, arn, UPDATE, f"new secret version with new values of {', '.join(names)} "
                           "(not shown); the function picks them up when its cache expires "
                           "(SECRET_TTL_SECONDS) or at the first authentication failure"
                           + (f"; still exposed: {', '.join(left)}" if left else ""))]

    def apply(self):
        arn = self._secret_arn()
        current = secrets_store.current_values(self.c.sm, arn)
        wanted = self._wanted(current)
        earlier = self.c.ledger.latest(Rotation, arn)
        count = earlier.rotations + 1 if earlier else 1
        self.version_id = secrets_store.put_values(self.c.sm, arn, wanted, self.c.token(f"rotate-{count}"))
        del current, wanted
        names = sorted(set(self.c.new_values.items) | set(earlier.variables if earlier else []))
        self.c.ledger.put(Rotation(resource=arn, action="changed", step=self.name, variables=names, rotations=count,
                                   version_id=self.version_id, change_ticket=self.c.change_ticket))

    def verify(self):
        arn = self._secret_arn()
        if not arn or not self.c.new_values:
            return "nothing rotated: " + self.plan()[0].reason
        current = secrets_store.current_values(self.c.sm, arn)
        held = all(current.get(k) == v for k, v in self.c.new_values.items.items())
        del current
        if not held:
            raise ChangeRefused(arn, "the secret's current version does not hold the supplied values")
        record = self.c.ledger.latest(Rotation, arn)
        return (f"{arn}: AWSCURRENT holds the new values of {', '.join(sorted(self.c.new_values.items))}"
                + (f" (version {record.version_id})" if record else "")
                + "; the exposed values stay in AWSPREVIOUS until the next rotation")
