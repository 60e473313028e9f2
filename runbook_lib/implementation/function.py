"""Step ``function``: variables out, ``SECRET_ID`` in, code deployed.

Every call that changes the function is preceded by a record: ``function_config`` (what
backout restores from the snapshot, and which fields) before anything, ``function_code``
before a deploy, and an intent holding the state each call should produce, so a crash
between a call and the ledger write leaves a state backout recognises as the runbook's.
"""

from __future__ import annotations

import hashlib
import json

from .. import edge, functions, iam, secrets_store, wrapper
from ..change.intents import intent
from ..exceptions import ChangeRefused
from ..handlers import REFERENCE_HANDLER
from ..records import FunctionCode, FunctionConfig, WrapperLayer
from ..steps import NONE, UPDATE, Step


class FunctionStep(Step):
    name = "function"
    permissions = ("lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration",
                   "lambda:UpdateFunctionCode", "iam:PassRole", "lambda:GetLayerVersion", "lambda:ListLayerVersions",
                   "secretsmanager:GetSecretValue")

    def __init__(self, ctx):
        self.c = ctx

    def _kept_environment(self) -> dict:
        """Non-secret variables: from the live configuration, or from the snapshot for edge (none live).

        The runbook's own variables (``SECRET_ID``, its wrapper and the wrapper it chains) are set again
        by :meth:`wanted`, never kept.
        """
        moved, removed = self.c.variables()
        if self.c.edge_mode and self.c.snapshot():
            source = functions.environment(self.c.snapshot_config())
        else:
            source = functions.environment(self.c.live())
        own = {wrapper.SECRET_VARIABLE}
        if self.c.use_wrapper:
            own |= {wrapper.WRAPPER_VARIABLE, wrapper.NEXT_WRAPPER_VARIABLE}
        return {k: v for k, v in source.items() if k not in set(moved) | set(removed) | own}

    def wrapper_layer_arn(self) -> str:
        """The runbook's layer version this change attaches (a placeholder in a plan made before it exists)."""
        record = self.c.ledger.latest(WrapperLayer)
        if record is not None and record.active:
            return record.resource
        version = wrapper.find_version(self.c.lam, self.c.function_name, build=wrapper.build_id())
        return version["LayerVersionArn"] if version else "(the runbook's wrapper layer)"

    def wanted(self, secret_arn: str | None) -> dict:
        live = self.c.live()
        kept = self._kept_environment()
        out = {"handler": live.get("Handler"), "role": self.c.role_arn() or live["Role"], "package": None}
        if self.c.edge_mode:
            out["environment"] = {}
            out.update(layers=[], timeout=min(live.get("Timeout", 3), edge.VIEWER_MAX_TIMEOUT),
                       memory=min(live.get("MemorySize", 128), edge.VIEWER_MAX_MEMORY))
        elif self.c.use_wrapper:
            out["environment"] = wrapper.wrapped_environment(kept, secret_arn or "(secret ARN)",
                                                             wrapper.previous_wrapper(functions.environment(live)))
            out["layers"] = wrapper.wrapped_layers(functions.layer_arns(live), self.wrapper_layer_arn())
        else:
            out["environment"] = {**kept, "SECRET_ID": secret_arn or "(secret ARN)"}
        if self.c.code is not None:
            out["package"] = self.c.code
        elif self.c.use_reference_handler:
            out["handler"] = REFERENCE_HANDLER
            out["package"] = functions.build_reference_package(secret_arn or "", self.c.region,
                                                               kept if self.c.edge_mode else None)
        return out

    @staticmethod
    def changed_fields(live: dict, wanted: dict) -> list[str]:
        """The fields of :data:`functions.CHANGEABLE_FIELDS` that ``wanted`` sets to something new."""
        out = []
        if functions.environment(live) != wanted["environment"]:
            out.append("Environment")
        for key, field in (("handler", "Handler"), ("role", "Role"), ("timeout", "Timeout"), ("memory", "MemorySize")):
            if key in wanted and live.get(field) != wanted[key]:
                out.append(field)
        if "layers" in wanted and functions.layer_arns(live) != wanted["layers"]:
            out.append("Layers")
        if wanted["package"] is not None and functions.code_sha256(wanted["package"]) != live.get("CodeSha256"):
            out.append("code")
        return [f for f in functions.CHANGEABLE_FIELDS if f in out]

    def _differences(self, live: dict, wanted: dict) -> list[str]:
        diffs = []
        env = functions.environment(live)
        if env != wanted["environment"]:
            gone = sorted(set(env) - set(wanted["environment"]))
            diffs.append("environment" + (f" (remove {', '.join(gone)})" if gone else "")
                         + (" (set SECRET_ID)" if env.get("SECRET_ID") != wanted["environment"].get("SECRET_ID")
                            and "SECRET_ID" in wanted["environment"] else "")
                         + self._wrapper_words(env, wanted["environment"]))
        if wanted["package"] is not None and functions.code_sha256(wanted["package"]) != live.get("CodeSha256"):
            diffs.append(f"code ({self.c.strategy.name}: "
                         + ("the reference handler)" if self.c.use_reference_handler else "code_path)"))
        if live.get("Handler") != wanted["handler"]:
            diffs.append(f"handler to {wanted['handler']}")
        if live.get("Role") != wanted["role"]:
            diffs.append(f"role to {iam.role_name_from_arn(wanted['role'])}")
        for key, field in (("layers", "Layers"), ("timeout", "Timeout"), ("memory", "MemorySize")):
            if key in wanted:
                have = functions.layer_arns(live) if key == "layers" else live.get(field)
                if have != wanted[key]:
                    diffs.append("layers: add the runbook's wrapper layer" if self.c.use_wrapper and key == "layers"
                                 else f"{field} for Lambda@Edge")
        return diffs

    @staticmethod
    def _wrapper_words(env: dict, wanted_env: dict) -> str:
        if wanted_env.get(wrapper.WRAPPER_VARIABLE) != wrapper.WRAPPER_PATH or \
                env.get(wrapper.WRAPPER_VARIABLE) == wrapper.WRAPPER_PATH:
            return ""
        chained = wanted_env.get(wrapper.NEXT_WRAPPER_VARIABLE)
        return (f" (set {wrapper.WRAPPER_VARIABLE}={wrapper.WRAPPER_PATH}"
                + (f", chaining the existing wrapper {chained} after it" if chained else "") + ")")

    def plan(self):
        diffs = self._differences(self.c.live(), self.wanted(self.c.secret_arn()))
        if diffs:
            return [self.c.row(self.name, self.c.function_name, UPDATE, "; ".join(diffs))]
        done = {"wrapper": "the runbook's wrapper and its layer set, code unchanged",
                "package": "the code_path package deployed", "reference": "the reference handler deployed"}
        return [self.c.row(self.name, self.c.function_name, NONE, "no secret variable, SECRET_ID set, "
                           + done.get(self.c.strategy.name, "code deployed"))]

    def apply(self):
        secret_arn = self.c.secret_arn()
        if not secret_arn:
            raise ChangeRefused(self.c.function_name, "the secret must exist before the function uses it")
        live = self.c.live()
        wanted = self.wanted(secret_arn)
        self._record_config(live, wanted)
        if "code" in self.changed_fields(live, wanted):
            self._deploy(live, wanted["package"])
        final = {"code_sha256": self.c.live().get("CodeSha256", ""), "handler": wanted["handler"],
                 "role": wanted["role"], "variable_names": sorted(wanted["environment"])}
        with intent(self.c.ledger, "function_state", self.c.function_name, self._token("config", final), self.name,
                    final):
            functions.update_configuration(
                self.c.lam, self.c.function_name, variables=wanted["environment"],
                role=wanted["role"] if wanted["role"] != live["Role"] else None,
                handler=wanted["handler"] if wanted["handler"] != live.get("Handler") else None,
                layers=wanted.get("layers"), timeout=wanted.get("timeout"), memory=wanted.get("memory"))
            self.c.record_function_state(self.name)

    def _record_config(self, live: dict, wanted: dict) -> None:
        """``function_config`` before the first call: a re-run keeps what the first one saw before."""
        moved, removed = self.c.variables()
        earlier = self.c.ledger.latest(FunctionConfig, self.c.function_name)
        fields = sorted(set(self.changed_fields(live, wanted)) | set(earlier.changed_fields if earlier else ()))
        self.c.ledger.put(FunctionConfig(
            resource=self.c.function_name, action="changed", step=self.name,
            snapshot_version=self.c.snapshot().version, removed_variables=moved + removed,
            previous_role=earlier.previous_role if earlier else live["Role"],
            previous_handler=earlier.previous_handler if earlier else live.get("Handler", ""),
            changed_fields=[f for f in functions.CHANGEABLE_FIELDS if f in fields], strategy=self.c.strategy.name))

    def _deploy(self, live: dict, package: bytes) -> None:
        sha = functions.code_sha256(package)
        expected = {"code_sha256": sha, "handler": live.get("Handler", ""), "role": live["Role"],
                    "variable_names": sorted(functions.environment(live))}
        earlier = self.c.ledger.latest(FunctionCode, self.c.function_name)
        with intent(self.c.ledger, "function_state", self.c.function_name, self._token("code", expected), self.name,
                    expected):
            self.c.ledger.put(FunctionCode(
                resource=self.c.function_name, action="changed", step=self.name,
                previous_code_sha256=earlier.previous_code_sha256 if earlier else live.get("CodeSha256", ""),
                code_sha256=sha, source=self.c.strategy.name))
            functions.deploy_zip(self.c.lam, self.c.function_name, package)
            self.c.record_function_state(self.name)

    def _token(self, call: str, expected: dict) -> str:
        digest = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:16]
        return self.c.token(f"function-{call}-{digest}")

    def verify(self):
        live = self.c.live()
        diffs = self._differences(live, self.wanted(self.c.secret_arn()))
        if diffs:
            raise ChangeRefused(self.c.function_name, "function not as wanted: " + "; ".join(diffs))
        moved, removed = self.c.variables()
        env = functions.environment(live)
        secret_arn = self.c.secret_arn()
        values = secrets_store.current_values(self.c.sm, secret_arn) if secret_arn else {}
        # compared in memory: a moved value must not be left in any variable, whole or in part
        left = sorted(name for name, value in values.items()
                      if isinstance(value, str) and value and any(value in str(v) for v in env.values()))
        if left:
            raise ChangeRefused(self.c.function_name, f"the configuration still holds the value of {', '.join(left)}")
        snap = self.c.snapshot()
        code = "deployed"
        if self.c.strategy.name == "wrapper":
            if snap and live.get("CodeSha256") != snap.code_sha256:
                raise ChangeRefused(self.c.function_name, "strategy wrapper changes no code, but the CodeSha256 "
                                    "differs from the snapshot's")
            code = "unchanged since the snapshot"
        return (f"strategy {self.c.strategy.name}: {len(env)} variable(s) ({', '.join(sorted(env))}); removed "
                f"{', '.join(moved + removed)}; no moved value left in the configuration; handler "
                f"{live.get('Handler')}; CodeSha256 {live.get('CodeSha256', '')} ({code})")
