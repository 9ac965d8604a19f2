"""/metrics scrape time on PostgreSQL at 150,000 allocations (issue 12: about 200 ms).

Usage: .venv/bin/python bench/metrics_bench.py [--quick] [--json] [--scrapes 30]
       [--allocations 150000] [--nads 2000] [--nodes 5000]

Creates a throwaway PostgreSQL database (ippam_bench_metrics), fills it as leaks_bench.py
does (rows shaped like a full sync of the scale scenario: one pod per allocation, an ORIP
each, 1% planted leaks), runs the real leak detection (findings and alerts), and adds a
history of 200 full syncs, 2,000 reclaim items and the watcher's event counters. Then
scrapes /metrics through Django's test Client with the bearer token (DEBUG off): 3 warm-ups,
N timed; prints median and p95 wall time, queries per scrape and the response size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DB_NAME = "ippam_bench_metrics"
TOKEN = "bench-token"
TARGET_MS = 200.0


def extras(cluster_id: int) -> None:
    """What the scale fill lacks: sync history, reclaim outcomes, watch event counters."""
    from datetime import timedelta

    from django.utils import timezone

    from ippam.models import ReclaimItem, ReclaimRun, SyncRun, WatchEventCount

    now = timezone.now()
    runs = SyncRun.objects.bulk_create(
        [SyncRun(cluster_id=cluster_id, outcome=SyncRun.Outcome.OK) for _ in range(200)]
    )
    for i, run in enumerate(runs):
        started = now - timedelta(minutes=5 * (200 - i))
        SyncRun.objects.filter(pk=run.pk).update(
            started_at=started, finished_at=started + timedelta(seconds=12)
        )
    outcomes = [o for o in ReclaimItem.Outcome.values if o != ReclaimItem.Outcome.PENDING]
    for r in range(20):
        run = ReclaimRun.objects.create(
            cluster_id=cluster_id, actor="bench", state=ReclaimRun.State.DONE
        )
        ReclaimItem.objects.bulk_create(
            [
                ReclaimItem(
                    run=run,
                    finding_identity=f"f{r}-{i}",
                    kind="orphaned_allocation",
                    outcome=outcomes[i % len(outcomes)],
                )
                for i in range(100)
            ]
        )
    WatchEventCount.objects.bulk_create(
        [
            WatchEventCount(cluster_id=cluster_id, kind=kind, total=1000 * (i + 1))
            for i, kind in enumerate(
                ["nads", "ippools", "reservations", "nodeslicepools", "nodes", "pods", "events"]
            )
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30,000 allocations, 10 scrapes")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--allocations", type=int, default=150_000)
    parser.add_argument("--nads", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--leak-percent", type=float, default=1.0)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.allocations, args.scrapes = min(args.allocations, 30_000), 10

    url = common.database_create(DB_NAME)
    try:
        common.django_setup(url, DEBUG="false", IPPAM_METRICS_TOKEN=TOKEN, SECRET_KEY="x" * 60)
        import leaks_bench  # after django_setup: it sets Django up on import otherwise
        from django.conf import settings
        from django.db import connection
        from django.test import Client
        from django.test.utils import setup_test_environment

        from ippam.leaks.detect import leaks_detect
        from ippam.metrics import metrics_text
        from ippam.models import Cluster

        t0 = time.monotonic()
        planted = leaks_bench.fill(args)
        cluster = Cluster.objects.get(pk=planted["cluster"])
        leaks_detect(cluster=cluster)
        extras(cluster.pk)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        fill_s = time.monotonic() - t0

        setup_test_environment()
        settings.ALLOWED_HOSTS = ["testserver"]
        client = Client()
        for _ in range(3):
            assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
        # The collector's own queries, counted as they run (DEBUG is off: no query log).
        executed: list[str] = []

        def counting(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            executed.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counting):
            size = len(metrics_text())
        times = []
        for _ in range(args.scrapes):
            t = time.perf_counter()
            client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
            times.append((time.perf_counter() - t) * 1000)
        metrics = [
            common.metric("scrape p95", common.percentile(times, 95), "ms", TARGET_MS),
            common.metric("scrape median", common.median(times), "ms"),
            common.metric("queries per scrape", len(executed), ""),
            common.metric("response size", size / 1024, "KiB"),
        ]
        context = (
            f"{args.allocations:,} allocations, {args.nads:,} NADs, {args.nodes:,} nodes on "
            f"PostgreSQL; {args.scrapes} scrapes (filled in {fill_s:.0f} s)"
        )
        common.report("metrics", context, metrics, as_json=args.json)
    finally:
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            common.database_drop(DB_NAME)


if __name__ == "__main__":
    main()
