"""Throughput and corpus precision/recall of the runbook's detection engine against its peers.

Usage::

    .venv/bin/python benchmarks/bench_scan.py [--tree DIR] [--skip-detect-secrets] [--skip-kingfisher]

Builds (once) ``benchmarks/.cache/tree``: a copy of the text files of the installed
botocore, boto3, moto and pandas packages (tens of MB of real source and JSON), then
scans it with this engine, with detect-secrets (default settings, ``--all-files``) and
with Kingfisher (``kingfisher scan PATH --format json --confidence low --no-validate``).
The peers live in their own venv, ``benchmarks/.venv-peers`` (created here with
``python3 -m venv`` + ``pip install detect-secrets kingfisher-bin``); a peer that cannot
be installed is skipped with a message. It also runs the labelled corpus of
``tests/corpus`` through each tool, per line / per variable, and prints precision and
recall. Timings are the best of ``--runs`` runs (detect-secrets: one run, it is slow).
Only counts are printed: peers' outputs contain values and are parsed in memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "corpus"))

import corpus  # noqa: E402
from runbook_lib.scanning import Scanner, engine_name  # noqa: E402

PEERS_VENV = HERE / ".venv-peers"
CACHE = HERE / ".cache"
PACKAGES = ("botocore", "boto3", "moto", "pandas")


def site_packages() -> Path:
    import boto3

    return Path(boto3.__file__).resolve().parent.parent


def build_tree(dest: Path) -> Path:
    """Copy the text files (no NUL byte in the first 8 KB) of a few installed packages."""
    if dest.is_dir() and any(dest.iterdir()):
        return dest
    source = site_packages()
    for package in PACKAGES:
        for root, _, files in os.walk(source / package):
            for name in files:
                path = Path(root, name)
                if path.suffix in (".pyc", ".so", ".gz", ".pkl", ".zip") or path.is_symlink():
                    continue
                with open(path, "rb") as fh:
                    if b"\0" in fh.read(8192):
                        continue
                target = dest / path.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
    return dest


def tree_bytes(tree: Path) -> int:
    return sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())


def ensure_peers() -> dict[str, Path | None]:
    bin_dir = PEERS_VENV / "bin"
    if not (bin_dir / "python").exists():
        print(f"creating {PEERS_VENV} for the peers")
        subprocess.run(["python3", "-m", "venv", str(PEERS_VENV)], check=False)
    tools = {"detect-secrets": bin_dir / "detect-secrets", "kingfisher": bin_dir / "kingfisher"}
    for tool, package in (("detect-secrets", "detect-secrets"), ("kingfisher", "kingfisher-bin")):
        if not tools[tool].exists() and (bin_dir / "pip").exists():
            result = subprocess.run([str(bin_dir / "pip"), "install", "-q", package], capture_output=True, text=True)
            if result.returncode != 0:
                print(f"skipping {tool}: pip install {package} failed ({result.stderr.strip().splitlines()[-1:]})")
        if not tools[tool].exists():
            tools[tool] = None
    return tools


# ------------------------------------------------------------------ runners: (path, line) sets

def best_of(runs: int, fn, *args):
    """Fastest of ``runs`` runs (the machine is shared; the minimum is the least disturbed)."""
    results = [fn(*args) for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def run_ours(tree: Path) -> tuple[float, set[tuple[str, int]], int]:
    scanner = Scanner()  # compiles the prefilter database outside the timing
    start = time.perf_counter()
    report = scanner.scan_path(tree)
    seconds = time.perf_counter() - start
    return seconds, {(str(Path(f.path).relative_to(tree)), f.line) for f in report.findings}, report.bytes_scanned


def run_detect_secrets(exe: Path, tree: Path) -> tuple[float, set[tuple[str, int]]]:
    start = time.perf_counter()
    result = subprocess.run([str(exe), "scan", "--all-files", "."], cwd=tree, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"detect-secrets exited {result.returncode}")
    data = json.loads(result.stdout)
    found = {(name, item["line_number"]) for name, items in data["results"].items() for item in items}
    return seconds, found


def run_kingfisher(exe: Path, tree: Path, extra: tuple[str, ...] = ()) -> tuple[float, set[tuple[str, int]]]:
    start = time.perf_counter()
    result = subprocess.run([str(exe), "scan", ".", "--format", "json", "--confidence", "low", "--no-validate", *extra],
                            cwd=tree, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    doc, _ = json.JSONDecoder().raw_decode(result.stdout.strip() or '{"findings": []}')
    found = set()
    for item in doc.get("findings", []):
        finding = item.get("finding", {})
        path = finding.get("path", "")
        found.add((os.path.normpath(path), int(finding.get("line", 0))))
    return seconds, found


# ------------------------------------------------------------------ corpus for the peers

def materialize_corpus(dest: Path) -> dict[tuple[str, int], bool]:
    """Write the stripped corpus as plain files; labels keyed by (path, line): True = secret."""
    labels: dict[tuple[str, int], bool] = {}
    files = corpus.load_files()
    _, members = corpus.load_zipped()
    for labelled in files + [m for m in members]:
        rel = labelled.rel if labelled in files else "zipped/" + labelled.rel.replace("!", "/")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(labelled.text, encoding="utf-8")
        for line in labelled.secrets:
            labels[(rel, line)] = True
    for case, variables, secrets in corpus.load_env():
        rel = f"env/{case}.json"
        lines = ["{"]
        for i, (name, value) in enumerate(sorted(variables.items())):
            comma = "," if i < len(variables) - 1 else ""
            lines.append(f"  {json.dumps(name)}: {json.dumps(value)}{comma}")
            labels[(rel, len(lines))] = name in secrets
        lines.append("}")
        (dest / "env").mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return labels


def corpus_score(found: set[tuple[str, int]], labels: dict[tuple[str, int], bool]) -> tuple[float, float]:
    found = {(os.path.normpath(p), line) for p, line in found}
    secrets = {k for k, v in labels.items() if v}
    tp, fp, fn = len(found & secrets), len(found - secrets), len(secrets - found)
    return corpus.score(tp, fp, fn)


def ours_on_corpus() -> tuple[float, float]:
    """Our engine through its own entry points (zip in memory, env maps as maps)."""
    scanner = Scanner()
    tp = fp = fn = 0
    for labelled in corpus.load_files():
        predicted = {f.line for f in scanner.scan_text(labelled.text, labelled.rel)}
        tp, fp, fn = tp + len(predicted & labelled.secrets), fp + len(predicted - labelled.secrets), \
            fn + len(labelled.secrets - predicted)
    package, members = corpus.load_zipped()
    report = scanner.scan_zip(package)
    for labelled in members:
        predicted = {f.line for f in report.findings if f.path == labelled.rel}
        tp, fp, fn = tp + len(predicted & labelled.secrets), fp + len(predicted - labelled.secrets), \
            fn + len(labelled.secrets - predicted)
    for _, variables, secrets in corpus.load_env():
        predicted = {f.variable for f in scanner.scan_environment(variables)}
        tp, fp, fn = tp + len(predicted & secrets), fp + len(predicted - secrets), fn + len(secrets - predicted)
    return corpus.score(tp, fp, fn)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=CACHE / "tree")
    parser.add_argument("--skip-detect-secrets", action="store_true")
    parser.add_argument("--skip-kingfisher", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="best of N runs (detect-secrets runs once)")
    args = parser.parse_args(argv)

    tree = build_tree(args.tree)
    size = tree_bytes(tree)
    mb = size / 1e6
    peers = ensure_peers()
    if args.skip_detect_secrets:
        peers["detect-secrets"] = None
    if args.skip_kingfisher:
        peers["kingfisher"] = None
    print(f"tree: {tree} ({mb:.1f} MB in {sum(1 for p in tree.rglob('*') if p.is_file())} files); "
          f"engine prefilter: {engine_name()}; cores: {os.cpu_count()}")

    rates: dict[str, float] = {}
    seconds, found, scanned = best_of(args.runs, run_ours, tree)
    rates["runbook"] = mb / seconds
    print(f"{'runbook':15s} {mb:8.1f} MB {seconds:8.2f} s {mb / seconds:8.2f} MB/s  {len(found)} finding lines"
          f"  ({scanned / 1e6:.1f} MB read as text)")
    runners = {"detect-secrets": run_detect_secrets, "kingfisher": run_kingfisher}
    for tool, exe in peers.items():
        if exe is None:
            print(f"{tool:15s} skipped (not installed)")
            continue
        try:
            seconds, found = best_of(1 if tool == "detect-secrets" else args.runs, runners[tool], exe, tree)
        except (RuntimeError, ValueError, OSError) as exc:
            print(f"{tool:15s} failed: {type(exc).__name__}: {exc}")
            continue
        rates[tool] = mb / seconds
        print(f"{tool:15s} {mb:8.1f} MB {seconds:8.2f} s {mb / seconds:8.2f} MB/s  {len(found)} finding lines")
    for tool in ("detect-secrets", "kingfisher"):
        if tool in rates:
            print(f"ratio runbook / {tool}: {rates['runbook'] / rates[tool]:.1f}x")

    print("\nlabelled corpus (per line / per variable):")
    precision, recall = ours_on_corpus()
    print(f"{'runbook':15s} precision {precision:.2f} recall {recall:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        labels = materialize_corpus(Path(tmp))
        for tool, exe in peers.items():
            if exe is None:
                continue
            try:
                _, found = runners[tool](exe, Path(tmp))
            except (RuntimeError, ValueError, OSError) as exc:
                print(f"{tool:15s} failed on the corpus: {type(exc).__name__}")
                continue
            precision, recall = corpus_score(found, labels)
            print(f"{tool:15s} precision {precision:.2f} recall {recall:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
