"""What the implementation's steps share beyond the change context: the parameters and live lookups."""

from __future__ import annotations

from .. import functions, iam, secret_grant, secrets_store
from ..records import Record
from ..change.context import MOVE, USE_ROLE, ChangeContext
from .strategy import REFERENCE, WRAPPER, Strategy


class ImplementationContext(ChangeContext):
    """The change context plus the implementation's parameters (secret, key, role, strategy, code, edge)."""

    def __init__(self, target, ledger, function_name: str, change_ticket: str, *, secret_name: str, kms_key: str,
                 role_mode: str, strategy: Strategy, code: bytes | None, edge_distribution_id: str,
                 scanner=None, fingerprinter=None):
        super().__init__(target, ledger, function_name, change_ticket, scanner, fingerprinter)
        self.secret_name = secret_name or secrets_store.default_secret_name(function_name)
        self.kms_key, self.role_mode, self.strategy, self.code = kms_key, role_mode, strategy, code
        self.edge_distribution_id = edge_distribution_id
        self.wait_delay = 20  # seconds between CloudFront deployment polls

    @property
    def use_reference_handler(self) -> bool:
        return self.strategy.name == REFERENCE

    @property
    def use_wrapper(self) -> bool:
        return self.strategy.name == WRAPPER

    @property
    def edge_mode(self) -> bool:
        return bool(self.edge_distribution_id)

    # -- what moves --------------------------------------------------------------------------------
    def variables(self) -> tuple[list[str], list[str]]:
        """(names moved into the secret, AWS credential names removed without moving)."""
        snap = self.snapshot()
        if snap:
            return list(snap.moved_variables), list(snap.removed_variables)
        env = functions.environment(self.live())
        env_findings = [f for f in self.findings() if f.get("location", "environment") == "environment"
                        and f.get("variable") in env and f.get("variable") != "SECRET_ID"]
        moved = sorted({f["variable"] for f in env_findings if f.get("remediation") == MOVE})
        removed = sorted({f["variable"] for f in env_findings if f.get("remediation") == USE_ROLE} - set(moved))
        return moved, removed

    # -- resources earlier steps made ----------------------------------------------------------------
    def secret(self) -> dict | None:
        record = self.ledger.secret()
        return secrets_store.describe_secret(self.sm, record.resource if record else self.secret_name)

    def secret_arn(self) -> str | None:
        secret = self.secret()
        return secret["ARN"] if secret else None

    def kms_key_arn(self) -> str | None:
        """The customer managed key's ARN, or None for the AWS managed key."""
        if self.kms_key == secrets_store.AWS_MANAGED_KEY:
            return None
        if self.kms_key == secrets_store.CREATE_KEY:
            meta = secrets_store.describe_key(self.kms, secrets_store.key_alias(self.function_name))
            return meta["Arn"] if meta else None
        meta = secrets_store.describe_key(self.kms, self.kms_key)
        return meta["Arn"] if meta else self.kms_key

    def previous_role_arn(self) -> str:
        snap = self.snapshot()
        return snap.role if snap else self.live()["Role"]

    def role(self) -> dict | None:
        """The role the function runs as after the change (GetRole), None while a dedicated one is not made."""
        if self.role_mode == "dedicated":
            return iam.get_role(self.iam, iam.dedicated_role_name(self.function_name))
        return iam.get_role(self.iam, iam.role_name_from_arn(self.previous_role_arn()))

    def role_arn(self) -> str | None:
        """The role the function runs as after the change."""
        if self.role_mode == "dedicated":
            role = self.role()
            return role["Arn"] if role else None
        return self.previous_role_arn()

    def session_userid(self) -> str | None:
        """``aws:userid`` of the function's calls after the change (``<role id>:<function>``)."""
        role = self.role()
        return secret_grant.session_userid(role["RoleId"], self.function_name) if role else None

    def secret_pattern(self) -> str:
        """The secret's ARN, or the pattern its ARN will match before it exists."""
        return self.secret_arn() or secrets_store.secret_arn_pattern(self.partition, self.region, self.account,
                                                                     self.secret_name)

    def adopted_action(self, kind: type[Record], resource: str) -> str:
        """How to record a resource found tagged for this function but not active in the ledger.

        ``created`` when this run's ledger made it before (a backout undid the record, the
        implementation runs again), else ``adopted`` (an earlier run made it).
        """
        earlier = [r for r in self.ledger.records(kind) if r.resource == resource]
        return earlier[-1].action if earlier else "adopted"

