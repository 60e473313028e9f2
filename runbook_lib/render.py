"""Escaping for everything the runbook renders: terminal, HTML, Markdown and CSV.

Much of what a run shows comes from AWS and is chosen by whoever controls the account being
audited: zip and layer member names, error messages, tag values. Each output format gets
one function here, applied where the text is rendered, so such a name is shown as text
and never acts as markup, a formula or a terminal command:

* :func:`visible`, :func:`terminal`: control characters (ANSI escapes, carriage returns,
  bidirectional overrides) become visible escapes such as ``\\x1b``;
* :func:`html_text` and :func:`escaped_style` (pandas ``Styler``, which does not escape by
  default); :func:`inert_html_document` adds a Content-Security-Policy that forbids every
  script to an exported page;
* :func:`md_cell`: a Markdown table cell (pipes, backticks, HTML, newlines);
* :func:`csv_cell`, :func:`csv_safe_frame`, :func:`neutralise_csv_file`: formula
  prefixes (``= + - @``, tab, carriage return) neutralised as OWASP recommends.

Examples
--------
>>> terminal("orders\\x1b[2J")
'orders\\\\x1b[2J'
>>> html_text('<img src=x onerror="alert(1)">')
'&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
>>> md_cell("a|b `c`")
'a\\\\|b \\\\`c\\\\`'
>>> csv_cell('=HYPERLINK("http://x")'), csv_cell("-12.5")
('\\'=HYPERLINK("http://x")', '-12.5')
"""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

#: C0 and C1 control characters, DEL, and the Unicode characters that reorder or break
#: lines (bidirectional overrides, isolates and marks; line and paragraph separators).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: Characters that make structure, markup or links in a Markdown table cell; CommonMark lets
#: any of them be backslash-escaped, and GitHub's tables read ``\\|`` as a literal pipe. ``_``
#: stays as it is: it is in most names (``DB_PASSWORD``) and emphasises nothing inside a word.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|~&])")
#: Cell prefixes a spreadsheet reads as the start of a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

#: Policy of every exported notebook page: it is evidence to read, so nothing runs in it
#: (no script, inline or from a CDN) and it loads nothing from anywhere.
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                           "font-src data:; base-uri 'none'; form-action 'none'")


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value) -> str:
    """``value`` as text with every control character written as a visible escape."""
    return _UNSAFE.sub(_escape_char, str(value))


def terminal(value) -> str:
    """One line that is safe to print: no ANSI escape, carriage return or newline acts.

    Examples
    --------
    >>> terminal("ok\\rFAIL")
    'ok\\\\x0dFAIL'
    """
    return visible(value)


def html_text(value) -> str:
    """``value`` as HTML text: markup characters and quotes escaped, controls visible."""
    return html.escape(visible(value), quote=True)


def md_cell(value) -> str:
    """``value`` as one Markdown table cell that renders as exactly this text.

    Newlines become spaces (a cell is one line), controls become visible escapes, and
    every character with a meaning in Markdown or HTML is backslash-escaped.
    """
    text = re.sub(r"\r\n|\r|\n", " ", str(value))
    return _MARKDOWN_SPECIAL.sub(r"\\\1", visible(text)).strip()


def csv_cell(value):
    """A CSV cell that a spreadsheet cannot read as a formula (strings only; numbers pass).

    A leading ``'`` is what OWASP recommends: spreadsheets show the text as it was.
    Control characters become visible escapes first, so a leading tab or carriage
    return is neutralised by that already.
    """
    if not isinstance(value, str):
        return value
    text = visible(value)
    if text.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_safe_frame(frame):
    """A copy of a pandas DataFrame whose string cells and column names pass :func:`csv_cell`.

    Examples
    --------
    >>> csv_safe_frame(frame).to_csv(path, index=False)   # doctest: +SKIP
    """
    safe = frame.copy()
    safe.columns = [csv_cell(c) for c in safe.columns]
    for column in safe.columns:
        if safe[column].dtype == object:
            safe[column] = safe[column].map(csv_cell)
    return safe


def neutralise_csv_file(path: str | Path) -> bool:
    """Rewrite a CSV file with every cell through :func:`csv_cell`; True when it changed.

    Idempotent: a neutralised cell starts with ``'`` and is left as it is.
    """
    path = Path(path)
    with open(path, encoding="utf-8", errors="replace", newline="") as fh:  # keep \r inside cells
        rows = list(csv.reader(fh))
    safe = [[csv_cell(cell) for cell in row] for row in rows]
    if safe == rows:  # nothing to neutralise: the file keeps its bytes
        return False
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(safe)
    return True


def _visible_if_text(value):
    return visible(value) if isinstance(value, str) else value


def escaped_style(data):
    """A pandas ``Styler`` that HTML-escapes every cell, index label and column label.

    ``data`` is a DataFrame or a Styler. pandas escapes a DataFrame's HTML, but a
    Styler prints cells as they are unless told otherwise; this tells it.

    Examples
    --------
    >>> escaped_style(frame).apply(colour, subset=["status"]).hide(axis="index")   # doctest: +SKIP
    """
    from pandas.io.formats.style import Styler

    styler = data if isinstance(data, Styler) else data.style
    frame = styler.data
    text_columns = [c for c in frame.columns if frame[c].dtype == object]
    styler = styler.format(escape="html")
    if text_columns:
        styler = styler.format(_visible_if_text, escape="html", subset=text_columns)
    for axis in (0, 1):
        styler = styler.format_index(_visible_if_text, escape="html", axis=axis)
    return styler


#: Exported pages show every cell whole: a table fits its output instead of scrolling sideways, so a
#: long word (an ARN, a session identity) may break anywhere, while every cell keeps room for a short
#: status (PASS, WARN) whole.
CELL_CSS = ("overflow-wrap: anywhere; white-space: normal; text-align: left; vertical-align: top; "
            "min-width: 5ch;")
READABLE_CSS = (f"td, th {{ {CELL_CSS} }} "
                "pre { white-space: pre-wrap; overflow-wrap: anywhere; }")


def show_full_tables() -> None:
    """Tell pandas to display every row, column and character of a table (no ``...`` anywhere).

    A notebook calls it once (:func:`runbook_lib.context.start_notebook`): evidence an
    auditor reads is never cut to pandas' 50 characters per cell or 60 rows.
    """
    import pandas as pd

    for option in ("display.max_colwidth", "display.max_rows", "display.max_columns"):
        pd.set_option(option, None)


def readable_table(frame):
    """A DataFrame as an escaped ``Styler`` whose cells wrap long words instead of overflowing."""
    styler = escaped_style(frame).hide(axis="index")
    return styler.set_table_styles([{"selector": "td, th", "props": CELL_CSS}], overwrite=False)


def inert_html_document(document: str) -> str:
    """An exported HTML page with :data:`CONTENT_SECURITY_POLICY` as the first thing in its head.

    Raises
    ------
    ValueError
        The document has no ``<head>``: it cannot be made inert, so it is not written.
    """
    match = re.search(r"<head(\s[^>]*)?>", document, flags=re.IGNORECASE)
    if match is None:
        raise ValueError("exported HTML has no <head>: cannot add its Content-Security-Policy")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
    head_end = re.search(r"</head>", document, flags=re.IGNORECASE)
    if head_end is not None:  # last in the head, so it wins over the template's own rules
        document = document[:head_end.start()] + f"<style>{READABLE_CSS}</style>" + document[head_end.start():]
    return document[:match.end()] + meta + document[match.end():]
