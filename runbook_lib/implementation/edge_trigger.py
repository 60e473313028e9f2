"""Step ``edge``: publish a version and associate it as the distribution's viewer-request trigger."""

from __future__ import annotations

from .. import edge, functions
from ..change.intents import intent, write_ahead
from ..exceptions import ChangeRefused
from ..records import EdgeAssociation, EdgeVersion
from ..steps import CREATE, NONE, UPDATE, Step


class EdgeStep(Step):
    name = "edge"
    permissions = ("lambda:PublishVersion", "lambda:GetFunction", "lambda:EnableReplication*",
                   "cloudfront:GetDistribution", "cloudfront:GetDistributionConfig",
                   "cloudfront:UpdateDistribution", "iam:CreateServiceLinkedRole")

    def __init__(self, ctx):
        self.c = ctx
        self.distribution_id = ctx.edge_distribution_id

    def plan(self):
        config, _ = edge.get_distribution_config(self.c.cf, self.distribution_id)
        associated = edge.viewer_request_arn(config)
        record = self.c.ledger.latest(EdgeAssociation, self.distribution_id)
        if record and associated == record.version_arn and record.code_sha256 == self.c.live().get("CodeSha256"):
            return [self.c.row(self.name, self.distribution_id, NONE, f"viewer-request runs {associated}")]
        return [self.c.row(self.name, self.distribution_id, UPDATE if associated else CREATE,
                           "publish a version and associate it as viewer-request on the default cache behaviour"
                           + (f" (replacing {associated})" if associated else ""))]

    def apply(self):
        token = self.c.token(f"edge-{self.c.live().get('CodeSha256', '')}")
        with intent(self.c.ledger, "edge_version", self.c.function_name, token, self.name):
            published = functions.publish_version(self.c.lam, self.c.function_name,
                                                  f"lambda-secrets-runbook edge {token} {self.c.change_ticket}")
            self.c.ledger.put(EdgeVersion(resource=published["FunctionArn"], step=self.name,
                                          version=str(published["Version"])))
        self.c.record_function_state(self.name)
        config, _ = edge.get_distribution_config(self.c.cf, self.distribution_id)
        earlier = self.c.ledger.latest(EdgeAssociation, self.distribution_id)
        previous = earlier.previous_arn if earlier else edge.viewer_request_arn(config)
        association = EdgeAssociation(resource=self.distribution_id, action="changed" if previous else "created",
                                      step=self.name, version_arn=published["FunctionArn"], previous_arn=previous,
                                      event_type=edge.EVENT_TYPE, code_sha256=published["CodeSha256"])
        with write_ahead(self.c.ledger, association):
            edge.set_viewer_request(self.c.cf, self.distribution_id, published["FunctionArn"])
        edge.wait_deployed(self.c.cf, self.distribution_id, delay=self.c.wait_delay)

    def verify(self):
        config, _ = edge.get_distribution_config(self.c.cf, self.distribution_id)
        record = self.c.ledger.latest(EdgeAssociation, self.distribution_id)
        associated = edge.viewer_request_arn(config)
        if not record or associated != record.version_arn:
            raise ChangeRefused(self.distribution_id, "viewer-request association not in the distribution")
        return f"distribution {self.distribution_id} viewer-request -> {associated}"
