"""Benchmark of the test plan's audit against the embedded lab, and Prowler side by side.

Part 1: a lab with 500 functions (code packages, some with planted secrets, several
sharing layers): audit them and print functions per second, API calls per function
beyond the listing, downloads per distinct package, and whether every planted secret
was found. Targets: >= 50 functions/s, <= 2 calls per function, one download per
distinct package, nothing missed.

Part 2: a fresh lab with 50 functions (the seeded four + 46): run Prowler's two Lambda
secret checks and the audit on the same functions, print both wall times, the ratio and
both tools' finding counts. Prowler is installed from PyPI into ``benchmarks/.venv-prowler``
on first use; if it cannot be installed or run, the reason is printed and part 1 stands.

Planted values are random per run and never printed: the script compares fingerprints.

Usage: ``python benchmarks/bench_audit.py [--functions 500] [--prowler-functions 50] [--no-prowler]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from runbook_lib.audit import Audit  # noqa: E402
from runbook_lib.lab import Lab  # noqa: E402
from runbook_lib.redaction import Fingerprinter  # noqa: E402
from runbook_lib.scanning import Scanner  # noqa: E402
from runbook_lib.session import Target  # noqa: E402

PROWLER_VENV = HERE / ".venv-prowler"
PROWLER_CHECKS = ["awslambda_function_no_secrets_in_variables", "awslambda_function_no_secrets_in_code"]
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "lambda.amazonaws.com"}}]})


def zip_bytes(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in files.items():  # fixed timestamps: equal files give equal packages
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), text)
    return buf.getvalue()


def random_access_key() -> tuple[str, str]:
    key_id = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
    return key_id, secret


class Population:
    """Functions, layers and the fingerprints of every value planted in them."""

    def __init__(self, lab, fingerprinter: Fingerprinter):
        self.lab = lab
        self.fp = fingerprinter
        self.expected: set[tuple[str, str, str]] = set()  # (function, location, fingerprint)
        self.packages: set[bytes] = set()
        self.lam = lab.client("lambda")
        iam = lab.client("iam")
        self.role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        self.layers: list[tuple[str, str | None]] = []  # (layer version arn, token fingerprint)

    def add_layers(self, count: int) -> None:
        for i in range(count):
            token = secrets.token_hex(20) if i % 2 == 0 else None
            config = {"service_token": token} if token else {"log_level": "INFO"}
            arn = self.lam.publish_layer_version(
                LayerName=f"bench-layer-{i}", CompatibleRuntimes=["python3.12"],
                Content={"ZipFile": zip_bytes({"python/bench_config.json": json.dumps(config, indent=1)})},
            )["LayerVersionArn"]
            self.layers.append((arn, self.fp(token) if token else None))

    def add_functions(self, count: int, prefix: str, workers: int = 8) -> float:
        started = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(self._create, [(prefix, i) for i in range(count)]))
        return time.monotonic() - started

    def _create(self, job) -> None:
        prefix, i = job
        name = f"{prefix}-{i:04d}"
        env = {"LOG_LEVEL": "INFO", "TABLE_NAME": f"table-{i}"}
        shared = i % 5 == 4  # every fifth function ships the same package as its neighbours
        code = {"app.py": "import json\n\ndef handler(event, context):\n"
                          f"    return {{'statusCode': 200, 'body': json.dumps({{'n': {0 if shared else i}}})}}\n"}
        if i % 10 == 0:  # a secret in the environment
            value = secrets.token_urlsafe(24)
            env["PARTNER_API_KEY"] = value
            self.expected.add((name, "environment", self.fp(value)))
        if i % 10 == 3:  # hardcoded AWS keys in the code
            key_id, secret = random_access_key()
            code["legacy.py"] = (f'AWS_ACCESS_KEY_ID = "{key_id}"\n'
                                 f'AWS_SECRET_ACCESS_KEY = "{secret}"\n')
            self.expected.add((name, "code", self.fp(key_id)))
            self.expected.add((name, "code", self.fp(secret)))
        layer_arn, layer_fp = self.layers[i % len(self.layers)]
        if layer_fp:
            self.expected.add((name, "layer", layer_fp))
        package = zip_bytes(code)
        self.packages.add(package if not shared else b"shared")
        self.lam.create_function(FunctionName=name, Runtime="python3.12", Role=self.role,
                                 Handler="app.handler", Code={"ZipFile": package}, Layers=[layer_arn],
                                 Environment={"Variables": env}, Timeout=10)

    def missed(self, findings: list[dict]) -> list[tuple[str, str]]:
        got = {(f["function"], f["location"], f["fingerprint"]) for f in findings}
        return sorted({(fn, loc) for fn, loc, fp in self.expected if (fn, loc, fp) not in got})


def seeded_expected(lab, fp: Fingerprinter) -> set[tuple[str, str]]:
    """(location, where) the seeded orders-api secrets must be found at; values read live, not printed."""
    return {("environment", "PARTNER_API_KEY"), ("environment", "DB_PASSWORD"), ("code", "app.py"),
            ("layer", "shared_config.json")}


def seeded_missed(findings: list[dict]) -> list[str]:
    mine = [f for f in findings if f["function"] == "orders-api"]
    wanted = seeded_expected(None, None)
    got = {(f["location"], f["variable"] or Path(f["path"]).name) for f in mine}
    missed = [f"{loc} {where}" for loc, where in sorted(wanted) if (loc, where) not in got]
    decoys = sorted({f["function"] for f in findings
                     if f["function"] in ("inventory-sync", "thumbnail-resize", "web-edge-router")})
    return missed + [f"decoy flagged: {d}" for d in decoys]


def run_audit(lab, fingerprinter, workers: int):
    target = Target("lab", lab.region, endpoint_url=lab.endpoint_url, session=lab.session())
    audit = Audit(target, regions=[lab.region], scanner=Scanner(fingerprinter=fingerprinter),
                  max_workers=workers)
    started = time.monotonic()
    result = audit.run()
    return result, time.monotonic() - started


def part_one(n: int, workers: int) -> None:
    fingerprinter = Fingerprinter()
    with Lab(seed=True) as lab:
        population = Population(lab, fingerprinter)
        population.add_layers(6)
        setup = population.add_functions(n - 4, "bench")  # + the 4 seeded functions
        result, wall = run_audit(lab, fingerprinter, workers)
    summary = result.summary
    seen = summary["functions_seen"]
    distinct = len(population.packages) + 4 + 6 + 1  # + seeded packages, bench layers, seeded layer
    print(f"## audit of {seen} functions (lab, {workers} workers)")
    print(f"setup: {n - 4} functions created in {setup:.1f} s")
    print(f"wall time: {wall:.2f} s  ->  {seen / wall:.1f} functions/s (target >= 50)")
    print(f"API calls: {summary['api_calls']} total {summary['api_calls_by_operation']}")
    print(f"API calls per function beyond listing: {summary['api_calls_per_function_beyond_listing']} "
          f"(target <= 2)")
    print(f"downloads: {summary['packages_downloaded']} for <= {distinct} distinct packages")
    print(f"findings: {summary['findings']} {summary['findings_by_location']}; "
          f"coverage: {summary['functions_fully_scanned']}/{seen} fully scanned, "
          f"{summary['gaps_failing']} failing gaps")
    missed = population.missed(result.finding_records)
    print(f"planted secrets: {len(population.expected)}, missed: {len(missed)} {missed[:5]}")
    print(f"seeded secrets missed: {seeded_missed(result.finding_records) or 'none'}")


# -- Prowler --------------------------------------------------------------------------------
def ensure_prowler() -> tuple[Path | None, str]:
    exe = PROWLER_VENV / "bin" / "prowler"
    if exe.exists():
        return exe, ""
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PROWLER_VENV)], check=True, capture_output=True,
                       timeout=300)
        proc = subprocess.run([str(PROWLER_VENV / "bin" / "pip"), "install", "-q", "prowler"],
                              capture_output=True, text=True, timeout=1800)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not create {PROWLER_VENV}: {exc}"
    if proc.returncode != 0 or not exe.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return None, f"pip install prowler failed (exit {proc.returncode}): {' | '.join(tail)}"
    return exe, ""


def run_prowler(exe: Path, lab, out_dir: Path) -> tuple[float, dict | None, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(lab.env)
    env["HOME"] = str(out_dir)  # keep Prowler's own config and caches out of the user's home
    cmd = [str(exe), "aws", "-c", *PROWLER_CHECKS, "-f", lab.region, "--no-banner",
           "-M", "json-ocsf", "-o", str(out_dir), "-F", "prowler"]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        return time.monotonic() - started, None, "Prowler did not finish within 1200 s"
    wall = time.monotonic() - started
    files = list(out_dir.glob("prowler*.ocsf.json"))
    if not files:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-4:])
        return wall, None, f"Prowler exited {proc.returncode} without findings output: {tail[:600]}"
    counts: dict = {c: {"FAIL": 0, "PASS": 0, "other": 0} for c in PROWLER_CHECKS}
    flagged: dict = {c: set() for c in PROWLER_CHECKS}
    for item in json.loads(files[0].read_text() or "[]"):
        check = (item.get("metadata") or {}).get("event_code") or item.get("finding_info", {}).get("uid", "")
        check = next((c for c in PROWLER_CHECKS if c in str(check)), None)
        if not check:
            continue
        status = str(item.get("status_code", "")).upper()
        counts[check][status if status in ("FAIL", "PASS") else "other"] += 1
        if status == "FAIL":
            for res in item.get("resources") or []:
                flagged[check].add(str(res.get("name") or res.get("uid", "")).split(":")[-1])
    return wall, {"counts": counts, "flagged": {k: sorted(v) for k, v in flagged.items()}}, ""


def part_two(n: int, workers: int) -> None:
    print(f"\n## side by side with Prowler on {n} functions")
    exe, why = ensure_prowler()
    fingerprinter = Fingerprinter()
    with Lab(seed=True) as lab:
        population = Population(lab, fingerprinter)
        population.add_layers(2)
        population.add_functions(n - 4, "pb")
        result, audit_wall = run_audit(lab, fingerprinter, workers)
        prowler = None
        if exe is not None:
            out_dir = Path(tempfile.mkdtemp(prefix="prowler-bench-"))
            try:
                prowler_wall, prowler, why = run_prowler(exe, lab, out_dir)
            finally:
                shutil.rmtree(out_dir, ignore_errors=True)
    summary = result.summary
    env_fn = {f["function"] for f in result.finding_records if f["location"] == "environment"}
    code_fn = {f["function"] for f in result.finding_records if f["location"] in ("code", "layer")}
    layer_fn = {f["function"] for f in result.finding_records if f["location"] == "layer"}
    print(f"audit: {audit_wall:.2f} s, {summary['findings']} findings "
          f"({len(env_fn)} functions with secrets in variables, {len(code_fn)} in code or layers), "
          f"planted missed: {len(population.missed(result.finding_records))}, "
          f"seeded missed: {seeded_missed(result.finding_records) or 'none'}")
    if prowler is None:
        print(f"Prowler: not run - {why}")
        return
    counts = prowler["counts"]
    print(f"Prowler: {prowler_wall:.2f} s, " + ", ".join(
        f"{c}: {v['FAIL']} FAIL / {v['PASS']} PASS" for c, v in counts.items()))
    ours = {PROWLER_CHECKS[0]: env_fn, PROWLER_CHECKS[1]: {f["function"] for f in result.finding_records
                                                          if f["location"] == "code"}}
    for check, names in prowler["flagged"].items():
        theirs = set(names)
        print(f"  {check}: Prowler flagged orders-api: {'orders-api' in theirs}; "
              f"only the audit: {sorted(ours[check] - theirs) or 'none'}; "
              f"only Prowler: {sorted(theirs - ours[check]) or 'none'}")
    print(f"  layers: the audit found secrets in the layers of {len(layer_fn)} functions; "
          "Prowler does not read layers")
    print(f"wall-time ratio Prowler/audit: {prowler_wall / audit_wall:.1f}x (target >= 10x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=500)
    parser.add_argument("--prowler-functions", type=int, default=50)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-prowler", action="store_true")
    args = parser.parse_args()
    part_one(args.functions, args.workers)
    if not args.no_prowler:
        part_two(args.prowler_functions, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
