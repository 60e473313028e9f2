"""Benchmark the embedded lab: start-to-ready seconds and warm Invoke latency.

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


def measure_invokes(count: int) -> list[float] | None:
    with Lab(seed=False) as lab:
        if lab.health()["runtime"] != "ready":
            print(f"warm invoke: skipped ({lab.health()['runtime']})")
            return None
        role = lab.client("iam").create_role(RoleName="bench-role",
                                             AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return {'ok': True}\n")
        lam = lab.client("lambda")
        lam.create_function(FunctionName="bench", Runtime="python3.12", Role=role, Handler="app.handler",
                            Code={"ZipFile": buffer.getvalue()})
        lam.invoke(FunctionName="bench", Payload=b"{}")  # cold start, not measured
        timings = []
        for _ in range(count):
            started = time.monotonic()
            answer = lam.invoke(FunctionName="bench", Payload=b"{}")
            answer["Payload"].read()
            timings.append((time.monotonic() - started) * 1000)
        return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--invokes", type=int, default=50)
    args = parser.parse_args()
    for seed, label in ((False, "empty"), (True, "seeded, as `runbook run` starts it")):
        starts = measure_starts(args.starts, seed)
        print(f"lab start to ready ({label}): median {statistics.median(starts):.2f} s "
              f"(runs: {', '.join(f'{s:.2f}' for s in starts)}; target < 3 s)")
    invokes = measure_invokes(args.invokes)
    if invokes:
        print(f"warm invoke: median {statistics.median(invokes):.1f} ms, p90 "
              f"{sorted(invokes)[int(len(invokes) * 0.9) - 1]:.1f} ms over {len(invokes)} calls "
              f"(target < 100 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
