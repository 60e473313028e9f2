"""Tests of :mod:`runbook_lib.scan_pool`: batches, when a pool is used, and a pooled scan equal to one process.

Pools are forked in a fresh interpreter (a subprocess): the test process may run the lab's
threads, and a forked threaded process is exactly what the pool refuses to make.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from runbook_lib import scan_pool
from runbook_lib.exceptions import RunbookError
from runbook_lib.scanning import Scanner

sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
import corpus  # noqa: E402

PASSWORD = "Tq7!vR2m#Lx9"
KEY_HEX = "5e" * 32


# -- batches and the choice of one process or many --------------------------------------------
def test_batches_are_contiguous_runs_cut_by_bytes_and_by_files():
    items = [(name, size) for name, size in zip("abcdefg", (3, 3, 3, 10, 1, 1, 1))]
    assert scan_pool.batches(items, max_bytes=6, max_files=10) == [["a", "b"], ["c"], ["d"], ["e", "f", "g"]]
    assert scan_pool.batches(items, max_bytes=100, max_files=3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert scan_pool.batches([], max_bytes=6, max_files=3) == []
    assert [x for batch in scan_pool.batches(items, 4, 2) for x in batch] == list("abcdefg")  # nothing lost


@pytest.mark.parametrize("requested, files, total, expected", [
    (1, 100, 10 ** 9, 1),  # asked for one
    (0, 1, 10 ** 9, 1),  # one file: one process, however big
    (0, 100, scan_pool.POOL_MIN_BYTES - 1, 1),  # small input: a pool would cost more than it saves
    (0, 100, 10 ** 9, 4),  # 0: every core
    (None, 100, 10 ** 9, 4),
    (8, 3, 10 ** 9, 3),  # never more workers than files
    (2, 100, 10 ** 9, 2),
])
def test_worker_count(monkeypatch, requested, files, total, expected):
    monkeypatch.setattr(scan_pool, "available_cores", lambda: 4)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert scan_pool.worker_count(requested, files, total) == expected


def test_one_process_when_other_threads_run_or_fork_is_missing(monkeypatch):
    monkeypatch.setattr(scan_pool, "available_cores", lambda: 4)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert scan_pool.worker_count(0, 100, 10 ** 9) == 1  # forking a threaded process can deadlock the child
    finally:
        stop.set()
        thread.join()
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    assert scan_pool.worker_count(0, 100, 10 ** 9) == 4
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert scan_pool.fork_available() is False and scan_pool.worker_count(0, 100, 10 ** 9) == 1


def test_available_cores_is_the_affinity():
    assert scan_pool.available_cores() == len(os.sched_getaffinity(0)) >= 1


def test_batches_are_cut_as_items_come():
    cutter = scan_pool.Batcher(max_bytes=10, max_files=2)
    cutter.add("a", 4)
    cutter.add("b", 4)
    assert cutter.take() == []  # the batch being filled is not taken
    cutter.add("c", 1)
    assert cutter.take() == [["a", "b"]] and cutter.take() == []
    assert cutter.close() == [["c"]] and cutter.close() == []


@pytest.mark.parametrize("requested", [1, 0])
def test_one_process_runs_the_batches_in_order_and_then_meanwhile(monkeypatch, requested):
    monkeypatch.setattr(scan_pool, "BATCH_FILES", 2)
    seen = []
    items = [(n, 10, True) for n in range(1, 6)]  # 50 bytes: under POOL_MIN_BYTES, so one process for 0 too
    results, side = scan_pool.run_stream(lambda batch: seen.append(batch) or sum(batch), iter(items), requested,
                                         meanwhile=lambda: seen.append("meanwhile") or "owners")
    assert results == [3, 7, 5] and side == "owners" and seen == [[1, 2], [3, 4], [5], "meanwhile"]


def test_a_small_folder_is_scanned_without_a_pool(tmp_path, monkeypatch):
    def no_pool(*args, **kwargs):
        raise AssertionError("a pool was started for a small folder")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    for n in range(5):
        (tmp_path / f"f{n}.py").write_text(f'DB_PASSWORD = "{PASSWORD}{n}"\n')
    report = Scanner(workers=0).scan_path(tmp_path)
    assert [Path(f.path).name for f in report.findings] == [f"f{n}.py" for n in range(5)]


# -- a pooled scan is the one-process scan ---------------------------------------------------
def build_tree(root: Path) -> Path:
    """The corpus as files and its deployment zip, plus what a walk skips, third-party files and allowlisting."""
    for labelled in corpus.load_files():
        path = root / labelled.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(labelled.text, encoding="utf-8")
    package, _ = corpus.load_zipped()
    (root / "dist").mkdir()
    (root / "dist" / "deployment.zip").write_bytes(package)
    (root / ".gitignore").write_text("*.log\nbuild/\n")
    (root / "debug.log").write_text(f'DB_PASSWORD = "{PASSWORD}"\n')
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text(f'DB_PASSWORD = "{PASSWORD}"\n')
    (root / "blob.bin").write_bytes(b"\0" * 64 + f'DB_PASSWORD = "{PASSWORD}"'.encode())
    (root / "not-a.zip").write_bytes(b"PK\x03\x04 not really")
    (root / "link.py").symlink_to(root / "build" / "out.py")
    (root / "allowed.py").write_text(f'API_TOKEN = "{PASSWORD}-allowed"  # runbook: allow-secret\n'
                                     f'OTHER_PASSWORD = "{PASSWORD}-listed"\n')
    site = root / "site-packages"
    (site / "vendored").mkdir(parents=True)
    vendored = f'CLIENT_SECRET = "{PASSWORD}-vendored"\n'.encode()
    (site / "vendored" / "client.py").write_bytes(vendored)
    import base64
    import hashlib

    digest = base64.urlsafe_b64encode(hashlib.sha256(vendored).digest()).rstrip(b"=").decode()
    (site / "vendored-1.2.dist-info").mkdir()
    (site / "vendored-1.2.dist-info" / "RECORD").write_text(f"vendored/client.py,sha256={digest},{len(vendored)}\n")
    for n in range(40):  # enough files for many batches
        (root / "many" / f"m{n:02d}").mkdir(parents=True)
        (root / "many" / f"m{n:02d}" / "settings.env").write_text(f"API_KEY=Zq8{n:02d}vLq7Pw03Zr58Xk29\nNAME=x\n")
    return root


SCRIPT = r"""
import json, os, sys
from pathlib import Path
from runbook_lib import scan_pool
from runbook_lib.allowlist import allowlist_entry
from runbook_lib.redaction import Fingerprinter
from runbook_lib.scanning import Scanner

root, pids, key = Path(sys.argv[1]), Path(sys.argv[2]), bytes.fromhex(sys.argv[3])
scan_pool.POOL_MIN_BYTES, scan_pool.BATCH_FILES = 0, 3  # a pool however small the tree, many batches
real = Scanner._scan_entries

def tagged(self, entries):
    (pids / str(os.getpid())).touch()
    return real(self, entries)

Scanner._scan_entries = tagged
out = {}
for workers in (1, 2):
    scanner = Scanner(Fingerprinter(key), allowlist=[allowlist_entry(sys.argv[4])], workers=workers)
    report = scanner.scan_path(root)
    out[workers] = {"findings": [f.to_dict() for f in report.findings],
                    "third_party": [t.to_dict() for t in report.third_party], "skipped": report.skipped,
                    "files": report.files_scanned, "bytes": report.bytes_scanned, "allowlisted": report.allowlisted,
                    "scanner_allowlisted": scanner.allowlisted,
                    "entries": [scanner.allowlist_entry(f) for f in report.findings]}
print(json.dumps({"runs": out, "parent": os.getpid()}))
"""


def pooled_and_single(root: Path, tmp_path: Path, allowlisted_value: str) -> tuple[dict, dict, set]:
    pids = tmp_path / "pids"
    pids.mkdir()
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(root), str(pids), KEY_HEX, allowlisted_value],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    workers = {int(p.name) for p in pids.iterdir()} - {result["parent"]}
    return result["runs"]["1"], result["runs"]["2"], workers


def test_a_pooled_scan_of_a_tree_gives_the_same_report_in_the_same_order(tmp_path):
    root = build_tree(tmp_path / "tree")
    single, pooled, workers = pooled_and_single(root, tmp_path, f"{PASSWORD}-listed")
    assert len(workers) == 2  # really scanned in two other processes
    assert pooled == single
    assert single["findings"] and single["third_party"] and single["allowlisted"] == 2  # inline marker + list
    assert single["scanner_allowlisted"] == 2 and all(e and e.startswith("sha256:") for e in single["entries"])
    skipped = {Path(s["path"]).relative_to(root).as_posix(): s["reason"] for s in single["skipped"]}
    assert {"debug.log", "build", "blob.bin", "not-a.zip", "link.py"} <= set(skipped)
    assert [t["package"] for t in single["third_party"]] == ["vendored"]
    paths = [f["path"] for f in single["findings"]]
    assert any("deployment.zip!" in p for p in paths) and sum("settings.env" in p for p in paths) == 40
    assert PASSWORD not in json.dumps(single)  # redacted previews and fingerprints only
    order = walk_order(root)  # and the order is the walk's, not the order the workers finished in
    found_at = [order[f["path"].split("!")[0]] for f in single["findings"]]
    assert found_at == sorted(found_at)
    skipped_at = [order[s["path"]] for s in single["skipped"]]
    assert skipped_at == sorted(skipped_at)


def walk_order(root: Path) -> dict[str, int]:
    """Every path under ``root`` numbered top-down, folders' entries sorted (folders before files)."""
    order: dict[str, int] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in dirs + sorted(files):
            order[os.path.join(folder, name)] = len(order)
    return order


def test_a_pooled_scan_of_the_corpus_equals_one_process(tmp_path):
    root = tmp_path / "corpus"
    for labelled in corpus.load_files():
        path = root / labelled.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(labelled.text, encoding="utf-8")
    single, pooled, workers = pooled_and_single(root, tmp_path, "not-in-the-corpus")
    assert len(workers) == 2 and pooled == single and len(single["findings"]) > 100


def test_runbook_scan_jobs_gives_byte_identical_json(tmp_path):
    """Over the pool threshold: the command line's pool (--jobs 0) prints what --jobs 1 prints."""
    root = build_tree(tmp_path / "tree")
    filler = ("# " + "lorem ipsum dolor sit amet " * 3 + "\n") * 1200  # ~100 KB of text each
    for n in range(50):
        (root / "filler" / f"f{n:02d}.py").parent.mkdir(exist_ok=True)
        (root / "filler" / f"f{n:02d}.py").write_text(filler + f'DB_PASSWORD = "{PASSWORD}{n}"\n')
    env = {**os.environ, "RUNBOOK_FINGERPRINT_KEY": KEY_HEX}
    outputs = {}
    for jobs in ("1", "0", "2"):
        done = subprocess.run([sys.executable, "-m", "runbook_lib.cli", "scan", str(root), "--format", "json",
                               "--jobs", jobs], capture_output=True, text=True, timeout=300, env=env)
        assert done.returncode == 1, done.stderr[-2000:]
        outputs[jobs] = (done.stdout, done.stderr)
    assert outputs["0"] == outputs["1"] == outputs["2"]
    assert len(json.loads(outputs["1"][0])) > 90


def test_jobs_must_be_a_whole_number(capsys):
    from runbook_lib import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", ".", "--jobs", "-1"])
    assert exited.value.code == 2 and "--jobs" in capsys.readouterr().err


DYING = r"""
import os, sys
from runbook_lib import scan_pool
from runbook_lib.exceptions import RunbookError

def task(batch):
    if batch == [2]:
        os._exit(9)  # a worker killed mid-scan
    return batch

try:  # each item over a batch's bytes: a batch each, and over the pool threshold
    scan_pool.run_stream(task, [(n, scan_pool.POOL_MIN_BYTES, True) for n in range(4)], 2)
except RunbookError as exc:
    print(exc)
"""


def test_a_worker_that_dies_fails_the_scan_with_one_line():
    done = subprocess.run([sys.executable, "-c", DYING], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("scan: a worker process stopped before it finished") and "--jobs 1" in done.stdout


def test_a_runbook_error_is_what_the_command_prints(monkeypatch, tmp_path, capsys):
    from runbook_lib import cli

    def broken(*args, **kwargs):
        raise RunbookError("scan: a worker process stopped before it finished")

    monkeypatch.setattr(scan_pool, "run_stream", broken)
    (tmp_path / "a.py").write_text("x = 1\n")
    assert cli.main(["scan", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "runbook: scan: a worker process stopped before it finished"



STREAMED = r"""
import json, os, sys
from runbook_lib import scan_pool

scan_pool.POOL_MIN_BYTES, scan_pool.BATCH_BYTES = 100, 100
walked = []

def walk():  # the pool starts at the second item; the workers report when the walk had got to
    for n in range(12):
        walked.append(n)
        yield n, 60, True

def task(batch):  # a forked worker sees the walk as it was when the pool started
    return batch, os.getpid(), len(walked)

results, side = scan_pool.run_stream(task, walk(), 2, meanwhile=lambda: len(walked))
print(json.dumps({"results": results, "side": side, "parent": os.getpid()}))
"""


def test_the_workers_start_while_the_walk_goes_on_and_results_keep_its_order():
    done = subprocess.run([sys.executable, "-c", STREAMED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert [batch for batch, _, _ in out["results"]] == [[n] for n in range(12)]  # 60 + 60 > 100: a batch each
    assert out["parent"] not in {pid for _, pid, _ in out["results"]}  # every batch in a worker
    assert {seen for _, _, seen in out["results"]} == {2}  # forked after two items, ten still to walk
    assert out["side"] == 12  # meanwhile ran after the whole walk
