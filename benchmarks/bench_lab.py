"""Benchmark the embedded lab: start-to-ready seconds, cold start and warm Invoke latency.

Run: ``python benchmarks/bench_lab.py [--starts 5] [--invokes 50]``.
Targets: start under 3 s, warm invoke median under 100 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runbook_lib.lab import Lab  # noqa: E402

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def measure_starts(runs: int, seed: bool) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.monotonic()
        with Lab(seed=seed):
            seconds.append(time.monotonic() - started)
    return seconds


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--invokes", type=int, default=50)
    args = parser.parse_args()
    for seed, label in ((False, "empty"), (True, "seeded, as `runbook run` starts it")):
        starts = measure_starts(args.starts, seed)
        print(f"lab start to ready ({label}): median {statistics.median(starts):.2f} s "
              f"(runs: {', '.join(f'{s:.2f}' for s in starts)}; target < 3 s)")
    for runtime, (cold_ms, invokes) in measure_invokes(args.invokes).items():
        print(f"{runtime}: cold start {cold_ms:.0f} ms; warm invoke median {statistics.median(invokes):.1f} ms, "
              f"p90 {sorted(invokes)[int(len(invokes) * 0.9) - 1]:.1f} ms over {len(invokes)} calls "
              f"(target < 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
