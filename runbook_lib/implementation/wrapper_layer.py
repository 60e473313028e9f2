"""Step ``wrapper-layer`` (strategy ``wrapper``): the function's exec-wrapper layer, published once per build.

A version of ``lambda-secrets-runbook-wrapper-<function>`` whose description names this build is
used as it is (re-runs share it); otherwise one is published, its intent written
first with the token that goes into its description, so a crash between the publish and the
ledger write is reconciled by that token.
"""

from __future__ import annotations

from .. import wrapper
from ..change.finders import layer_record
from ..change.intents import intent
from ..exceptions import ChangeRefused
from ..records import WrapperLayer
from ..steps import ADOPT, CREATE, NONE, Step


class WrapperLayerStep(Step):
    name = "wrapper-layer"
    permissions = wrapper.PERMISSIONS

    def __init__(self, ctx):
        self.c = ctx

    def plan(self):
        version = wrapper.find_version(self.c.lam, self.c.function_name, build=wrapper.build_id())
        if version is None:
            return [self.c.row(self.name, wrapper.layer_name(self.c.function_name), CREATE, f"publish the runbook's layer (build "
                               f"{wrapper.build_id()}): {wrapper.WRAPPER_PATH} and its Python and Node.js fetchers, "
                               "no secret in it")]
        arn = version["LayerVersionArn"]
        if self.c.ledger.latest(WrapperLayer, arn) is None:
            return [self.c.row(self.name, arn, ADOPT, f"version {version['Version']} of this build exists (an "
                               "earlier run): use it, and record it so backout deletes it once the function no longer uses it")]
        return [self.c.row(self.name, arn, NONE, f"version {version['Version']} of this build, recorded")]

    def apply(self):
        version = wrapper.find_version(self.c.lam, self.c.function_name, build=wrapper.build_id())
        if version is None:
            token = self.c.token("wrapper-layer")
            with intent(self.c.ledger, "wrapper_layer", wrapper.layer_name(self.c.function_name), token, self.name):
                published = wrapper.publish(self.c.lam, self.c.function_name, token)
                self.c.ledger.put(layer_record(published, self.name))
        elif self.c.ledger.latest(WrapperLayer, version["LayerVersionArn"]) is None:
            self.c.ledger.put(layer_record(version, self.name,
                                           self.c.adopted_action(WrapperLayer, version["LayerVersionArn"])))

    def verify(self):
        record = self.c.ledger.latest(WrapperLayer)
        live = wrapper.get_version(self.c.lam, record.resource) if record else None
        if live is None:
            raise ChangeRefused(wrapper.layer_name(self.c.function_name), "no version of the runbook's layer after publishing")
        sha = (live.get("Content") or {}).get("CodeSha256", "")
        if sha != wrapper.layer_sha256():
            raise ChangeRefused(record.resource, f"the layer's CodeSha256 {sha[:12]}… is not this build's")
        return f"{record.resource} holds build {wrapper.build_id()} (CodeSha256 {sha[:12]}…)"
