"""The leak guard: prove no value the run handled reached an artifact of the run folder.

The runner knows the run's fingerprint key (it hands it to every notebook) but no
value. Notebooks record the fingerprint of every value they handle (findings of the
test plan, the secret's leaves in validation) in ``findings.json`` and the ledger.
After the notebooks, :func:`scan_run_folder` splits every text artifact into tokens at
several granularities, fingerprints each token with the same key, and reports any
token whose fingerprint is a handled value's: file and line, never the value. The
detection engine also runs over the artifacts, so a secret the run never saw (a
credential printed by a cell) is caught too. It runs with the runbook's own words
allowlisted (:data:`RUNBOOK_WORDS`): a response key named like ``echo_pw`` that went
missing after the change is written ``$.body.echo_pw: missing``, which reads like a
password assignment but holds no value; a real value under that key is still a hit.

Examples
--------
>>> hits = scan_run_folder(run_dir, Fingerprinter(key))   # doctest: +SKIP
>>> [str(h) for h in hits]                                  # doctest: +SKIP
['03_functional_validation.ipynb:412: value of a handled secret (fp:1a2b...)']
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .manifest import scan_folder
from .redaction import Fingerprinter

#: What the runbook itself writes where a value could stand: the words of a response-shape
#: difference (:func:`runbook_lib.evidence.shape_differences`) and the type names of a shape.
RUNBOOK_WORDS = ("missing", "not in baseline", "str", "int", "float", "bool", "NoneType", "list", "dict")

TEXT_SUFFIXES = {".ipynb", ".html", ".json", ".csv", ".md", ".txt", ".log", ".svg", ".xml"}
PNG_SUFFIX = ".png"
# Values are matched as whole tokens; several splits so a value inside
# `key=value`, a URL or a header line is still its own token in one of them.
_COARSE = re.compile(r"[\s\"'<>,;(){}\[\]\\`|]+")
_KEY_VALUE = re.compile(r"[\s\"'<>,;(){}\[\]\\`|:=]+")
_FINE = re.compile(r"[\s\"'<>,;(){}\[\]\\`|:=@/&?#]+")
MIN_TOKEN = 6


@dataclass(frozen=True)
class LeakHit:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def handled_fingerprints(run_dir: Path) -> set[str]:
    """Fingerprints of every value the run handled, as the notebooks recorded them."""
    found: set[str] = set()
    pattern = re.compile(r"fp:[0-9a-f]{16}")
    for name in ("findings.json", "ledger.json", "log_excerpt.json", "cloudtrail_events.json"):
        path = Path(run_dir) / name
        if path.is_file():
            found.update(pattern.findall(path.read_text(errors="replace")))
    return found


def _variants(line: str) -> Iterable[str]:
    yield line
    unescaped = html.unescape(line)
    if unescaped != line:
        yield unescaped
    if "\\" in line:
        try:
            yield json.loads(f'"{line}"')
        except (json.JSONDecodeError, ValueError):
            yield line.replace('\\"', '"').replace("\\n", "\n")


def _tokens(line: str) -> set[str]:
    out: set[str] = set()
    for text in _variants(line):
        for splitter in (_COARSE, _KEY_VALUE, _FINE):
            out.update(t for t in splitter.split(text) if len(t) >= MIN_TOKEN)
    return out


def _png_text(path: Path) -> str:
    """tEXt/iTXt metadata of a PNG (where a chart library could put strings)."""
    data = path.read_bytes()
    chunks, i = [], 8
    while i + 8 <= len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        if kind in (b"tEXt", b"iTXt", b"zTXt"):
            chunks.append(data[i + 8:i + 8 + length].replace(b"\x00", b" ").decode("latin-1"))
        i += 12 + length
    return "\n".join(chunks)


def _artifact_lines(path: Path) -> Iterable[tuple[int, str]]:
    if path.suffix == PNG_SUFFIX:
        text = _png_text(path)
    else:
        text = path.read_text(errors="replace")
        # images embedded in notebooks/HTML are base64: their text chunks are artifacts too
    for number, line in enumerate(text.splitlines(), start=1):
        yield number, line


def guard_scanner():
    """The detection engine with :data:`RUNBOOK_WORDS` allowlisted, or None without the engine."""
    try:
        from .allowlist import allowlist_entry
        from .scanning import Scanner
    except ImportError:  # the guard still matches handled values without the engine
        return None
    return Scanner(allowlist=[allowlist_entry(word) for word in RUNBOOK_WORDS])


def _handled_value_in(line: str, handled: set[str], fingerprinter: Fingerprinter,
                      fingerprints: dict[str, str]) -> str | None:
    """Why ``line`` leaks (the first of its tokens whose fingerprint is a handled value's), or None."""
    for token in _tokens(line):
        fp = fingerprints.get(token)
        if fp is None:
            fp = fingerprints[token] = fingerprinter(token)
        if fp in handled:
            return f"value of a handled secret ({fp})"
    return None


def scan_run_folder(run_dir: str | Path, fingerprinter: Fingerprinter,
                    handled: set[str] | None = None, scanner=None) -> list[LeakHit]:
    """Every place in ``run_dir`` where a handled value (or a detectable secret) appears."""
    run_dir = Path(run_dir)
    handled = handled_fingerprints(run_dir) if handled is None else handled
    hits: list[LeakHit] = []
    fingerprints: dict[str, str] = {}  # a run's artifacts repeat their tokens about ten times over
    # ... and their lines: a cycle's 43,912 lines are 7,539 distinct ones (the page repeats its notebook)
    line_hits: dict[str, str | None] = {}
    files, _ = scan_folder(run_dir)  # regular files only: a link or a device is not an artifact
    for rel, path in files.items():
        if path.suffix not in TEXT_SUFFIXES | {PNG_SUFFIX}:
            continue
        for number, line in _artifact_lines(path) if handled else ():
            if line in line_hits:
                reason = line_hits[line]
            else:
                reason = line_hits[line] = _handled_value_in(line, handled, fingerprinter, fingerprints)
            if reason is not None:
                hits.append(LeakHit(rel, number, reason))
        if scanner is not None and path.suffix in (".ipynb", ".json", ".csv", ".md", ".log", ".txt", ".xml"):
            for finding in scanner.scan_text(path.read_text(errors="replace"), rel):
                hits.append(LeakHit(rel, finding.line or 0, f"{finding.rule} ({finding.redacted})"))
    return hits


def embedded_images(text: str) -> list[bytes]:
    """Base64 PNGs embedded in a notebook or HTML (for tests that inspect chart metadata)."""
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)]
