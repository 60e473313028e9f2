"""Whole-process timings of ``runbook audit`` against Prowler's Lambda secret checks, same lab.

The script starts one embedded lab (``runbook_lib.lab.Lab``, seeded: the demo's four
functions) and adds functions with code packages, some with planted secrets in variables,
code or shared layers, until it holds ``--functions`` (default 50). Against that same lab,
alternated (A B A B ...), ``--runs`` times each, it runs as whole processes:

- ``.venv/bin/runbook audit --target lab --endpoint-url URL --out DIR`` (exit 1 means
  findings; its test plan scans variables, code and layers);
- ``prowler aws -c awslambda_function_no_secrets_in_variables
  awslambda_function_no_secrets_in_code awslambda_layer_no_secrets_in_content ...``
  (Prowler 5's three Lambda checks that look for secrets: variables, code, layers; the
  layer check reports per layer version, the other two per function;
  ``--prowler-checks`` overrides),
  with the lab's credentials and ``AWS_ENDPOINT_URL`` in its environment.

It prints median and range of each side's wall time, CPU and peak RSS, the ratio of medians,
the AWS calls per function the audit reports, which functions each side flagged, and the
seconds of each cell of the test plan notebook (papermill records them in the executed notebook). Then,
unless ``--large 0``, it grows the lab to ``--large`` functions (default 500) and times
``runbook audit`` alone there (Prowler would take minutes per run at that size).

Prowler is installed from PyPI into its own venv, ``benchmarks/.venv-prowler``
(``python3 -m venv`` + ``pip install prowler``; it pins its own boto3), on first use; if it
cannot be installed or run, the reason is printed and the runbook's figures stand alone.
Planted values are random per run and never printed: the script compares function names.

Usage: ``.venv/bin/python benchmarks/bench_audit.py [--functions 50] [--runs 3] [--large 500]
[--large-runs 2] [--no-prowler]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
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
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from runbook_lib.lab import Lab  # noqa: E402
from whole_process import describe, describe_cpu, describe_rss, load_average, ratio, run_alternated, run_process  # noqa: E402,E501

RUNBOOK = ROOT / ".venv" / "bin" / "runbook"
PROWLER_VENV = HERE / ".venv-prowler"
PROWLER_CHECKS = ["awslambda_function_no_secrets_in_variables", "awslambda_function_no_secrets_in_code",
                  "awslambda_layer_no_secrets_in_content"]
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
    """Functions, layers and where a value was planted in them."""

    def __init__(self, lab):
        self.lab = lab
        self.expected: set[tuple[str, str]] = set()  # (function, location) of every planted value
        self.packages: set[bytes] = set()
        self.lam = lab.client("lambda")
        iam = lab.client("iam")
        self.role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
        self.layers: list[tuple[str, bool]] = []  # (layer version arn, holds a token)

    def add_layers(self, count: int) -> None:
        for i in range(count):
            token = secrets.token_hex(20) if i % 2 == 0 else None
            config = {"service_token": token} if token else {"log_level": "INFO"}
            arn = self.lam.publish_layer_version(
                LayerName=f"bench-layer-{i}", CompatibleRuntimes=["python3.12"],
                Content={"ZipFile": zip_bytes({"python/bench_config.json": json.dumps(config, indent=1)})},
            )["LayerVersionArn"]
            self.layers.append((arn, bool(token)))

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
            self.expected.add((name, "environment"))
        if i % 10 == 3:  # hardcoded AWS keys in the code
            key_id, secret = random_access_key()
            code["legacy.py"] = (f'AWS_ACCESS_KEY_ID = "{key_id}"\n'
                                 f'AWS_SECRET_ACCESS_KEY = "{secret}"\n')
            self.expected.add((name, "code"))
        layer_arn, layer_secret = self.layers[i % len(self.layers)]
        if layer_secret:
            self.expected.add((name, "layer"))
        package = zip_bytes(code)
        self.packages.add(package if not shared else b"shared")
        self.lam.create_function(FunctionName=name, Runtime="python3.12", Role=self.role,
                                 Handler="app.handler", Code={"ZipFile": package}, Layers=[layer_arn],
                                 Environment={"Variables": env}, Timeout=10)


# -- the runbook ------------------------------------------------------------------------------
def runbook_audit_cmd(lab, out: Path) -> list[str]:
    return [str(RUNBOOK), "audit", "--target", "lab", "--endpoint-url", lab.endpoint_url, "--out", str(out)]


def lab_env(lab, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(lab.env)
    env["HOME"] = str(home)  # keep the tools' own configs and caches out of the user's home
    # a user's Python writes bytecode: with this set, every run would compile the runbook's package anew
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def last_run(out: Path) -> Path | None:
    runs = sorted(p for p in out.iterdir() if p.is_dir()) if out.is_dir() else []
    return runs[-1] if runs else None


def audit_result(run_dir: Path | None) -> dict:
    """The audit's own coverage summary and flagged functions, read from its run folder."""
    if run_dir is None or not (run_dir / "coverage.json").exists():
        return {}
    summary = json.loads((run_dir / "coverage.json").read_text())["summary"]
    findings = json.loads((run_dir / "findings.json").read_text())["findings"]
    by_location: dict[str, set[str]] = {}
    for f in findings:
        by_location.setdefault(f["location"], set()).add(f["function"])
    layers = {str(f.get("layer") or "").split(":")[0] for f in findings if f["location"] == "layer"}
    return {"summary": summary, "flagged": by_location, "layers": layers - {""}}


def resource_name(resource: dict) -> str:
    """A function's or a layer's name from a Prowler OCSF resource (the layer's name without its version)."""
    uid = str(resource.get("uid", ""))
    layer = re.search(r":layer:([^:]+)", uid)
    if layer:
        return layer.group(1)
    return str(resource.get("name") or uid).split(":")[-1]


def notebook_seconds(run_dir: Path | None) -> str:
    """The per-notebook seconds the run's ``summary.md`` reports."""
    if run_dir is None or not (run_dir / "summary.md").exists():
        return "no summary.md"
    rows = re.findall(r"^\| (\S+) \| (\w+) \| ([\d.]+) \|", (run_dir / "summary.md").read_text(), re.M)
    return ", ".join(f"{name} {seconds} s ({status})" for name, status, seconds in rows)


def cell_seconds(run_dir: Path | None) -> str:
    """Each code cell's seconds in the run's executed test plan (papermill's ``metadata.papermill.duration``).

    A cell is named by the heading above it (``Step 1 · Inventory and scan``), a parameters cell
    by its tag; the kernel's start and the runner's saves and exports are not in any cell.
    """
    notebook = run_dir / "01_test_plan.ipynb" if run_dir else None
    if notebook is None or not notebook.exists():
        return "no executed 01_test_plan.ipynb"
    heading, seen, parts = "top", {}, []
    for cell in json.loads(notebook.read_text())["cells"]:
        source = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            titles = [line.lstrip("#").strip() for line in source.splitlines() if line.startswith("#")]
            heading = titles[0] if titles else heading
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        name = next((t for t in tags if "parameters" in t), heading)
        seen[name] = seen.get(name, 0) + 1
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if duration is not None:
            parts.append(f"{name}{' #' + str(seen[name]) if seen[name] > 1 else ''} {duration:.2f}")
    return "; ".join(parts)


# -- Prowler ---------------------------------------------------------------------------------
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


def prowler_version(exe: Path) -> str:
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr).strip() else "?"


def prowler_cmd(exe: Path, lab, checks: list[str], out: Path) -> list[str]:
    return [str(exe), "aws", "-c", *checks, "-f", lab.region, "--no-banner",
            "-M", "json-ocsf", "-o", str(out), "-F", "prowler"]


def prowler_result(out: Path, checks: list[str]) -> dict:
    """check -> {"FAIL": n, "PASS": n, "other": n, "flagged": {function, ...}} from Prowler's OCSF file."""
    files = list(out.glob("prowler*.ocsf.json"))
    if not files:
        return {}
    result = {c: {"FAIL": 0, "PASS": 0, "other": 0, "flagged": set()} for c in checks}
    for item in json.loads(files[0].read_text() or "[]"):
        code = (item.get("metadata") or {}).get("event_code") or (item.get("finding_info") or {}).get("uid", "")
        check = next((c for c in checks if c == code or c in str(code)), None)
        if not check:
            continue
        status = str(item.get("status_code", "")).upper()
        result[check][status if status in ("FAIL", "PASS") else "other"] += 1
        if status == "FAIL":
            for res in item.get("resources") or []:
                result[check]["flagged"].add(resource_name(res))
    return result


# -- the comparison ------------------------------------------------------------------------
def side_by_side(lab, population: Population, args, work: Path) -> None:
    exe, why = (None, "--no-prowler") if args.no_prowler else ensure_prowler()
    checks = args.prowler_checks.split(",") if args.prowler_checks else PROWLER_CHECKS
    print(f"runbook: {' '.join(runbook_audit_cmd(lab, Path('DIR')))}")
    if exe:
        print(f"prowler: {prowler_version(exe)}: {' '.join(prowler_cmd(Path('prowler'), lab, checks, Path('DIR')))}")
    else:
        print(f"prowler: not run - {why}")
    env = lab_env(lab, work)
    outs = {"runbook": work / "runbook-runs", "prowler": work / "prowler-out"}

    def audit():
        shutil.rmtree(outs["runbook"], ignore_errors=True)
        outs["runbook"].mkdir()
        return run_process(runbook_audit_cmd(lab, outs["runbook"]), env=env)

    def prowler():
        shutil.rmtree(outs["prowler"], ignore_errors=True)
        return run_process(prowler_cmd(exe, lab, checks, outs["prowler"]), env=env, timeout=1200)

    cmds = {"runbook": audit, **({"prowler": prowler} if exe else {})}
    results = run_alternated(cmds, args.runs)
    print(f"\n## {args.functions} functions, same lab; {load_average()} (after the runs)")
    for side, timings in results.items():
        print(f"{side:8s} {describe([t.seconds for t in timings])}; {describe_cpu(timings)}; "
              f"{describe_rss(timings)}; exit codes {sorted({t.returncode for t in timings})}")
    ours = audit_result(last_run(outs["runbook"]))
    if not ours:
        print("runbook audit left no coverage.json: its figures are not valid")
        return
    summary = ours["summary"]
    print(f"runbook audit: {summary['functions_seen']} functions, {summary['findings']} findings "
          f"{summary['findings_by_location']}; AWS calls {summary['api_calls']} "
          f"({summary['api_calls'] / summary['functions_seen']:.2f} per function; "
          f"{summary['api_calls_per_function_beyond_listing']} per function beyond the listing) "
          f"{summary['api_calls_by_operation']}")
    got = {(fn, loc) for loc, fns in ours["flagged"].items() for fn in fns}
    print(f"planted (function, location) pairs: {len(population.expected)}, "
          f"the audit missed {len(population.expected - got)}")
    print(f"test plan cells (s, last run): {cell_seconds(last_run(outs['runbook']))}")
    if "prowler" not in results:
        return
    theirs = prowler_result(outs["prowler"], checks)
    if not theirs:
        print("Prowler left no OCSF output: its run failed, figures above are its failure time")
        return
    matching = {checks[0]: "environment", checks[1]: "code", checks[2] if len(checks) > 2 else "": "layer"}
    for check, counts in theirs.items():
        location = matching.get(check)
        mine = (ours["layers"] if location == "layer" else ours["flagged"].get(location, set())) if location else set()
        unit = "layers" if location == "layer" else "functions"
        print(f"  {check}: {counts['FAIL']} FAIL / {counts['PASS']} PASS / {counts['other']} other; "
              f"{unit} flagged by the audit ({location}) only: {len(mine - counts['flagged'])}, "
              f"by Prowler only: {len(counts['flagged'] - mine)}, by both: {len(mine & counts['flagged'])}")
    print(f"ratio of medians prowler / runbook audit: "
          f"{ratio([t.seconds for t in results['prowler']], [t.seconds for t in results['runbook']])} "
          f"(issue 19 target >= 15x); AWS calls per function {summary['api_calls'] / summary['functions_seen']:.2f} "
          f"(target <= 1.2)")


def large(lab, population: Population, args, work: Path) -> None:
    population.add_functions(args.large - args.functions, "big")
    out = work / "large-runs"
    env = lab_env(lab, work)

    def audit():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        return run_process(runbook_audit_cmd(lab, out), env=env)

    timings = run_alternated({"runbook": audit}, args.large_runs)["runbook"]
    ours = audit_result(last_run(out))
    print(f"\n## {args.large} functions, runbook audit alone; {load_average()} (after the runs)")
    print(f"runbook  {describe([t.seconds for t in timings])}; {describe_cpu(timings)}; {describe_rss(timings)} "
          f"(issue 19 target <= 5 s)")
    if ours:
        s = ours["summary"]
        print(f"runbook audit: {s['functions_seen']} functions, {s['findings']} findings; AWS calls "
              f"{s['api_calls']} ({s['api_calls'] / s['functions_seen']:.2f} per function); "
              f"notebooks: {notebook_seconds(last_run(out))}")
        print(f"test plan cells (s, last run): {cell_seconds(last_run(out))}")
        got = {(fn, loc) for loc, fns in ours["flagged"].items() for fn in fns}
        print(f"planted (function, location) pairs: {len(population.expected)}, "
              f"the audit missed {len(population.expected - got)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=50, help="functions in the side-by-side lab (default 50)")
    parser.add_argument("--runs", type=int, default=3, help="alternated runs per side (default 3)")
    parser.add_argument("--large", type=int, default=500, help="then audit this many alone (0: skip)")
    parser.add_argument("--large-runs", type=int, default=2)
    parser.add_argument("--no-prowler", action="store_true")
    parser.add_argument("--prowler-checks", default="", help="comma-separated Prowler check ids")
    args = parser.parse_args()
    if not RUNBOOK.exists():
        print(f"bench_audit: {RUNBOOK} is missing: run `make venv` first", file=sys.stderr)
        return 2
    print(f"cores: {os.cpu_count()}; {load_average()}")
    with Lab(seed=True) as lab, tempfile.TemporaryDirectory(prefix="bench-audit-") as tmp:
        population = Population(lab)
        population.add_layers(2)
        setup = population.add_functions(args.functions - 4, "pb")  # + the 4 seeded functions
        print(f"lab: {args.functions} functions ({args.functions - 4} added in {setup:.1f} s, 2 layers)")
        side_by_side(lab, population, args, Path(tmp))
        if args.large > args.functions:
            large(lab, population, args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
