"""Step ``function``: variables out, ``SECRET_ID`` in, code deployed.

Every call that changes the function is preceded by a record: ``function_config`` (what
backout restores from the snapshot, and which fields) before anything, ``function_code``
before a deploy, and an intent holding the state each call should produce, so a crash
between a call and the ledger write leaves a state backout recognises as the runbook's.
"""

from __future__ import annotations

import hashlib
import json

from .. import edge, functions, iam
from ..change.intents import intent
from ..exceptions import ChangeRefused
from ..handlers import REFERENCE_HANDLER
from ..records import FunctionCode, FunctionConfig
from ..steps import NONE, UPDATE, Step


class FunctionStep(Step):
    name = "function"
    permissions = ("lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration",
                   "lambda:UpdateFunctionCode", "iam:PassRole")

    def __init__(self, ctx):
        self.c = ctx

    def _kept_environment(self) -> dict:
        """Non-secret variables: from the live configuration, or from the snapshot for edge (none live)."""
        moved, removed = self.c.variables()
        if self.c.edge_mode and self.c.snapshot():
            source = functions.environment(self.c.snapshot_config())
        else:
            source = functions.environment(self.c.live())
        return {k: v for k, v in source.items() if k not in set(moved) | set(removed) | {"SECRET_ID"}}

    def wanted(self, secret_arn: str | None) -> dict:
        live = self.c.live()
        kept = self._kept_environment()
        out = {"handler": live.get("Handler"), "role": self.c.role_arn() or live["Role"], "package": None}
        if self.c.edge_mode:
            out["environment"] = {}
            out.update(layers=[], timeout=min(live.get("Timeout", 3), edge.VIEWER_MAX_TIMEOUT),
                       memory=min(live.get("MemorySize", 128), edge.VIEWER_MAX_MEMORY))
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
                            and "SECRET_ID" in wanted["environment"] else ""))
        if wanted["package"] is not None and functions.code_sha256(wanted["package"]) != live.get("CodeSha256"):
            diffs.append("code (reference handler)" if self.c.use_reference_handler else "code (code_path)")
        if live.get("Handler") != wanted["handler"]:
            diffs.append(f"handler to {wanted['handler']}")
        if live.get("Role") != wanted["role"]:
            diffs.append(f"role to {iam.role_name_from_arn(wanted['role'])}")
        for key, field in (("layers", "Layers"), ("timeout", "Timeout"), ("memory", "MemorySize")):
            if key in wanted:
                have = functions.layer_arns(live) if key == "layers" else live.get(field)
                if have != wanted[key]:
                    diffs.append(f"{field} for Lambda@Edge")
        return diffs

    def plan(self):
        diffs = self._differences(self.c.live(), self.wanted(self.c.secret_arn()))
        if diffs:
            return [self.c.row(self.name, self.c.function_name, UPDATE, "; ".join(diffs))]
        return [self.c.row(self.name, self.c.function_name, NONE, "no secret variable, SECRET_ID set, code deployed")]

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
            changed_fields=[f for f in functions.CHANGEABLE_FIELDS if f in fields]))

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
                code_sha256=sha, source="reference handler" if self.c.use_reference_handler else "code_path"))
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
        return (f"{len(env)} variable(s) kept ({', '.join(sorted(env))}); removed {', '.join(moved + removed)}; "
                f"handler {live.get('Handler')}; CodeSha256 {live.get('CodeSha256', '')}")
