"""The leak guard finds handled values in every artifact type, naming file and line only."""

import json
import struct
import zlib

import nbformat

from runbook_lib.leak_guard import scan_run_folder
from runbook_lib.redaction import Fingerprinter

KEY = bytes(range(32))
PLANTED = "Zq8&vR2!mW9pLx4#tK"  # has & and # so HTML and JSON escaping are exercised


def _png_with_text(text: str) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"tEXt", b"Comment\x00" + text.encode())
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def _run_folder(tmp_path, fp):
    (tmp_path / "findings.json").write_text(json.dumps([{"rule": "password", "fingerprint": fp(PLANTED),
                                                          "redacted": "Zq8&…(18)"}]))
    return tmp_path


def _hits(tmp_path):
    return scan_run_folder(tmp_path, Fingerprinter(KEY))


def test_clean_folder_has_no_hits(tmp_path):
    _run_folder(tmp_path, Fingerprinter(KEY))
    (tmp_path / "summary.md").write_text("| check | PASS |\nnothing to see\n")
    assert _hits(tmp_path) == []


def test_print_in_a_notebook_cell_is_caught(tmp_path):
    _run_folder(tmp_path, Fingerprinter(KEY))
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(config)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"config: password={PLANTED}\n")]
    nb.cells = [cell]
    nbformat.write(nb, str(tmp_path / "03_functional_validation.ipynb"))
    [hit] = _hits(tmp_path)
    assert hit.path == "03_functional_validation.ipynb" and hit.line > 0
    assert (PLANTED in str(hit)) is False


def test_html_escaped_and_json_escaped_values_are_caught(tmp_path):
    _run_folder(tmp_path, Fingerprinter(KEY))
    (tmp_path / "03_functional_validation.html").write_text(
        f"<pre>\n&lt;b&gt;{PLANTED.replace('&', '&amp;')}&lt;/b&gt;\n</pre>\n")
    (tmp_path / "invocations.json").write_text(json.dumps({"error": f'bad key "{PLANTED}"'}))
    assert sorted((h.path, h.line) for h in _hits(tmp_path)) == [
        ("03_functional_validation.html", 2), ("invocations.json", 1)]


def test_exception_message_and_log_line_channels(tmp_path):
    _run_folder(tmp_path, Fingerprinter(KEY))
    (tmp_path / "run.log").write_text(f"INFO start\nERROR AuthFailed: token {PLANTED} rejected\n")
    (tmp_path / "run.json").write_text(json.dumps({"reason": f"ValueError: {PLANTED}"}))
    assert sorted(h.path for h in _hits(tmp_path)) == ["run.json", "run.log"]


def test_png_metadata_is_scanned(tmp_path):
    _run_folder(tmp_path, Fingerprinter(KEY))
    (tmp_path / "chart.png").write_bytes(_png_with_text(f"title {PLANTED}"))
    assert [h.path for h in _hits(tmp_path)] == ["chart.png"]


def test_another_key_cannot_match(tmp_path):
    _run_folder(tmp_path, Fingerprinter(b"x" * 32))
    (tmp_path / "run.log").write_text(PLANTED + "\n")
    assert _hits(tmp_path) == []


# -- the detection engine as the runner runs it: the runbook's own words are not values -----------
def _guard_hits(tmp_path):
    from runbook_lib.leak_guard import guard_scanner

    return scan_run_folder(tmp_path, Fingerprinter(KEY), handled=set(), scanner=guard_scanner())


def test_a_response_key_named_like_a_password_is_not_a_leak(tmp_path):
    shape = {"statusCode": "int", "body": {"echo_pw": "str", "ok": "bool"}}
    (tmp_path / "invocations.json").write_text(json.dumps([{"response_shape": shape}], indent=2))
    reason = "response shape differs from the baseline: $.body.echo_pw: missing; $.body.new_pw: not in baseline"
    (tmp_path / "checks.json").write_text(json.dumps([{"id": "functional-parity", "reason": reason}]))
    (tmp_path / "summary.md").write_text(f"| functional-parity | FAIL | {reason} |\n")
    assert _guard_hits(tmp_path) == []


def test_a_real_value_under_that_key_is_still_a_leak(tmp_path):
    (tmp_path / "invocations.json").write_text(json.dumps({"body": {"echo_pw": PLANTED}}))
    (tmp_path / "summary.md").write_text("$.body.echo_pw: hunter2hunter\n")
    hits = _guard_hits(tmp_path)
    assert sorted(h.path for h in hits) == ["invocations.json", "summary.md"]
    assert all("keyword-assignment" in h.what for h in hits)
    assert (PLANTED in " ".join(map(str, hits))) is False


def test_the_ci_and_siem_exports_are_scanned_for_handled_values_and_credentials(tmp_path):
    from runbook_lib.leak_guard import guard_scanner

    _run_folder(tmp_path, Fingerprinter(KEY))
    (tmp_path / "checks.junit.xml").write_text(
        f'<testsuites><testsuite name="v"><testcase name="c"><system-out>PASS: {PLANTED.replace("&", "&amp;")}'
        "</system-out></testcase></testsuite></testsuites>\n")
    (tmp_path / "checks.ocsf.json").write_text(json.dumps([{"message": f"value {PLANTED}"}]))
    (tmp_path / "checks.asff.json").write_text(json.dumps([{"Description": f"value {PLANTED}"}]))
    assert sorted(h.path for h in _hits(tmp_path)) == ["checks.asff.json", "checks.junit.xml", "checks.ocsf.json"]
    # a credential the run never handled is caught in the XML by the detection engine
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    (tmp_path / "checks.junit.xml").write_text(f"<testsuites><testcase name='c'>{token}</testcase></testsuites>\n")
    hits = scan_run_folder(tmp_path, Fingerprinter(KEY), handled=set(), scanner=guard_scanner())
    assert [h.what.split()[0] for h in hits if h.path == "checks.junit.xml"] == ["github-token"]


def test_a_leaking_line_is_named_at_every_place_it_repeats(tmp_path):
    """Lines are judged once per distinct text: each of its places is still a hit of its own."""
    _run_folder(tmp_path, Fingerprinter(KEY))
    leaking = f"token = {PLANTED}"
    (tmp_path / "summary.md").write_text(f"clean\n{leaking}\nclean\n{leaking}\n")
    (tmp_path / "notes.txt").write_text(f"{leaking}\n")
    (tmp_path / "other.txt").write_text("clean\nclean\n")
    places = sorted((h.path, h.line) for h in _hits(tmp_path))
    assert places == [("notes.txt", 1), ("summary.md", 2), ("summary.md", 4)]
