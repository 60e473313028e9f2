"""Precision and recall per family on peers' own labelled examples, beside the peers.

Usage::

    .venv/bin/python benchmarks/bench_recall.py [--part dev|held-out|all] [--skip-peers] [--misses]
                                                [--rebuild --gitleaks DIR --kingfisher DIR]

The labelled set is kept in this repository as data, ``benchmarks/data/peers/``
(``<source>.jsonl``, one example a line with its labels; ``set.json``, the pinned commits,
licences and digest; ``NOTICE.md``, where it comes from). Each run writes the examples as
files under ``benchmarks/.cache/peer_data/files`` and scans those. ``--rebuild`` builds the
set again from the peers' git history (``DIR``: a git clone or bare git directory of
gitleaks / Kingfisher holding the commits of :data:`peer_data.PINNED`; :mod:`peer_data` says
how, and what a label means) and rewrites the kept data. The examples are scanned as a whole process by
``runbook scan --format json`` and, where they are installed in ``benchmarks/.venv-peers``
(see ``bench_scan.py``), by Kingfisher (``--confidence low --no-validate --no-dedup``) and
detect-secrets (``--all-files``), and scored per line: a reported line that holds a
labelled secret is a true positive, a reported line of a negative example a false positive,
a labelled secret not reported a false negative; context lines are not scored.

The set is split by rule (:func:`peer_data.held_out`): ``dev`` is what the engine may be
tuned on, ``held-out`` is for reporting only. ``--misses`` lists the development part's
misses and false positives by file and line (never a value: the files are on disk to read).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_scan  # noqa: E402
import peer_data  # noqa: E402
from whole_process import run_process  # noqa: E402

CACHE = HERE / ".cache" / "peer_data"


def runbook_found(tree: Path) -> set[tuple[str, int]]:
    """``runbook scan`` as a whole process; (relative path, line) of each finding."""
    exe = Path(sys.executable).parent / "runbook"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "runbook_lib.cli"]
    result = subprocess.run(command + ["scan", "--format", "json", "."], cwd=tree, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"runbook scan exited {result.returncode}")
    return {(os.path.normpath(f["path"]), f["line"]) for f in json.loads(result.stdout) if "path" in f}


def peer_found(tool: str, exe: Path, tree: Path) -> tuple[int, set[tuple[str, int]]]:
    """A peer as a whole process in ``tree`` (Kingfisher: every occurrence); (exit code, findings)."""
    args = {"kingfisher": (*bench_scan.KINGFISHER_ARGS, "--no-dedup"),
            "detect-secrets": bench_scan.DETECT_SECRETS_ARGS}[tool]
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch, tool)
        code = run_process([str(exe), *args], cwd=tree, stdout_path=out).returncode
        parse = bench_scan.findings_kingfisher if tool == "kingfisher" else bench_scan.findings_detect_secrets
        return code, parse(out)


def score(labels: list[dict], found: set[tuple[str, int]], part: str) -> dict[str, list[int]]:
    """family -> [tp, fp, fn] (and ``all``) over the files of ``part``."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    by_file: dict[str, set[int]] = defaultdict(set)
    for path, line in found:
        by_file[path].add(line)
    for f in labels:
        if part != "all" and f["held_out"] != (part == "held-out"):
            continue
        reported = by_file.get(os.path.normpath(f["rel"]), set())
        row, total = counts[f["family"]], counts["all"]
        if f["unit"]:
            hit = 1 if reported else 0
            tp, fn = hit, 1 - hit
            fp = 0
        else:
            tp = len(reported & set(f["positive_lines"]))
            fn = len(f["positive_lines"]) - tp
            fp = len(reported & set(f["negative_lines"]))
        for r in (row, total):
            r[0] += tp
            r[1] += fp
            r[2] += fn
    return counts


def ratios(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


def table(results: dict[str, dict[str, list[int]]]) -> str:
    tools = list(results)
    families = sorted({f for r in results.values() for f in r if f != "all"}) + ["all"]
    head = f"{'family':18s} {'n':>5s} " + " ".join(f"{t[:14]:>14s}" for t in tools)
    lines = [head, f"{'':18s} {'':5s} " + " ".join(f"{'P / R':>14s}" for _ in tools)]
    for family in families:
        first = results[tools[0]].get(family, [0, 0, 0])
        n = first[0] + first[2]
        cells = []
        for tool in tools:
            p, r = ratios(*results[tool].get(family, [0, 0, 0]))
            cells.append(f"{p:6.2f} / {r:4.2f}")
        lines.append(f"{family:18s} {n:5d} " + " ".join(f"{c:>14s}" for c in cells))
    return "\n".join(lines)


def misses(labels: list[dict], found: set[tuple[str, int]]) -> list[str]:
    by_file: dict[str, set[int]] = defaultdict(set)
    for path, line in found:
        by_file[path].add(line)
    out = []
    for f in labels:
        if f["held_out"]:
            continue
        reported = by_file.get(os.path.normpath(f["rel"]), set())
        if f["unit"] and not reported:
            out.append(f"FN  {f['rel']} (whole example)")
        for line in sorted(set(f["positive_lines"]) - reported):
            out.append(f"FN  {f['rel']}:{line}")
        for line in sorted(reported & set(f["negative_lines"])):
            out.append(f"FP  {f['rel']}:{line}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gitleaks", type=Path, help="git directory of gitleaks")
    parser.add_argument("--kingfisher", type=Path, help="git directory of Kingfisher")
    parser.add_argument("--data", type=Path, default=peer_data.DATA, help="the kept labelled set")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where its examples are written as files")
    parser.add_argument("--rebuild", action="store_true", help="build the set again from the peers' git history")
    parser.add_argument("--part", choices=("dev", "held-out", "all", "both"), default="both")
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--misses", action="store_true", help="list the development part's misses")
    args = parser.parse_args(argv)

    if args.rebuild:
        if not (args.gitleaks or args.kingfisher):
            print("bench_recall: --rebuild needs --gitleaks DIR and/or --kingfisher DIR", file=sys.stderr)
            return 2
        shutil.rmtree(args.cache / "files", ignore_errors=True)
        peer_data.build(args.cache, args.gitleaks, args.kingfisher)
        peer_data.export(args.cache, args.data)
    shutil.rmtree(args.cache / "files", ignore_errors=True)  # only the examples of the kept set are scanned
    doc = peer_data.materialize(args.cache, args.data)
    labels, tree = doc["files"], args.cache / "files"
    for source, pin in doc["pinned"].items():
        print(f"{source}: {pin['repo']} at {pin['commit'][:12]} ({pin['licence']}), "
              f"{sum(f['source'] == source for f in labels)} examples, "
              f"{doc['out_of_scope_rules'][source]} rules out of scope, {len(doc['unevaluated'][source])} not evaluated")
    print(f"labelled set sha256 {doc['sha256'][:16]}")

    found = {"runbook": runbook_found(tree)}
    if not args.skip_peers:
        peers = bench_scan.ensure_peers()
        # every occurrence: one secret is written in many files (gitleaks' sample syntaxes)
        for tool in ("kingfisher", "detect-secrets"):
            if peers.get(tool) is None:
                print(f"{tool}: not installed, skipped")
                continue
            try:
                _, hits = peer_found(tool, peers[tool], tree)
            except (RuntimeError, ValueError, OSError) as exc:
                print(f"{tool}: failed ({type(exc).__name__})")
                continue
            found[tool] = {(os.path.normpath(p), line) for p, line in hits}
    parts = ("dev", "held-out") if args.part == "both" else (args.part,)
    for part in parts:
        print(f"\n{part} part (per line):")
        print(table({tool: score(labels, hits, part) for tool, hits in found.items()}))
    if args.part == "both":
        print("\nall (per line):")
        print(table({tool: score(labels, hits, "all") for tool, hits in found.items()}))
    if args.misses:
        print("\n" + "\n".join(misses(labels, found["runbook"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
