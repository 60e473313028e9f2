"""``no-secret-in-logs``: values of the secret, foreign credentials, truncated reads, no logs."""

from evidence_factory import STREAM, healthy

from runbook_lib.catalog import FAIL, PASS, SKIP, WARN, Verdict
from runbook_lib.catalog.no_secret_in_logs import foreign_findings, judge

HIT = {"fingerprint": "fp:aaaa", "preview": "pk…(27)", "events": 3, "streams": ["s"]}


def scan(**changes):
    base = {"values_in_secret": 2, "values_searched": 2, "values_too_short_to_search": 0,
            "secret_fingerprints": ["fp:aaaa", "fp:bbbb"], "hits": [], "scanner_findings": []}
    return {**base, **changes}


def test_clean_logs_pass_saying_what_was_searched():
    verdict = judge(healthy())
    assert (verdict.status, verdict.reason) == (PASS, "15 log event(s) in 1 stream(s) searched for 2 value(s) of "
                                                      "the secret and by the scanner: none found")


def test_a_value_of_the_secret_fails_by_fingerprint():
    verdict = judge(healthy(value_scan=scan(hits=[HIT])))
    assert (verdict.status, verdict.reason) == (FAIL, "3 log event(s) hold a value of the secret (fp:aaaa)")
    assert verdict.evidence["hits"] == [HIT]


def test_a_foreign_credential_found_by_the_scanner_fails_too():
    found = {"rule": "aws-access-key-id", "fingerprint": "fp:other", "path": "s", "line": 4, "redacted": "AKIA…(20)"}
    verdict = judge(healthy(value_scan=scan(scanner_findings=[found])))
    assert (verdict.status, verdict.reason) == (FAIL, "1 credential(s) that are not the secret's in the logs: "
                                                      "aws-access-key-id")
    assert verdict.evidence["foreign_credentials"] == [found]


def test_a_scanner_finding_of_the_secret_itself_fails_as_such():
    own = {"rule": "generic-secret", "fingerprint": "fp:bbbb", "path": "s", "line": 2}
    verdict = judge(healthy(value_scan=scan(scanner_findings=[own])))
    assert (verdict.status, verdict.reason) == (FAIL, "1 scanner finding(s) of the secret's values in the logs")
    assert foreign_findings(scan(scanner_findings=[own])) == []


def test_hits_and_foreign_credentials_are_both_named():
    found = {"rule": "github-token", "fingerprint": "fp:x"}
    verdict = judge(healthy(value_scan=scan(hits=[HIT], scanner_findings=[found])))
    assert verdict.reason == ("3 log event(s) hold a value of the secret (fp:aaaa); 1 credential(s) that are not "
                              "the secret's in the logs: github-token")


def test_a_truncated_read_warns_instead_of_passing():
    verdict = judge(healthy(logs_truncated=True))
    assert (verdict.status, verdict.reason) == (WARN, "the log read stopped at its limit: later events were not "
                                                      "searched")


def test_a_truncated_read_with_a_hit_still_fails():
    assert judge(healthy(logs_truncated=True, value_scan=scan(hits=[HIT]))).status == FAIL


def test_no_log_event_warns():
    verdict = judge(healthy(log_events=[]))
    assert (verdict.status, verdict.reason) == (WARN, "no log event of the function since 2026-01-01T09:59:00.000Z: "
                                                      "nothing was searched (log delivery may lag)")


def test_values_too_short_to_search_warn():
    verdict = judge(healthy(value_scan=scan(values_searched=0, values_too_short_to_search=2)))
    assert (verdict.status, verdict.reason) == (WARN, "none of the secret's 2 value(s) is long enough to search for: "
                                                      "the logs were searched by the scanner only")


def test_missing_sources_fail_in_order():
    assert judge(healthy(errors={"logs": "denied", "log_values": "no"})).reason == "CloudWatch Logs could not be read: denied"
    assert judge(healthy(errors={"log_values": "GetSecretValue denied"})).reason == (
        "The secret (to compare by fingerprint) could not be read: GetSecretValue denied")
    assert judge(healthy(errors={"secret": "gone"})).status == FAIL


def test_no_secret_skips():
    assert judge(healthy(secret={})).status == SKIP


# -- whole verdicts --------------------------------------------------------------------------------
def evidence_of(ev, scanned=None, foreign=()) -> dict:
    result = scanned if scanned is not None else scan()
    return {"events_scanned": len(ev.log_events), "truncated": ev.logs_truncated, "streams": [STREAM],
            "window": ev.window.to_dict(), "values_in_secret": result["values_in_secret"],
            "values_searched": result["values_searched"],
            "values_too_short_to_search": result["values_too_short_to_search"],
            "secret_fingerprints": result["secret_fingerprints"], "hits": result["hits"],
            "scanner_findings": result["scanner_findings"], "foreign_credentials": list(foreign)}


def test_whole_verdict_of_a_pass():
    ev = healthy()
    assert judge(ev) == Verdict(PASS, "15 log event(s) in 1 stream(s) searched for 2 value(s) of the secret and by the "
                                      "scanner: none found", evidence_of(ev))


def test_whole_verdicts_of_a_hit_a_foreign_key_and_a_truncated_read():
    foreign = {"rule": "aws-access-key-id", "fingerprint": "fp:cccc", "redacted": "AK…(20)"}
    ev = healthy(value_scan=scan(hits=[HIT, {**HIT, "fingerprint": "fp:bbbb", "events": 1}],
                                 scanner_findings=[foreign, {**foreign, "rule": "generic-api-key"}]))
    assert judge(ev) == Verdict(
        FAIL, "4 log event(s) hold a value of the secret (fp:aaaa, fp:bbbb); 2 credential(s) that are not the "
              "secret's in the logs: aws-access-key-id, generic-api-key",
        evidence_of(ev, ev.value_scan, foreign=[foreign, {**foreign, "rule": "generic-api-key"}]))
    truncated = healthy(logs_truncated=True)
    assert judge(truncated) == Verdict(WARN, "the log read stopped at its limit: later events were not searched",
                                       evidence_of(truncated))


def test_whole_verdicts_of_nothing_to_search():
    short = healthy(value_scan=scan(values_searched=0, values_too_short_to_search=2))
    assert judge(short) == Verdict(WARN, "none of the secret's 2 value(s) is long enough to search for: the logs were "
                                         "searched by the scanner only", evidence_of(short, short.value_scan))
    empty = healthy(log_events=[])
    verdict = judge(empty)
    assert verdict.evidence["streams"] == [] and verdict.evidence["events_scanned"] == 0
    assert verdict.evidence_file is None


def test_a_scan_without_its_keys_is_read_as_empty():
    ev = healthy(value_scan={"values_searched": 1})
    verdict = judge(ev)
    assert verdict.status == PASS and verdict.evidence["scanner_findings"] == []
    assert verdict.evidence["foreign_credentials"] == [] and verdict.evidence["hits"] is None
    assert foreign_findings({"scanner_findings": [{"rule": "r", "fingerprint": "fp:x"}]}) == [
        {"rule": "r", "fingerprint": "fp:x"}]  # no fingerprints of the secret: every finding is foreign


def test_a_skip_has_no_evidence_file():
    assert judge(healthy(secret={})) == Verdict(SKIP, "no secret in the ledger or SECRET_ID: nothing to compare the "
                                                      "logs with", evidence_file="")
