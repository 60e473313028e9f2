"""The evidence object: windows and their edges, attribution, environments, the fetch allowance."""

import datetime as dt

from evidence_factory import OPERATOR_ARN, SESSION_ARN, STREAM, T0, at, healthy, invocation_logs, log_event, trail_row

from runbook_lib.validation_evidence import MAX_LOOKBACK, SecretValues, Window, read_start


def test_the_window_holds_its_edges_within_two_seconds():
    window = Window(T0, at(5), at(-60))
    assert window.contains(at(-2)) and window.contains(at(7))
    assert not window.contains(at(-2.001)) and not window.contains(at(7.001))
    assert window.contains("2026-01-01T10:00:03Z") and window.seconds == 5.0
    assert window.to_dict() == {"start": "2026-01-01T10:00:00.000Z", "end": "2026-01-01T10:00:05.000Z",
                                "read_from": "2026-01-01T09:59:00.000Z"}


def test_since_deployment_runs_from_the_deployment_to_the_windows_end():
    window = Window(T0, at(5), at(-60))
    assert window.since_deployment(at(-62)) and window.since_deployment(at(7))
    assert not window.since_deployment(at(-62.5)) and not window.since_deployment(at(7.5))
    assert Window(at(1), at(0), at(0)).seconds == 0.0


def test_reads_start_at_the_deployment_at_most_an_hour_back():
    assert read_start(T0, None) == T0
    assert read_start(T0, at(10)) == T0                      # deployed after the window started
    assert read_start(T0, T0) == T0
    assert read_start(T0, at(-30)) == at(-30)
    assert read_start(T0, T0 - dt.timedelta(hours=3)) == T0 - MAX_LOOKBACK


def test_attribution_needs_the_session_lambda_and_no_error():
    ev = healthy()
    assert ev.expected_session_arn == SESSION_ARN
    assert ev.attributed(trail_row(1)) and ev.by_the_function(trail_row(1))
    denied = trail_row(1, error="AccessDeniedException")
    assert ev.by_the_function(denied) and not ev.attributed(denied)
    assert not ev.attributed(trail_row(1, arn=OPERATOR_ARN)) and not ev.attributed(trail_row(1, agent="aws-cli/2"))


def test_the_function_names_the_account_partition_and_role():
    ev = healthy()
    assert (ev.account, ev.partition, ev.role_name) == ("123456789012", "aws", "orders-api-role")
    ev.config["FunctionArn"] = "arn:aws-cn:lambda:cn-north-1:111122223333:function:f"
    assert (ev.account, ev.partition) == ("111122223333", "aws-cn")
    ev.config = {}
    assert (ev.account, ev.partition, ev.role_name, ev.secret_arn != "") == ("", "aws", "", True)


def test_fetches_since_deployment_and_in_the_window():
    ev = healthy(trail_rows=[trail_row(-100), trail_row(-30), trail_row(1), trail_row(30), trail_row(2, error="X")])
    assert [r["eventTime"] for r in ev.fetches_since_deployment()] == ["2026-01-01T09:59:30Z", "2026-01-01T10:00:01Z"]
    assert [r["eventTime"] for r in ev.fetches_in_window()] == ["2026-01-01T10:00:01Z"]


def test_environments_are_the_streams_with_these_invocations_start_lines():
    ev = healthy()
    ev.log_events = invocation_logs(ev.invocations[:3], "a") + invocation_logs(ev.invocations[3:], "b") + [
        log_event(2, "START RequestId: baseline-1 Version: $LATEST", "c"), log_event(-20, "START RequestId: req-1", "d")]
    assert ev.environments_in_window() == ["a", "b"]
    for inv in ev.invocations:
        inv["request_id"] = ""
    assert ev.environments_in_window() == ["a", "b", "c"]  # no ids to match: every START in the window
    assert STREAM not in ev.environments_in_window()


def test_the_fetch_allowance_is_one_per_environment_per_ttl():
    ev = healthy()
    assert [ev.fetch_allowance(n) for n in (0, 1, 3)] == [0, 1, 3]
    ev.cache_ttl_seconds = 2
    assert ev.fetch_allowance(1) == 3 and ev.fetch_allowance(2) == 6
    ev.cache_ttl_seconds = 5
    assert ev.fetch_allowance(1) == 2
    ev.cache_ttl_seconds = 5.01
    assert ev.fetch_allowance(1) == 1


def test_secret_values_never_show():
    values = SecretValues(["planted-value-1"])
    assert repr(values) == "<1 secret values hidden>" and "planted" not in str(values)


def test_invocations_without_a_request_id_match_every_start_line_and_a_short_ttl_counts():
    ev = healthy()
    for inv in ev.invocations:
        del inv["request_id"]
    assert ev.environments_in_window() == [STREAM]
    ev.cache_ttl_seconds = 0.5
    assert ev.fetch_allowance(1) == 11  # 1 + floor(5 s / 0.5 s)
