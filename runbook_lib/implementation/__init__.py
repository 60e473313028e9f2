"""The change: secrets into Secrets Manager, least-privilege role, secure function, Lambda@Edge.

:class:`Implementation` validates its inputs (before any change), builds the steps in
:data:`STEP_ORDER`, shows their plan and, built with ``apply=True`` and a change ticket,
applies them through the change engine (:mod:`runbook_lib.change.engine`), each followed by
an assertion of the state it produced. Every created or changed resource goes into the
ledger at once (intents before creates), with what backout needs, never a value.

Steps, in order (one module each): ``snapshot`` (publish a version for backout), ``role``
(dedicated role, when asked), ``kms-key`` (customer managed key, when asked), ``secret``,
``grant`` (the secret's resource policy: only this function's role session reads it),
``wrapper-layer`` (strategy ``wrapper``: the runbook's exec-wrapper layer), ``function``
(variables out, ``SECRET_ID`` in, the wrapper or the new code), ``code`` (secrets hard-coded
in the code: a code change for its owner), ``access-keys`` (hardcoded keys found in code:
deactivated in the lab when the code no longer holds them, listed for the owner on AWS),
``edge`` (viewer-request trigger). How the function gets its secret is its **strategy**
(:mod:`runbook_lib.implementation.strategy`), said in words at the top of the plan with
every function that shares its execution role.

Examples
--------
>>> impl = Implementation(target, ledger, function_name="orders-api")   # doctest: +SKIP
>>> plan_frame(impl.plan())                                              # doctest: +SKIP
>>> Implementation(target, ledger, function_name="orders-api", apply=True,
...                change_ticket="CHG-1").apply(progress=print)          # doctest: +SKIP
"""

from __future__ import annotations

from .. import catalog, edge, functions, iam, secrets_store, wrapper
from ..change.engine import ChangeSequence
from ..checks import Check
from ..exceptions import AwsCallError, InputError
from ..ledger import Ledger
from ..redaction import Fingerprinter, redact
from ..session import Target
from ..steps import NONE, STOP, PlanRow, Step, require_ticket
from . import strategy as strategies
from .access_keys import AccessKeyStep
from .code_secrets import CodeSecretsStep
from .context import ImplementationContext
from .edge_trigger import EdgeStep
from .function import FunctionStep
from .grant import GrantStep
from .kms_key import KmsKeyStep
from .role import RoleStep
from .secret import SecretStep
from .snapshot import SnapshotStep
from .wrapper_layer import WrapperLayerStep

NOTEBOOK = "02_implementation"
ROLE_MODES = ("existing", "dedicated")
#: Every step, in the order it runs; ``role``, ``kms-key``, ``wrapper-layer`` and ``edge`` only when they apply.
STEP_ORDER = (SnapshotStep, RoleStep, KmsKeyStep, SecretStep, GrantStep, WrapperLayerStep, FunctionStep,
              CodeSecretsStep, AccessKeyStep, EdgeStep)


class Implementation(ChangeSequence):
    """The implementation notebook's object: validated inputs, steps, plan, apply, checks.

    Parameters follow the notebook's parameters; see ``docs/implementation.md``.
    Raises :class:`InputError` (nothing changed) for an unknown function, a bad
    ``kms_key``/``role_mode``/``code_path``, a strategy that cannot apply to the function
    (images, OS-only runtimes without ``code_path``, ...), an edge function that cannot be one,
    ``apply=True`` without ``change_ticket``, or a ledger bound to another function;
    :meth:`apply` refuses unless built with ``apply=True``.
    """

    notebook, phase, what, policy, check_prefix = NOTEBOOK, "change", "apply", STOP, "change-"

    def __init__(self, target: Target, ledger: Ledger, function_name: str, secret_name: str = "",
                 kms_key: str = secrets_store.AWS_MANAGED_KEY, role_mode: str = "existing",
                 code_path: str = "", strategy: str = strategies.AUTO, edge_distribution_id: str = "",
                 change_ticket: str = "", apply: bool = False, scanner=None, fingerprinter=None,
                 allowlist_path: str = ""):
        if not function_name:
            raise InputError("function_name", "name the function to migrate")
        if role_mode not in ROLE_MODES:
            raise InputError("role_mode", f"{role_mode!r} is not one of {', '.join(ROLE_MODES)}")
        require_ticket(apply, change_ticket)
        secrets_store.check_kms_parameter(kms_key, target.region)
        config = functions.get_configuration(target.client("lambda"), function_name)
        chosen = strategies.choose(config, strategy, has_code=bool(code_path), edge_mode=bool(edge_distribution_id))
        parts = functions.arn_parts(config["FunctionArn"])
        ledger.bind(account=parts["account"], region=parts["region"], function_name=function_name)
        code = functions.read_code_package(code_path, config.get("Handler", ""), config.get("Runtime", "")) \
            if code_path else None
        fingerprinter = fingerprinter or Fingerprinter()  # one key for the scanner and the key matching
        if scanner is None and allowlist_path:
            scanner = _scanner(fingerprinter, allowlist_path)
        ctx = ImplementationContext(target, ledger, function_name, change_ticket, secret_name=secret_name,
                                    kms_key=kms_key, role_mode=role_mode, strategy=chosen, code=code,
                                    edge_distribution_id=edge_distribution_id, scanner=scanner,
                                    fingerprinter=fingerprinter)
        self._start(ctx, apply, change_ticket)
        self.target, self.ledger, self.change = target, ledger, ctx
        self._validate_account(config)
        wanted = {RoleStep: role_mode == "dedicated", KmsKeyStep: kms_key == secrets_store.CREATE_KEY,
                  WrapperLayerStep: ctx.use_wrapper, EdgeStep: bool(edge_distribution_id)}
        self.steps = [cls(ctx) for cls in STEP_ORDER if wanted.get(cls, True)]

    @property
    def strategy(self) -> strategies.Strategy:
        return self.change.strategy

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
        if c.use_wrapper:
            self._validate_wrapper(config, moved)
        if c.edge_mode:
            self._validate_edge(config, moved, removed)

    def _validate_wrapper(self, config: dict, moved: list[str]) -> None:
        reserved = sorted(set(moved) & wrapper.RESERVED_VARIABLES)
        if reserved:
            raise InputError("strategy", f"the wrapper cannot hand {', '.join(reserved)} to the runtime (a variable "
                             "Lambda reserves or that starts the runtime): use strategy package; nothing was changed")
        others = [arn for arn in functions.layer_arns(config) if not wrapper.is_runbook_layer(arn)]
        if len(others) >= wrapper.MAX_LAYERS:
            raise InputError("strategy", f"{self.change.function_name} has {len(others)} layers, Lambda's limit "
                             f"of {wrapper.MAX_LAYERS}: strategy wrapper needs one more; remove a layer or use strategy "
                             "package; nothing was changed")

    def _validate_edge(self, config: dict, moved: list[str], removed: list[str]) -> None:
        c = self.change
        if not edge.distribution_exists(c.cf, c.edge_distribution_id):
            raise InputError("edge_distribution_id", f"no CloudFront distribution {c.edge_distribution_id}")
        env_after = {} if c.strategy.changes_code else {
            k: 1 for k in functions.environment(config) if k not in set(moved) | set(removed)}
        problems = edge.edge_problems(config, c.region, env_after)
        if c.role_mode == "existing":
            role = iam.get_role(c.iam, iam.role_name_from_arn(c.previous_role_arn()))
            if role and "edgelambda.amazonaws.com" not in iam.trusted_services(role):
                problems.append("the function's role does not trust edgelambda.amazonaws.com: use role_mode=dedicated")
        if problems:
            raise InputError("edge_distribution_id", "; ".join(problems))

    # -- what the notebook shows -------------------------------------------------------------------
    def plan(self) -> list[PlanRow]:
        """The strategy and the role's other functions first (in words, no change), then every step's plan."""
        rows = self.reconcile.plan() if self.reconcile.pending() else []
        return rows + self.overview() + [row for step in self.steps for row in step.plan()]

    def overview(self) -> list[PlanRow]:
        """What the operator must see before any change: the strategy, and who else runs as the role.

        Listing the role's other functions takes ``lambda:ListFunctions``, which the shipped
        implementer policy does not hold (it returns every function's environment): without it the
        row says so. The change does not depend on it: the secret's resource policy admits only this
        function's session, whoever else runs as the role.
        """
        c = self.change
        role = c.previous_role_arn()
        name = iam.role_name_from_arn(role)
        rows = [PlanRow("strategy", c.function_name, NONE, c.strategy.describe())]
        try:
            users = functions.functions_using_role(c.lam, role)
        except AwsCallError as exc:
            if not exc.access_denied:
                raise
            return rows + [PlanRow("strategy", name, NONE, f"the functions running as {name} were not listed "
                                   "(lambda:ListFunctions is not granted); the secret's resource policy lets only "
                                   f"{c.function_name}'s session read it, whoever else runs as {name}")]
        others = [u for u in users if u != c.function_name]
        words = f"{name} is the execution role of {len(users)} function(s): {', '.join(users)}"
        if others and c.role_mode == "existing":
            words += (f"; shared: the secret's resource policy lets only {c.function_name}'s session read it, "
                      f"{', '.join(others)} get AccessDenied")
        elif others:
            words += f"; {c.function_name} moves to its own role, the others keep {name}"
        return rows + [PlanRow("strategy", name, NONE, words)]

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
            if isinstance(step, CodeSecretsStep) and keeps_code(self.change):
                first, _ = step.left_in_code()
                if first:
                    lines.append("remove the secrets hard-coded in the code ("
                                 + ", ".join(f"{f.path}:{f.line}" for f in first)
                                 + "), then deploy the new package with code_path (strategy package)")
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
        if isinstance(step, AccessKeyStep) and step.keys() and not step.deactivates():
            return "hardcoded keys listed for their owner to deactivate"
        if isinstance(step, CodeSecretsStep) and keeps_code(self.change) and step.left_in_code()[0]:
            return "secrets hard-coded in the code are left for its owner: a code change is needed"
        return ""


def keeps_code(ctx: ImplementationContext) -> bool:
    """True when the change leaves the function's code as it is (strategy wrapper)."""
    return not ctx.strategy.changes_code and ctx.code is None


def _scanner(fingerprinter, allowlist_path: str):
    from ..change.context import scanner_class

    cls = scanner_class()
    if cls is None:
        raise InputError("allowlist_path", "the secret scanner is not installed, so no allowlist can apply")
    from ..allowlist import Allowlist

    return cls(fingerprinter=fingerprinter, allowlist=Allowlist.from_file(allowlist_path))


__all__ = ["Implementation", "ImplementationContext", "NOTEBOOK", "ROLE_MODES", "STEP_ORDER"]
