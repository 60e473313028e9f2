"""Loader of the labelled corpus: Lambda-style files and environment maps with answers.

Files carry their labels at the end of a line: ``⟦S⟧`` (this line holds a secret) or
``⟦N⟧`` (a hard negative: looks like one, is not). Lines without a marker are context.
:func:`load_files` strips the markers before anything scans the text. ``env/*.json``
hold ``{"variables": {...}, "secrets": [names]}``; every other variable is a negative.
Files under ``zipped/`` are scanned as archives: ``orders-api`` is the deployment
package and carries the ``orders-layer`` archive inside it (a nested zip).

Every value in the corpus was generated at random for it; none is a real credential.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parent
_MARKER = re.compile(r" ⟦([SN])⟧$")
ZIP_LABEL = "deployment.zip"
LAYER_MEMBER = "layers/orders-layer.zip"


@dataclass
class LabelledFile:
    rel: str  # path as reported by the scanner
    text: str
    secrets: set[int] = field(default_factory=set)
    negatives: set[int] = field(default_factory=set)


def _strip(rel: str, raw: str) -> LabelledFile:
    lines, labelled = [], LabelledFile(rel, "")
    for number, line in enumerate(raw.split("\n"), start=1):
        m = _MARKER.search(line)
        if m:
            (labelled.secrets if m.group(1) == "S" else labelled.negatives).add(number)
            line = line[:m.start()]
        lines.append(line)
    labelled.text = "\n".join(lines)
    return labelled


def load_files() -> list[LabelledFile]:
    """Plain files (not env maps, not the zipped packages)."""
    out = []
    for path in sorted(CORPUS.rglob("*")):
        rel = path.relative_to(CORPUS).as_posix()
        if not path.is_file() or rel.startswith(("env/", "zipped/")) or path.suffix == ".pyc" \
                or path.name == "corpus.py" or "__pycache__" in rel:
            continue
        out.append(_strip(rel, path.read_text(encoding="utf-8")))
    return out


def load_zipped() -> tuple[bytes, list[LabelledFile]]:
    """The deployment package (with the layer zip nested inside) and its labelled members."""
    members: list[LabelledFile] = []
    layer_buf = io.BytesIO()
    with zipfile.ZipFile(layer_buf, "w", zipfile.ZIP_DEFLATED) as layer:
        root = CORPUS / "zipped" / "orders-layer"
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            labelled = _strip(f"{LAYER_MEMBER}!{name}", path.read_text(encoding="utf-8"))
            layer.writestr(name, labelled.text)
            members.append(labelled)
    package_buf = io.BytesIO()
    with zipfile.ZipFile(package_buf, "w", zipfile.ZIP_DEFLATED) as package:
        root = CORPUS / "zipped" / "orders-api"
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            labelled = _strip(name, path.read_text(encoding="utf-8"))
            package.writestr(name, labelled.text)
            members.append(labelled)
        package.writestr(LAYER_MEMBER, layer_buf.getvalue())
    return package_buf.getvalue(), members


def load_env() -> list[tuple[str, dict[str, str], set[str]]]:
    """(case name, variables, names of the secret variables) for each env map."""
    out = []
    for path in sorted((CORPUS / "env").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out.append((path.stem, data["variables"], set(data["secrets"])))
    return out


def case_count() -> int:
    files = load_files() + load_zipped()[1]
    return (sum(len(f.secrets) + len(f.negatives) for f in files)
            + sum(len(v) for _, v, _ in load_env()))


def score(tp: int, fp: int, fn: int) -> tuple[float, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall
