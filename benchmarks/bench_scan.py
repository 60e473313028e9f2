"""Whole-process scan timings of ``runbook scan`` against its peers, and corpus precision/recall.

Usage::

    .venv/bin/python benchmarks/bench_scan.py [--runs 3] [--ds-runs 3] [--tree DIR]
        [--cold-method fadvise|drop-caches|none] [--skip-detect-secrets] [--skip-kingfisher]

Builds (once) ``benchmarks/.cache/tree``: a copy of the text files of the installed
botocore, boto3, moto and pandas packages (tens of MB of real source and JSON). Both sides
are timed as the programs a user starts, start-up included, on the same tree, alternated
(A B A B ...), with the median and range printed, never the best run:

- ``.venv/bin/runbook scan TREE --format json`` (exit 0 or 1: 1 means findings);
- Kingfisher: ``kingfisher scan . --format json --confidence low --no-validate`` in TREE;
- detect-secrets: ``detect-secrets scan --all-files .`` (default plugins). It reads about
  0.3 MB/s here, so it runs against the ``boto3`` part of the tree only, and the runbook is
  timed again on that same part for its ratio.

The runbook keeps its compiled patterns on disk (``runbook_lib.pattern_cache``); here in
``benchmarks/.cache/xdg`` (``XDG_CACHE_HOME``), not the user's own cache. Its untimed first run
fills it, as a user's first scan does; "first run" times ``--runs`` scans with an empty cache
each (compiling the patterns included), the runbook alone.

Warm: each side runs once untimed first, then ``--runs`` alternated runs. Cold: before
every run the tree's pages are evicted from the page cache, by default per file with
``posix_fadvise(POSIX_FADV_DONTNEED)`` (no root, touches only the tree, so other work on a
shared machine keeps its cache); ``--cold-method drop-caches`` writes 1 to
``/proc/sys/vm/drop_caches`` instead (root; machine-wide, so the tools' own files are cold
too). The residency after eviction is measured with ``fincore`` when it is installed and
printed; if eviction is refused the output says so and the run is labelled "not cold".
Peak memory is each process's own ``ru_maxrss`` (``os.wait4``).

The peers live in ``benchmarks/.venv-peers`` (created here with ``python3 -m venv`` +
``pip install detect-secrets kingfisher-bin``); a peer that cannot be installed is skipped
with a message. The labelled corpus of ``tests/corpus`` then runs through each tool, per
line / per variable, for precision and recall (in-process for the runbook: not a timing).
Only counts are printed: outputs contain values and are parsed in memory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "corpus"))
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402
from runbook_lib.scanning import Scanner  # noqa: E402
from whole_process import (describe, describe_cpu, describe_rss, failed, load_average, ratio, run_alternated,  # noqa: E402
                           run_process)

PEERS_VENV = HERE / ".venv-peers"
CACHE = HERE / ".cache"
#: The runbook's compiled-pattern cache for the timed runs (never the user's ~/.cache).
PATTERN_CACHE = CACHE / "xdg"
PACKAGES = ("botocore", "boto3", "moto", "pandas")
RUNBOOK = ROOT / ".venv" / "bin" / "runbook"
KINGFISHER_ARGS = ("scan", ".", "--format", "json", "--confidence", "low", "--no-validate")
DETECT_SECRETS_ARGS = ("scan", "--all-files", ".")


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


def tree_files(tree: Path) -> list[Path]:
    return [p for p in tree.rglob("*") if p.is_file()]


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


def peer_version(exe: Path) -> str:
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "?"


# ------------------------------------------------------------------ page cache

def evict(files: list[Path], method: str) -> str:
    """Evict the tree from the page cache; return what was done, for the output."""
    if method == "none":
        return "not evicted (--cold-method none): not cold"
    if method == "drop-caches":
        try:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("1\n")
            return "machine-wide drop_caches"
        except OSError as exc:
            return f"drop_caches refused ({exc.strerror}): not cold"
    refused = 0
    for path in files:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            refused += 1
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            refused += 1
        finally:
            os.close(fd)
    return "posix_fadvise DONTNEED per file" + (f" ({refused} files refused)" if refused else "")


def resident_bytes(files: list[Path]) -> int | None:
    """Bytes of the tree in the page cache, from ``fincore`` (None when it is missing)."""
    fincore = shutil.which("fincore")
    if not fincore:
        return None
    total = 0
    for i in range(0, len(files), 500):
        out = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES",
                              *map(str, files[i:i + 500])], capture_output=True, text=True)
        total += sum(int(x) for x in out.stdout.split() if x.isdigit())
    return total


# ------------------------------------------------------------------ whole-process runners

def runbook_cmd(tree: Path) -> list[str]:
    return [str(RUNBOOK), "scan", str(tree), "--format", "json"]


def findings_ours(out: Path, tree: Path) -> set[tuple[str, int]]:
    return {(os.path.relpath(f["path"], tree), f["line"]) for f in json.loads(out.read_text() or "[]")}


def findings_kingfisher(out: Path) -> set[tuple[str, int]]:
    doc, _ = json.JSONDecoder().raw_decode(out.read_text().strip() or '{"findings": []}')
    found = set()
    for item in doc.get("findings", []):
        finding = item.get("finding", {})
        found.add((os.path.normpath(finding.get("path", "")), int(finding.get("line", 0))))
    return found


def findings_detect_secrets(out: Path) -> set[tuple[str, int]]:
    data = json.loads(out.read_text())
    return {(name, item["line_number"]) for name, items in data["results"].items() for item in items}


def runbook_env(cache_home: Path = PATTERN_CACHE) -> dict:
    """The runbook's environment: its own pattern cache, and Python's bytecode cache on.

    ``PYTHONDONTWRITEBYTECODE`` (set in some shells and CI images) would have every run compile
    the package's modules from source, which an installed package never does (pip compiles them
    at install time): it is dropped, so the untimed first run writes the bytecode a user has.
    """
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def commands(tree: Path, peers: dict, out_dir: Path) -> dict:
    """side -> callable running that side once on ``tree`` (its stdout kept in out_dir/side)."""
    cmds = {"runbook": lambda: run_process(runbook_cmd(tree), stdout_path=out_dir / "runbook", env=runbook_env())}
    if peers.get("kingfisher"):
        cmds["kingfisher"] = lambda: run_process([str(peers["kingfisher"]), *KINGFISHER_ARGS], cwd=tree,
                                                 stdout_path=out_dir / "kingfisher")
    if peers.get("detect-secrets"):
        cmds["detect-secrets"] = lambda: run_process([str(peers["detect-secrets"]), *DETECT_SECRETS_ARGS],
                                                     cwd=tree, stdout_path=out_dir / "detect-secrets")
    return cmds


def report(label: str, results: dict, mb: float, out_dir: Path, tree: Path) -> None:
    print(f"\n## {label}; {load_average()} (after the runs)")
    parsers = {"runbook": lambda p: findings_ours(p, tree), "kingfisher": findings_kingfisher,
               "detect-secrets": findings_detect_secrets}
    for side, timings in results.items():
        seconds = [t.seconds for t in timings]
        bad = failed(timings, (0, 1) if side == "runbook" else (0, 200, 205))
        try:
            lines = len(parsers[side](out_dir / side))
        except (ValueError, KeyError, OSError) as exc:
            lines = f"unparsed output ({type(exc).__name__})"
        print(f"{side:15s} {describe(seconds)}; {mb / statistics.median(seconds):.1f} MB/s at the median; "
              f"{describe_cpu(timings)}; {describe_rss(timings)}; {lines} finding lines" + (f"; FAILED exits {bad}" if bad else ""))
    for side in results:
        if side != "runbook":
            print(f"ratio of medians {side} / runbook: "
                  f"{ratio([t.seconds for t in results[side]], [t.seconds for t in results['runbook']])}")


def warm_up(cmds: dict) -> None:
    for run in cmds.values():
        run()


def first_runs(tree: Path, runs: int, out_dir: Path) -> dict:
    """The runbook with an empty pattern cache each time: what the first scan on a machine costs."""
    timings = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-scan-xdg-") as empty:
            timings.append(run_process(runbook_cmd(tree), stdout_path=out_dir / "runbook",
                                       env=runbook_env(Path(empty))))
    return {"runbook": timings}


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
    parser.add_argument("--runs", type=int, default=3, help="alternated runs per side, warm and cold (default 3)")
    parser.add_argument("--ds-runs", type=int, default=3, help="alternated runs against detect-secrets (default 3)")
    parser.add_argument("--ds-part", default="boto3", help="part of the tree detect-secrets scans (default boto3)")
    parser.add_argument("--cold-method", choices=("fadvise", "drop-caches", "none"), default="fadvise")
    parser.add_argument("--skip-detect-secrets", action="store_true")
    parser.add_argument("--skip-kingfisher", action="store_true")
    parser.add_argument("--skip-corpus", action="store_true")
    args = parser.parse_args(argv)

    if not RUNBOOK.exists():
        print(f"bench_scan: {RUNBOOK} is missing: run `make venv` first", file=sys.stderr)
        return 2
    tree = build_tree(args.tree)
    files = tree_files(tree)
    mb = sum(p.stat().st_size for p in files) / 1e6
    peers = ensure_peers()
    if args.skip_detect_secrets:
        peers["detect-secrets"] = None
    if args.skip_kingfisher:
        peers["kingfisher"] = None
    print(f"tree: {tree} ({mb:.1f} MB in {len(files)} files); cores: {os.cpu_count()}; {load_average()}")
    print(f"runbook: {' '.join(runbook_cmd(Path('TREE')))}")
    for tool, exe in peers.items():
        args_ = KINGFISHER_ARGS if tool == "kingfisher" else DETECT_SECRETS_ARGS
        print(f"{tool}: " + (f"{peer_version(exe)}: {tool} {' '.join(args_)} (in TREE)" if exe
                             else "skipped (not installed)"))

    with tempfile.TemporaryDirectory(prefix="bench-scan-") as tmp:
        out_dir = Path(tmp)
        fast = commands(tree, {"kingfisher": peers["kingfisher"]}, out_dir)
        warm_up(fast)
        report(f"warm page cache, {mb:.1f} MB", run_alternated(fast, args.runs), mb, out_dir, tree)
        report(f"first run: no compiled-pattern cache yet (warm page cache), {mb:.1f} MB",
               first_runs(tree, args.runs, out_dir), mb, out_dir, tree)

        how = evict(files, args.cold_method)
        after = resident_bytes(files)
        print(f"\ncold: {how}; tree resident after eviction: "
              + (f"{after / 1e6:.1f} MB of {mb:.1f} MB (fincore)" if after is not None else "unknown (no fincore)"))
        cold = run_alternated(fast, args.runs, before_each=lambda side: evict(files, args.cold_method))
        report(f"cold page cache for the tree ({how}), {mb:.1f} MB", cold, mb, out_dir, tree)

        if peers["detect-secrets"]:
            part = tree / args.ds_part
            part_files = tree_files(part)
            part_mb = sum(p.stat().st_size for p in part_files) / 1e6
            slow = commands(part, {"detect-secrets": peers["detect-secrets"]}, out_dir)
            warm_up(slow)
            report(f"warm page cache, {args.ds_part} part of the tree only ({part_mb:.1f} MB in "
                   f"{len(part_files)} files)", run_alternated(slow, args.ds_runs), part_mb, out_dir, part)

    if not args.skip_corpus:
        corpus_report(peers)
    return 0


def corpus_report(peers: dict) -> None:
    print("\nlabelled corpus (per line / per variable; not a timing):")
    precision, recall = ours_on_corpus()
    print(f"{'runbook':15s} precision {precision:.2f} recall {recall:.2f}")
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as out:
        labels = materialize_corpus(Path(tmp))
        cmds = commands(Path(tmp), peers, Path(out))
        parsers = {"kingfisher": findings_kingfisher, "detect-secrets": findings_detect_secrets}
        for tool in parsers:
            if tool not in cmds:
                continue
            cmds[tool]()
            try:
                found = parsers[tool](Path(out) / tool)
            except (ValueError, KeyError, OSError) as exc:
                print(f"{tool:15s} failed on the corpus: {type(exc).__name__}")
                continue
            precision, recall = corpus_score(found, labels)
            print(f"{tool:15s} precision {precision:.2f} recall {recall:.2f}")


if __name__ == "__main__":
    sys.exit(main())
