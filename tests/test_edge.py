"""Lambda@Edge request documents and eligibility rules (no CloudFront call needed)."""

import pytest

from runbook_lib import edge
from runbook_lib.exceptions import AwsCallError

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


# -- waiting for a deployment, with progress ------------------------------------------------------
class _ScriptedCloudFront:
    """``get_waiter("distribution_deployed")`` answering each one-attempt wait from ``statuses`` as botocore does."""

    def __init__(self, statuses, endpoint_url="https://cloudfront.amazonaws.com"):
        self.statuses, self.configs = list(statuses), []
        self.meta = type("Meta", (), {"endpoint_url": endpoint_url})()

    def get_waiter(self, name):
        assert name == "distribution_deployed"
        return self

    def wait(self, Id, WaiterConfig):
        from botocore.exceptions import WaiterError

        self.configs.append(WaiterConfig)
        if self.statuses.pop(0) != "Deployed":
            raise WaiterError(name="DistributionDeployed", reason="Max attempts exceeded",
                              last_response={"Distribution": {"Status": "InProgress"}})


def _stubbed_cloudfront(statuses, endpoint_url="https://cloudfront.amazonaws.com"):
    cf = _ScriptedCloudFront(statuses, endpoint_url)
    return cf, cf


def test_waiting_for_a_deployment_says_how_long_at_every_poll():
    cf, stub = _stubbed_cloudfront(["InProgress", "InProgress", "Deployed"])
    said = []
    edge.wait_deployed(cf, "E1", delay=0, max_attempts=5, say=said.append)
    assert stub.statuses == [] and stub.configs == [{"Delay": 0, "MaxAttempts": 1}] * 3
    assert said == ["CloudFront E1: deploying, 0 s of at most 0 s"] * 2 + ["CloudFront E1: deployed after 0 s"]


def test_a_distribution_deployed_at_once_says_nothing():
    cf, _ = _stubbed_cloudfront(["Deployed"])
    said = []
    edge.wait_deployed(cf, "E1", delay=0, max_attempts=5, say=said.append)
    assert said == []


def test_a_deployment_longer_than_the_waiter_allows_is_a_one_line_error():
    cf, _ = _stubbed_cloudfront(["InProgress"] * 3)
    said = []
    with pytest.raises(AwsCallError, match=r"GetDistribution \(waiter distribution_deployed\) on E1 failed: "
                                           r"WaiterError .*Max attempts exceeded"):
        edge.wait_deployed(cf, "E1", delay=0, max_attempts=3, say=said.append)
    assert len(said) == 2


def test_the_lab_is_polled_every_quarter_second_within_the_same_budget(monkeypatch):
    slept = []
    monkeypatch.setattr(edge.time, "sleep", slept.append)
    cf, stub = _stubbed_cloudfront(["InProgress", "InProgress", "Deployed"], "http://127.0.0.1:41231")
    said = []
    edge.wait_deployed(cf, "E1", delay=20, max_attempts=60, say=said.append)
    assert stub.configs == [{"Delay": 0.25, "MaxAttempts": 1}] * 3 and slept == [0.25, 0.25]
    assert said[0].endswith("of at most 1200 s")  # 4800 polls of 0.25 s: the waiter's 20 minutes


def test_aws_is_polled_at_the_waiters_pace(monkeypatch):
    slept = []
    monkeypatch.setattr(edge.time, "sleep", slept.append)
    cf, stub = _stubbed_cloudfront(["InProgress", "Deployed"])
    said = []
    edge.wait_deployed(cf, "E1", delay=20, max_attempts=60, say=said.append)
    assert stub.configs == [{"Delay": 20, "MaxAttempts": 1}] * 2 and slept == [20]
    assert said[0].endswith("of at most 1200 s")


def test_the_deployment_budget_is_the_waiters():
    assert edge.DEPLOY_WAIT_SECONDS == edge.DEPLOY_DELAY_SECONDS * edge.DEPLOY_MAX_ATTEMPTS == 1200
