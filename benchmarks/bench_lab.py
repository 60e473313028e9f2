"""Whole-process timing of the lab cycle, ``runbook run --target lab``, as a user runs it.

Run: ``.venv/bin/python benchmarks/bench_lab.py [--runs 3] [--internals]``.

Runs ``.venv/bin/runbook run --target lab --out DIR`` (its own lab, the four notebooks:
test plan, implementation, validation, backout) ``--runs`` times, and prints the median
and range of the wall time, CPU and peak RSS of the process, the exit codes, and the
per-notebook seconds from each run's ``summary.md`` (median per notebook). Issue 19's
target for the cycle is 10 s.

Then it times the lab's own start as the runner pays it, a whole process too:
``python -m runbook_lib.lab serve --seed --ready-file F`` from the command to the ready
file (the seeded lab answering), with the CPU seconds the lab process used until then
(``/proc``; the machine is shared, so CPU says more than wall time).

``--internals`` also times, inside this process, the lab's start to ready (empty and
seeded) and warm Lambda invokes: those are figures of the lab's parts, not of a command a
user runs, and are labelled so.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from runbook_lib.lab import Lab  # noqa: E402
from whole_process import describe, describe_cpu, describe_rss, load_average, run_process  # noqa: E402

RUNBOOK = ROOT / ".venv" / "bin" / "runbook"

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def measure_starts(runs: int, seed: bool) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.monotonic()
        with Lab(seed=seed):
            seconds.append(time.monotonic() - started)
    return seconds


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a running process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_lab_process_start(runs: int) -> tuple[list[float], list[float]]:
    """Whole-process lab start, seeded: (wall seconds to the ready file, lab CPU seconds by then)."""
    walls, cpus = [], []
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-lab-start-") as folder:
            ready = Path(folder) / "ready.json"
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-m", "runbook_lib.lab", "serve", "--port", "0", "--seed",
                                     "--ready-file", str(ready)], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while not ready.exists() and proc.poll() is None:
                    time.sleep(0.005)
                walls.append(time.perf_counter() - started)
                cpu = _cpu_seconds(proc.pid)
                if cpu is not None:
                    cpus.append(cpu)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
            if proc.returncode not in (0, -signal.SIGTERM) or not walls:
                raise SystemExit(f"bench_lab: the lab did not start (exit code {proc.returncode})")
    return walls, cpus


def describe_cpu_seconds(values: list[float]) -> str:
    if not values:
        return "CPU not measured (no /proc)"
    return f"CPU median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f} s)"


FUNCTIONS = {  # runtime -> (handler, file, code)
    "python3.12": ("app.handler", "app.py", "def handler(event, context):\n    return {'ok': True}\n"),
    "nodejs22.x": ("index.handler", "index.js", "exports.handler = async () => ({ ok: true });\n"),
}


def _package(name: str, code: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16  # Lambda's runtime user must read it
        archive.writestr(info, code)
    return buffer.getvalue()


def measure_invokes(count: int) -> dict[str, tuple[float, list[float]]]:
    """runtime -> (cold start ms, warm invoke ms...)."""
    results = {}
    with Lab(seed=False) as lab:
        if lab.health()["runtime"] != "ready":
            print(f"warm invoke: skipped ({lab.health()['runtime']})")
            return results
        role = lab.client("iam").create_role(RoleName="bench-role",
                                             AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        lam = lab.client("lambda")
        for runtime, (handler, file, code) in FUNCTIONS.items():
            name = f"bench-{runtime.replace('.', '-')}"
            lam.create_function(FunctionName=name, Runtime=runtime, Role=role, Handler=handler,
                                Code={"ZipFile": _package(file, code)})
            lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1})
            started = time.monotonic()
            cold = lam.invoke(FunctionName=name, Payload=b"{}")
            cold_ms = (time.monotonic() - started) * 1000
            if cold.get("FunctionError") or cold["StatusCode"] != 200:
                print(f"{runtime}: skipped ({cold['Payload'].read()[:200]!r})")
                continue
            timings = []
            for _ in range(count):
                started = time.monotonic()
                lam.invoke(FunctionName=name, Payload=b"{}")["Payload"].read()
                timings.append((time.monotonic() - started) * 1000)
            results[runtime] = (cold_ms, timings)
    return results


def notebook_rows(summary_md: str) -> list[tuple[str, str, float]]:
    """(notebook, status, seconds) from the Notebooks table of a run's ``summary.md``."""
    return [(name, status, float(seconds))
            for name, status, seconds in re.findall(r"^\| (\S+) \| (\w+) \| ([\d.]+) \|", summary_md, re.M)]


def run_cmd(out: Path) -> list[str]:
    return [str(RUNBOOK), "run", "--target", "lab", "--out", str(out)]


def measure_cycle(runs: int) -> None:
    print(f"runbook: {' '.join(run_cmd(Path('DIR')))}; cores: {os.cpu_count()}; {load_average()}")
    timings, per_notebook = [], {}
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-lab-") as out:
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python keeps the package's bytecode
            timings.append(run_process(run_cmd(Path(out)), env=env))
            summaries = list(Path(out).glob("*/summary.md"))
            for name, status, seconds in notebook_rows(summaries[0].read_text()) if summaries else []:
                per_notebook.setdefault(name, []).append((seconds, status))
    print(f"\n## runbook run --target lab, whole process; {load_average()} (after the runs)")
    print(f"runbook run  {describe([t.seconds for t in timings])}; {describe_cpu(timings)}; "
          f"{describe_rss(timings)}; exit codes {[t.returncode for t in timings]} (issue 19 target <= 10 s)")
    for name, values in per_notebook.items():
        statuses = sorted({status for _, status in values})
        print(f"  {name:26s} {describe([v for v, _ in values])} ({'/'.join(statuses)})")
    if not per_notebook:
        print("  no summary.md in the run folders: the runs failed before the summary")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="whole-process runs of runbook run (default 3)")
    parser.add_argument("--internals", action="store_true", help="also time lab start and warm invokes in-process")
    parser.add_argument("--starts", type=int, default=5, help="lab starts to time (default 5)")
    parser.add_argument("--invokes", type=int, default=50)
    args = parser.parse_args()
    if not RUNBOOK.exists():
        print(f"bench_lab: {RUNBOOK} is missing: run `make venv` first", file=sys.stderr)
        return 2
    measure_cycle(args.runs)
    walls, cpus = measure_lab_process_start(args.starts)
    print(f"\n## lab start, whole process (python -m runbook_lib.lab serve --seed, command to ready file); "
          f"{load_average()}")
    print(f"lab start    {describe(walls)}; lab {describe_cpu_seconds(cpus)}")
    if not args.internals:
        return 0
    print("\n## lab internals, timed inside this process (not a whole command)")
    for seed, label in ((False, "empty"), (True, "seeded, as `runbook run` starts it")):
        starts = measure_starts(args.starts, seed)
        print(f"lab start to ready ({label}): {describe(starts)}")
    for runtime, (cold_ms, invokes) in measure_invokes(args.invokes).items():
        print(f"{runtime}: cold start {cold_ms:.0f} ms; warm invoke median {statistics.median(invokes):.1f} ms, "
              f"p90 {sorted(invokes)[int(len(invokes) * 0.9) - 1]:.1f} ms over {len(invokes)} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
