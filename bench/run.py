"""Run every benchmark in bench/ and print one table: metric, measured, target, pass/fail.

Usage: .venv/bin/python bench/run.py [--quick] [--only NAME ...] [--json] [--timeout 900]
       (`make bench` runs it without arguments)

Each bench (sync, leaks, pages, watch, then any other bench/*_bench.py) runs as its own
subprocess, one after the other (they would disturb each other's timings), on PostgreSQL:
DATABASE_URL when it names a PostgreSQL server, else postgres://postgres@127.0.0.1:5432.
Each creates and drops its own throwaway database. A bench whose --help offers `--json`
is asked for it and its metrics are read from its last output line; the others' printed
tables are parsed (bench/README.md says what each measures). `--quick` is passed to the
benches that accept it; benches that do not get smaller sizes where run.py knows them.

Each bench's own output is printed as it finishes, the combined table at the end.
Exit status: 0 when every bench ran and met its targets, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
ORDER = ["sync_bench.py", "leaks_bench.py", "pages_bench.py", "watch_bench.py"]
# For benches without --quick: arguments that make them smaller (and faster).
QUICK_FALLBACK = {
    "leaks_bench.py": [
        "--allocations",
        "30000",
        "--nads",
        "400",
        "--nodes",
        "1000",
        "--repeat",
        "2",
    ],
    "sync_bench.py": ["--scenario", "demo"],
}


def bench_scripts(only: list[str]) -> list[Path]:
    found = sorted(p.name for p in BENCH_DIR.glob("*_bench.py"))
    names = [n for n in ORDER if n in found] + [n for n in found if n not in ORDER]
    if only:
        wanted = {o if o.endswith("_bench.py") else f"{o}_bench.py" for o in only}
        names = [n for n in names if n in wanted]
    return [BENCH_DIR / n for n in names]


def bench_name(script: Path) -> str:
    return script.name.removesuffix("_bench.py")


def options_of(script: Path, env: dict[str, str]) -> str:
    """The script's --help text (empty when it has none)."""
    try:
        out = subprocess.run(
            [common.PYTHON, str(script), "--help"],
            env=env,
            cwd=common.ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ""
    return out.stdout if out.returncode == 0 else ""


# --- parsing the output of benches without --json -----------------------------------------


def parse_sync(text: str) -> list[dict[str, Any]]:
    metrics = []
    for label in (
        "fetch + JSON decode (lists only)",
        "the same, cycle collector on",
        "full sync, empty database",
        "full sync, nothing changed",
    ):
        m = re.search(rf"^{re.escape(label)}\s+([\d.]+)\s+([\d.]+)", text, re.M)
        if m:
            name = "floor: " + label if label.startswith(("fetch", "the same")) else label
            metrics.append(common.metric(f"{name}: time", float(m.group(1)), "s"))
            metrics.append(common.metric(f"{name}: peak RSS", float(m.group(2)), "MB"))
    m = re.search(r"first sync <= ([\d.]+)x fetch: \w+ \(([\d.]+)x\)", text)
    if m:
        metrics.append(
            common.metric("first sync / floor", float(m.group(2)), "x", float(m.group(1)))
        )
    m = re.search(r"resync <= ([\d.]+)x fetch: \w+ \(([\d.]+)x\)", text)
    if m:
        metrics.append(common.metric("resync / floor", float(m.group(2)), "x", float(m.group(1))))
    m = re.search(r"collector on: first sync ([\d.]+)x, resync ([\d.]+)x", text)
    if m:
        metrics.append(common.metric("first sync / floor, collector on", float(m.group(1)), "x"))
        metrics.append(common.metric("resync / floor, collector on", float(m.group(2)), "x"))
    m = re.search(r"RSS <= ([\d.]+) MB: \w+ \(([\d.]+) MB\)", text)
    if m:
        metrics.append(
            common.metric("full sync peak RSS", float(m.group(2)), "MB", float(m.group(1)))
        )
    m = re.search(r"^kubectl get pods -A -o json\s+([\d.]+)\s+([\d.]+)\s+\S+\s+(.*)$", text, re.M)
    if m:
        label = "kubectl get pods -A -o json" + (
            " (NOT RUN: last measured)" if "NOT RUN" in m.group(3) else ""
        )
        metrics.append(common.metric(f"{label}: time", float(m.group(1)), "s"))
        metrics.append(common.metric(f"{label}: peak RSS", float(m.group(2)), "MB"))
    return metrics


def parse_leaks(text: str) -> list[dict[str, Any]]:
    metrics = []
    m = re.search(r"^leaks_detect \(first run: inserts\)\s+([\d.]+)", text, re.M)
    if m:
        metrics.append(common.metric("leaks_detect, first run", float(m.group(1)), "s"))
    m = re.search(r"^leaks_detect \(steady, best of \d+\)\s+([\d.]+)", text, re.M)
    if m:
        metrics.append(common.metric("leaks_detect, steady", float(m.group(1)), "s", 3.0))
    elif metrics:  # --repeat 1: the first run is the only one
        metrics[0] = common.metric("leaks_detect, first run", metrics[0]["measured"], "s", 3.0)
    m = re.search(r"^sum of the rules, one after the other\s+([\d.]+)", text, re.M)
    if m:
        metrics.append(common.metric("leak rules, one after the other", float(m.group(1)), "s"))
    return metrics


PARSERS = {"sync": parse_sync, "leaks": parse_leaks}


# --- running ------------------------------------------------------------------------------


def run_bench(
    script: Path, *, quick: bool, env: dict[str, str], timeout: float
) -> tuple[dict[str, Any], str]:
    """({bench, context, metrics, seconds, error}, the bench's printed output)."""
    name = bench_name(script)
    help_text = options_of(script, env)
    args: list[str] = []
    wants_json = "--json" in help_text
    if wants_json:
        args.append("--json")
    reduced = False
    if quick:
        if "--quick" in help_text:
            args.append("--quick")
        else:
            args.extend(QUICK_FALLBACK.get(script.name, []))
            reduced = script.name in QUICK_FALLBACK
    print(f"== {name}: {script.name} {' '.join(args)}".rstrip(), file=sys.stderr, flush=True)
    started = time.monotonic()
    result: dict[str, Any] = {"bench": name, "context": "", "metrics": [], "error": ""}
    try:
        out = subprocess.run(
            [common.PYTHON, str(script), *args],
            env=env,
            cwd=common.ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        stdout, stderr, code = out.stdout, out.stderr, out.returncode
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        code = None
    result["seconds"] = time.monotonic() - started
    lines = stdout.rstrip().splitlines()
    if wants_json and lines and lines[-1].startswith("{"):
        try:
            data = json.loads(lines[-1])
            result["context"] = data.get("context", "")
            result["metrics"] = data.get("metrics", [])
            lines = lines[:-1]
        except ValueError:
            pass
    elif name in PARSERS:
        result["metrics"] = PARSERS[name]("\n".join(lines))
    if reduced:
        # Smaller than the size the targets are set for: show them, judge nothing.
        for m in result["metrics"]:
            m["metric"] += " (reduced size)"
            m["ok"] = None
    printed = "\n".join(lines).strip()
    if code is None:
        result["error"] = f"timed out after {timeout:.0f}s"
    elif code != 0:
        result["error"] = f"exit status {code}"
    elif not result["metrics"]:
        result["error"] = "no metrics found in its output"
    if result["error"]:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        printed = f"{printed}\n[{name}: {result['error']}]\n{tail}".strip()
    return result, printed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller or shorter runs")
    parser.add_argument(
        "--only", action="append", default=[], help="run only this bench (sync, leaks, ...)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON at the end")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per bench")
    args = parser.parse_args()

    base = common.postgres_base_url()
    # sync_bench and leaks_bench take their backend from DATABASE_URL (a test database /
    # their own database next to it); pages and watch create theirs on the same server.
    env = common.bench_env(base.rsplit("/", 1)[0] + "/ippam_bench")
    env.pop("DEBUG", None)
    env["DEBUG"] = "true"
    scripts = bench_scripts(args.only)
    if not scripts:
        raise SystemExit("no bench matches")
    load = os.getloadavg()
    print(
        f"running {len(scripts)} bench{'es' if len(scripts) != 1 else ''} on {os.cpu_count()} CPUs, PostgreSQL at "
        f"{base.rsplit('/', 1)[0]}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}",
        file=sys.stderr,
        flush=True,
    )
    results = []
    for script in scripts:
        result, printed = run_bench(script, quick=args.quick, env=env, timeout=args.timeout)
        results.append(result)
        print(f"\n######## {result['bench']} ({result['seconds']:.0f}s)\n{printed}\n", flush=True)

    rows = []
    failed = False
    for result in results:
        if result["error"]:
            failed = True
            rows.append([result["bench"], f"(did not finish: {result['error']})", "-", "-", "FAIL"])
        for m in result["metrics"]:
            failed |= m.get("ok") is False
            rows.extend(common.metric_rows([m], result["bench"]))
    print("\n======== all benches" + (" (--quick)" if args.quick else "") + "\n")
    print(common.table(["bench", "metric", "measured", "target", "result"], rows, right={2, 3}))
    missed = [r for r in rows if r[-1] == "FAIL"]
    print(
        f"\n{len(missed)} of {sum(1 for r in rows if r[-1] != '-')} targets missed"
        if missed
        else "\nevery target met"
    )
    if args.json:
        print(json.dumps({"quick": args.quick, "results": results}, default=str))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
