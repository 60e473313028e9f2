"""runbook_lib.lab.botocore_data: one botocore loader, many sessions of their own."""

import botocore.session

from runbook_lib.lab.botocore_data import botocore_loader, botocore_session


def test_sessions_share_the_parsed_models():
    first, second = botocore_session(), botocore_session()
    assert first is not second
    assert first.get_component("data_loader") is second.get_component("data_loader") is botocore_loader()
    raw = botocore_loader().load_service_model("secretsmanager", "service-2")
    assert raw is botocore_loader().load_service_model("secretsmanager", "service-2")  # parsed once
    assert first.get_service_model("secretsmanager").operation_names == \
        botocore.session.Session().get_service_model("secretsmanager").operation_names  # what botocore reads


def test_sessions_keep_their_own_credentials():
    first, second = botocore_session(), botocore_session()
    first.set_credentials("AKIAFIRSTEXAMPLE", "first-secret")
    second.set_credentials("AKIASECONDEXAMPLE", "second-secret")
    assert first.get_credentials().access_key == "AKIAFIRSTEXAMPLE"
    assert second.get_credentials().access_key == "AKIASECONDEXAMPLE"


def test_clients_of_a_shared_session_work():
    client = botocore_session().create_client("sts", region_name="us-east-1", aws_access_key_id="AKIAEXAMPLE",
                                               aws_secret_access_key="x", endpoint_url="http://127.0.0.1:9")
    assert client.meta.service_model.service_name == "sts"
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
