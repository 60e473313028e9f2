"""Backout step ``edge``: remove the viewer-request association (or put the previous one back).

The published version and its edge replicas stay: CloudFront deletes replicas hours after
the association is gone, and only then can the version be deleted.
"""

from __future__ import annotations

from .. import edge
from ..exceptions import ChangeRefused
from ..records import EdgeAssociation
from ..steps import BLOCKED, DELETE, NONE, UPDATE
from .undo import RecordUndo


class EdgeUndo(RecordUndo):
    name = "edge"
    permissions = ("cloudfront:GetDistributionConfig", "cloudfront:UpdateDistribution", "cloudfront:GetDistribution")
    kinds = (EdgeAssociation,)
    none_reason = "no Lambda@Edge association in the ledger"

    def _live(self, record: EdgeAssociation) -> str | None:
        config, _ = edge.get_distribution_config(self.c.cf, record.resource)
        return edge.viewer_request_arn(config)

    def check(self, record):
        live = self._live(record)
        if live == record.version_arn:
            previous = record.previous_arn
            return (UPDATE if previous else DELETE,
                    (f"restore viewer-request to {previous}" if previous else "remove the viewer-request association")
                    + f"; {record.version_arn} and its edge replicas stay (CloudFront deletes replicas hours "
                    "later; delete the version after that)")
        if live == record.previous_arn:
            return NONE, "association already removed"
        return BLOCKED, (f"viewer-request now runs {live or 'nothing'}, not the version the runbook associated: "
                         "changed outside the runbook, left alone")

    def undo(self, record):
        edge.set_viewer_request(self.c.cf, record.resource, record.previous_arn)
        edge.wait_deployed(self.c.cf, record.resource)

    def confirm(self, record):
        if self._live(record) != record.previous_arn:
            raise ChangeRefused(record.resource, "viewer-request association still not as before")
        return "association removed", True
