"""Lambda@Edge request documents and eligibility rules (no CloudFront call needed)."""

import pytest

from runbook_lib import edge

ARN = "arn:aws:lambda:us-east-1:123456789012:function:orders-api:7"


def config_with(items):
    return {"DefaultCacheBehavior": {"TargetOriginId": "o", "LambdaFunctionAssociations": {
        "Quantity": len(items), **({"Items": items} if items else {})}}}


def test_viewer_request_is_added_and_other_event_types_kept():
    origin = {"LambdaFunctionARN": "arn:aws:lambda:us-east-1:123456789012:function:other:1",
              "EventType": "origin-response", "IncludeBody": False}
    new = edge.with_viewer_request(config_with([origin]), ARN)
    assocs = new["DefaultCacheBehavior"]["LambdaFunctionAssociations"]
    assert assocs["Quantity"] == 2 and origin in assocs["Items"]
    assert edge.viewer_request_arn(new) == ARN
    assert new["DefaultCacheBehavior"]["TargetOriginId"] == "o"


def test_viewer_request_replaced_then_removed():
    old = {"LambdaFunctionARN": ARN[:-1] + "3", "EventType": "viewer-request", "IncludeBody": False}
    replaced = edge.with_viewer_request(config_with([old]), ARN)
    assert replaced["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Quantity"] == 1
    assert edge.viewer_request_arn(replaced) == ARN
    removed = edge.with_viewer_request(replaced, None)
    assert removed["DefaultCacheBehavior"]["LambdaFunctionAssociations"] == {"Quantity": 0}
    assert edge.viewer_request_arn(removed) is None


def test_latest_is_refused():
    with pytest.raises(ValueError, match="numbered version"):
        edge.with_viewer_request(config_with([]), ARN[:-1] + "$LATEST")


def test_edge_problems():
    assert edge.edge_problems({"Architectures": ["x86_64"]}, "us-east-1", {}) == []
    problems = edge.edge_problems({"Architectures": ["arm64"], "VpcConfig": {"SubnetIds": ["s"]}},
                                  "eu-west-1", {"TABLE_NAME": 1})
    assert len(problems) == 4 and "us-east-1" in problems[0] and "TABLE_NAME" in problems[1]
