"""The change: secrets into Secrets Manager, least-privilege role, secure function, Lambda@Edge.

:class:`Implementation` validates its inputs (before any change), builds the steps in
:data:`STEP_ORDER`, shows their plan and, built with ``apply=True`` and a change ticket,
applies them through the change engine (:mod:`runbook_lib.change.engine`), each followed by
an assertion of the state it produced. Every created or changed resource goes into the
ledger at once (intents before creates), with what backout needs, never a value.

Steps, in order (one module each): ``snapshot`` (publish a version for backout), ``role``
(dedicated role, when asked), ``kms-key`` (customer managed key, when asked), ``secret``,
``policy`` (one secret, attached to the role), ``function`` (variables out, ``SECRET_ID``
in, code deployed), ``access-keys`` (hardcoded keys found in code: deactivated in the lab,
listed for the owner on AWS), ``edge`` (viewer-request trigger).

Examples
--------
>>> impl = Implementation(target, ledger, function_name="orders-api")   # doctest: +SKIP
>>> plan_frame(impl.plan())                                              # doctest: +SKIP
>>> Implementation(target, ledger, function_name="orders-api", apply=True,
...                change_ticket="CHG-1").apply(progress=print)          # doctest: +SKIP
"""

from __future__ import annotations

from .. import catalog, edge, functions, iam, secrets_store
from ..change.engine import ChangeSequence
from ..checks import Check
from ..exceptions import InputError
from ..ledger import Ledger
from ..redaction import redact
from ..session import Target
from ..steps import STOP, Step, require_ticket
from .access_keys import AccessKeyStep
from .context import ImplementationContext
from .edge_trigger import EdgeStep
from .function import FunctionStep
from .kms_key import KmsKeyStep
from .policy import PolicyStep
from .role import RoleStep
from .secret import SecretStep
from .snapshot import SnapshotStep

NOTEBOOK = "02_implementation"
ROLE_MODES = ("existing", "dedicated")
#: Every step, in the order it runs; ``role``, ``kms-key`` and ``edge`` only when asked.
STEP_ORDER = (SnapshotStep, RoleStep, KmsKeyStep, SecretStep, PolicyStep, FunctionStep, AccessKeyStep, EdgeStep)


class Implementation(ChangeSequence):
    """The implementation notebook's object: validated inputs, steps, plan, apply, checks.

    Parameters follow the notebook's parameters; see ``docs/implementation.md``.
    Raises :class:`InputError` (nothing changed) for an unknown function, a bad
    ``kms_key``/``role_mode``/``code_path``, an edge function that cannot be one,
    ``apply=True`` without ``change_ticket``, or a ledger bound to another function;
    :meth:`apply` refuses unless built with ``apply=True``.
    """

    notebook, phase, what, policy, check_prefix = NOTEBOOK, "change", "apply", STOP, "change-"

    def __init__(self, target: Target, ledger: Ledger, function_name: str, secret_name: str = "",
                 kms_key: str = secrets_store.AWS_MANAGED_KEY, role_mode: str = "existing",
                 code_path: str = "", use_reference_handler: bool = True, edge_distribution_id: str = "",
                 change_ticket: str = "", apply: bool = False, scanner=None, fingerprinter=None):
        if not function_name:
            raise InputError("function_name", "name the function to migrate")
        if role_mode not in ROLE_MODES:
            raise InputError("role_mode", f"{role_mode!r} is not one of {', '.join(ROLE_MODES)}")
        require_ticket(apply, change_ticket)
        secrets_store.check_kms_parameter(kms_key, target.region)
        config = functions.get_configuration(target.client("lambda"), function_name)
        parts = functions.arn_parts(config["FunctionArn"])
        ledger.bind(account=parts["account"], region=parts["region"], function_name=function_name)
        code = functions.read_code_package(code_path, config.get("Handler", "")) if code_path else None
        ctx = ImplementationContext(target, ledger, function_name, change_ticket, secret_name=secret_name,
                                    kms_key=kms_key, role_mode=role_mode, code=code,
                                    use_reference_handler=use_reference_handler,
                                    edge_distribution_id=edge_distribution_id, scanner=scanner,
                                    fingerprinter=fingerprinter)
        self._start(ctx, apply, change_ticket)
        self.target, self.ledger, self.change = target, ledger, ctx
        self._validate_account(config)
        wanted = {RoleStep: role_mode == "dedicated", KmsKeyStep: kms_key == secrets_store.CREATE_KEY,
                  EdgeStep: bool(edge_distribution_id)}
        self.steps = [cls(ctx) for cls in STEP_ORDER if wanted.get(cls, True)]

    def _validate_account(self, config: dict) -> None:
        c = self.change
        if c.kms_key not in (secrets_store.AWS_MANAGED_KEY, secrets_store.CREATE_KEY):
            meta = secrets_store.describe_key(c.kms, c.kms_key)
            if meta is None or meta.get("KeyState") != "Enabled":
                raise InputError("kms_key", f"{c.kms_key} does not exist or is not enabled")
        moved, removed = c.variables()
        if not c.snapshot() and not moved and c.code is None:
            raise InputError("function_name", f"{c.function_name} has no environment variable to move into "
                             "Secrets Manager (the test plan found none); nothing to do")
        if c.edge_mode:
            self._validate_edge(config, moved, removed)

    def _validate_edge(self, config: dict, moved: list[str], removed: list[str]) -> None:
        c = self.change
        if not edge.distribution_exists(c.cf, c.edge_distribution_id):
            raise InputError("edge_distribution_id", f"no CloudFront distribution {c.edge_distribution_id}")
        env_after = {} if c.use_reference_handler else {
            k: 1 for k in functions.environment(config) if k not in set(moved) | set(removed)}
        problems = edge.edge_problems(config, c.region, env_after)
        if c.role_mode == "existing":
            role = iam.get_role(c.iam, iam.role_name_from_arn(c.previous_role_arn()))
            if role and "edgelambda.amazonaws.com" not in iam.trusted_services(role):
                problems.append("the function's role does not trust edgelambda.amazonaws.com: use role_mode=dedicated")
        if problems:
            raise InputError("edge_distribution_id", "; ".join(problems))

    # -- what the notebook shows -------------------------------------------------------------------
    def owner_actions(self) -> list[str]:
        """What the function's owner must still do (rotate exposed values, deactivate keys)."""
        moved, removed = self.change.variables()
        lines = []
        if moved:
            lines.append(f"rotate at their source the values that were exposed in configuration: {', '.join(moved)} "
                         "(moving a value hides it, it does not un-expose it)")
        if removed:
            lines.append(f"AWS credentials were in the environment ({', '.join(removed)}): the function now uses "
                         "its role; deactivate and delete those keys")
        for step in self.steps:
            if isinstance(step, AccessKeyStep):
                for key in step.keys():
                    todo = (": delete it once nothing uses it" if key["status"] == "Inactive"
                            else ": deactivate it (iam update-access-key --status Inactive)")
                    lines.append(f"hardcoded access key of IAM user {key['user']} ({redact(key['key_id'])}) is "
                                 f"{key['status']}{todo}")
        return lines

    def checks(self) -> list[Check]:
        """Phase ``change``: ``change-applied`` SKIP for a plan, else ``change-<step>`` per step."""
        if self.ledger.snapshot(self.change.function_name) is None:
            return [catalog.make_check("change-applied", self.phase, catalog.Verdict(
                catalog.SKIP, "plan only: nothing was applied"), notebook=self.notebook)]
        return self.assertions(applied=True, warn=self._warning)

    def _warning(self, step: Step) -> str:
        if isinstance(step, AccessKeyStep) and self.target.name != "lab" and step.keys():
            return "hardcoded keys listed for their owner to deactivate"
        return ""


__all__ = ["Implementation", "ImplementationContext", "NOTEBOOK", "ROLE_MODES", "STEP_ORDER"]
