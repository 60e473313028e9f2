"""CloudFront: Lambda@Edge associations survive Create/UpdateDistribution in the lab."""

import uuid

from runbook_lib.lab import cloudfront

EDGE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:web-edge-router:{}"


def _config(associations):
    behavior = {"TargetOriginId": "origin", "ViewerProtocolPolicy": "redirect-to-https", "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}}}
    if associations is not None:
        behavior["LambdaFunctionAssociations"] = {"Quantity": len(associations), "Items": associations}
    return {"CallerReference": uuid.uuid4().hex, "Comment": "edge", "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{"Id": "origin", "DomainName": "example.com",
                                                  "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                                                         "OriginProtocolPolicy": "https-only"}}]},
            "DefaultCacheBehavior": behavior}


def _associations(config):
    found = config["DefaultCacheBehavior"]["LambdaFunctionAssociations"]
    return found["Quantity"], [(i["LambdaFunctionARN"], i["EventType"]) for i in found.get("Items", [])]


def test_moto_still_drops_lambda_function_associations():
    assert cloudfront.moto_drops_associations() is True


def test_associations_persist_across_create_update_and_get(lab):
    cf = lab.client("cloudfront")
    viewer = {"LambdaFunctionARN": EDGE_ARN.format(1), "EventType": "viewer-request", "IncludeBody": False}
    created = cf.create_distribution(DistributionConfig=_config([viewer]))
    dist_id = created["Distribution"]["Id"]
    assert _associations(created["Distribution"]["DistributionConfig"]) == (1, [(EDGE_ARN.format(1), "viewer-request")])

    got = cf.get_distribution_config(Id=dist_id)
    assert _associations(got["DistributionConfig"]) == (1, [(EDGE_ARN.format(1), "viewer-request")])

    config = got["DistributionConfig"]
    origin = {"LambdaFunctionARN": EDGE_ARN.format(2), "EventType": "origin-request", "IncludeBody": True}
    config["DefaultCacheBehavior"]["LambdaFunctionAssociations"] = {"Quantity": 2, "Items": [
        {**viewer, "LambdaFunctionARN": EDGE_ARN.format(2)}, origin]}
    cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=config)

    expected = (2, [(EDGE_ARN.format(2), "viewer-request"), (EDGE_ARN.format(2), "origin-request")])
    assert _associations(cf.get_distribution(Id=dist_id)["Distribution"]["DistributionConfig"]) == expected
    again = cf.get_distribution_config(Id=dist_id)
    assert _associations(again["DistributionConfig"]) == expected
    items = again["DistributionConfig"]["DefaultCacheBehavior"]["LambdaFunctionAssociations"]["Items"]
    assert items[1]["IncludeBody"] is True

    config = again["DistributionConfig"]
    config["DefaultCacheBehavior"]["LambdaFunctionAssociations"] = {"Quantity": 0}
    cf.update_distribution(Id=dist_id, IfMatch=again["ETag"], DistributionConfig=config)
    assert _associations(cf.get_distribution_config(Id=dist_id)["DistributionConfig"])[0] == 0


def test_update_is_recorded_with_the_association(lab):
    import json

    cf = lab.client("cloudfront")
    dist_id = cf.create_distribution(DistributionConfig=_config(None))["Distribution"]["Id"]
    got = cf.get_distribution_config(Id=dist_id)
    config = got["DistributionConfig"]
    config["DefaultCacheBehavior"]["LambdaFunctionAssociations"] = {"Quantity": 1, "Items": [
        {"LambdaFunctionARN": EDGE_ARN.format(3), "EventType": "viewer-request", "IncludeBody": False}]}
    cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=config)
    events = lab.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventName", "AttributeValue": "UpdateDistribution"}])["Events"]
    record = json.loads(events[0]["CloudTrailEvent"])
    assert record["eventSource"] == "cloudfront.amazonaws.com"
    assert record["resources"][0]["ARN"] == f"arn:aws:cloudfront::123456789012:distribution/{dist_id}"
    association = record["requestParameters"]["distributionConfig"]["defaultCacheBehavior"][
        "lambdaFunctionAssociations"]["items"][0]
    assert association["lambdaFunctionARN"] == EDGE_ARN.format(3)


def test_moto_still_deploys_a_distribution_at_once():
    assert cloudfront.moto_deploys_at_once() is True


def test_a_distribution_is_in_progress_after_an_update_and_the_runbooks_wait_sees_it_deployed(lab):
    from runbook_lib import edge

    cf = lab.client("cloudfront")
    lab.configure(cloudfront_deploy_seconds=600)  # no loaded machine reaches it: released below
    seen = []

    def release_after_first_poll(parsed=None, **_):  # the wait saw InProgress once: the edge finishes
        seen.append(parsed["Distribution"]["Status"])
        if len(seen) == 1:
            lab.configure(cloudfront_deploy_seconds=0)

    try:
        created = cf.create_distribution(DistributionConfig=_config(None))["Distribution"]
        assert created["Status"] == "InProgress"
        dist_id = created["Id"]
        assert cf.get_distribution(Id=dist_id)["Distribution"]["Status"] == "InProgress"
        lab.configure(cloudfront_deploy_seconds=0)
        assert cf.get_distribution(Id=dist_id)["Distribution"]["Status"] == "Deployed"
        lab.configure(cloudfront_deploy_seconds=600)
        got = cf.get_distribution_config(Id=dist_id)
        cf.update_distribution(Id=dist_id, IfMatch=got["ETag"], DistributionConfig=got["DistributionConfig"])
        assert cf.get_distribution(Id=dist_id)["Distribution"]["Status"] == "InProgress"
        listed = cf.list_distributions()["DistributionList"]["Items"]
        assert {d["Id"]: d["Status"] for d in listed}[dist_id] == "InProgress"
        cf.meta.events.register("after-call.cloudfront.GetDistribution", release_after_first_poll)
        edge.wait_deployed(cf, dist_id, delay=1, max_attempts=10)
    finally:
        lab.configure(cloudfront_deploy_seconds=1)
    assert seen[0] == "InProgress" and seen[-1] == "Deployed" and len(seen) >= 2  # it waited, then saw it done


def test_deploy_time_zero_means_deployed_at_once(lab):
    cf = lab.client("cloudfront")
    lab.configure(cloudfront_deploy_seconds=0)
    try:
        assert cf.create_distribution(DistributionConfig=_config(None))["Distribution"]["Status"] == "Deployed"
    finally:
        lab.configure(cloudfront_deploy_seconds=1)
