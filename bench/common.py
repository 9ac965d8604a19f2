"""What the benches share: a throwaway PostgreSQL database, peak RSS, percentiles, a table.

A bench script that supports `--json` prints, as its last stdout line, one JSON object:

    {"bench": "pages", "context": "...", "metrics": [
        {"metric": "...", "measured": 123.4, "unit": "ms", "target": 250, "ok": true}, ...]}

`target` is null (and `ok` null) for a measurement without a target. bench/run.py reads it.
"""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


# --- databases ----------------------------------------------------------------------------


def postgres_base_url() -> str:
    """The server to create bench databases on: DATABASE_URL when it is PostgreSQL."""
    url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else DEFAULT_POSTGRES


def _admin_url(url: str) -> str:
    return urlparse(url)._replace(path="/postgres").geturl()


def database_create(name: str, *, migrate: bool = True) -> str:
    """Drop and create database `name` on the bench PostgreSQL server, migrate it; its URL."""
    import psycopg

    base = postgres_base_url()
    with psycopg.connect(_admin_url(base), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlparse(base)._replace(path=f"/{name}").geturl()
    if migrate:
        env = bench_env(url)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"],
            env=env,
            cwd=ROOT,
            check=True,
        )
    return url


def database_drop(name: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(postgres_base_url()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a bench child process: this database, no Redis, dev settings."""
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}
    env.setdefault("DEBUG", "true")
    env.pop("REDIS_URL", None)  # nothing is enqueued from a bench
    env.update(extra)
    return env


def django_setup(database_url: str, **env: str) -> None:
    """Point this process at `database_url` and set Django up (call once, before any model)."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ.update(env)
    import django

    django.setup()


# --- memory -------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_peak_rss_mb(pid: int) -> float | None:
    """Another live process's peak RSS (VmHWM), or None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# --- statistics ---------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# --- output -------------------------------------------------------------------------------


def metric(
    name: str,
    measured: float | None,
    unit: str,
    target: float | None = None,
    *,
    higher_is_better: bool = False,
    note: str = "",
) -> dict[str, Any]:
    ok = None
    if target is not None and measured is not None and not math.isnan(measured):
        ok = measured >= target if higher_is_better else measured <= target
    elif target is not None:
        ok = False
    return {
        "metric": name,
        "measured": measured,
        "unit": unit,
        "target": target,
        "target_op": ">=" if higher_is_better else "<=",
        "ok": ok,
        "note": note,
    }


def fmt_value(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if float(value).is_integer() or abs(value) >= 100:
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".strip()


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("pass" if ok else "FAIL")


def metric_rows(metrics: list[dict[str, Any]], bench: str = "") -> list[list[str]]:
    rows = []
    for m in metrics:
        target = (
            "-" if m["target"] is None else f"{m['target_op']} {fmt_value(m['target'], m['unit'])}"
        )
        row = [m["metric"], fmt_value(m["measured"], m["unit"]), target, verdict(m["ok"])]
        rows.append(([bench] if bench else []) + row)
    return rows


def table(headers: list[str], rows: list[list[str]], *, right: set[int] | None = None) -> str:
    """A plain text table; columns in `right` are right-aligned."""
    right = right or set()
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(str(cell)))

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(c).rjust(widths[i]) if i in right else str(c).ljust(widths[i])
            for i, c in enumerate(cells)
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def report(bench: str, context: str, metrics: list[dict[str, Any]], *, as_json: bool) -> None:
    """Print the bench's own table; with `as_json`, then one JSON line for bench/run.py."""
    print(f"\n{bench} bench: {context}\n")
    print(table(["metric", "measured", "target", "result"], metric_rows(metrics), right={1, 2}))
    if as_json:
        print(json.dumps({"bench": bench, "context": context, "metrics": metrics}))
    sys.stdout.flush()
