"""Fleet figures (issue 15): many clusters, Celery workers on Redis, sharded watchers.

Usage: .venv/bin/python bench/fleet_bench.py [--quick] [--json] [--clusters 4] [--pods 1500]
       [--rate 200] [--seconds 10] [--watchers 2] [--keep-db]
       full size: --clusters 20 --pods 7500

Starts `python -m simcluster.fleet` (one process, one port per cluster, each with its own
store), a throwaway PostgreSQL database (ippam_bench_fleet) and registers every cluster.
Then, in order:

1. first sync of the whole fleet with 1 Celery worker, then (clusters deleted and
   registered again, so it is a first sync again) with 2 workers: real `celery worker`
   processes (concurrency 1 each) on Redis (REDIS_URL, default redis://127.0.0.1:6379/10),
   `sync_cluster` enqueued once per cluster; the time until every cluster's sync finished;
2. `--watchers` `manage.py watch` processes share the clusters by lease; once every
   cluster's 7 watch streams are open, `--rate` events/s are driven over HTTP across the
   fleet (creates, and deletes of pods 5 s old); latency = create response -> Pod row
   (polled every 50 ms), p95 over all clusters;
3. takeover: SIGKILL one watcher, create one pod on each cluster, and measure until every
   cluster has a live lease of a survivor and every pod created in the gap is in the
   database (nothing missed);
4. the watchers' peak RSS (VmHWM) before the kill.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DB_NAME = "ippam_bench_fleet"
NAMESPACE = "tenant-000"
PREFIX = "fb-"
POLL_SECONDS = 0.05
LIFETIME = 5.0


def start_fleet(clusters: int, pods: int, kubeconfig_dir: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            common.PYTHON,
            "-m",
            "simcluster.fleet",
            "--clusters",
            str(clusters),
            "--pods",
            str(pods),
            "--kubeconfig-dir",
            kubeconfig_dir,
            "--bookmark-interval",
            "5",
        ],
        cwd=common.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("simcluster fleet:"):
        proc.kill()
        raise SystemExit(f"simcluster.fleet did not start: {line!r}")
    return proc


def port_of(kubeconfig: str) -> int:
    with open(kubeconfig) as fh:
        server = yaml.safe_load(fh)["clusters"][0]["cluster"]["server"]
    return int(server.rsplit(":", 1)[1])


def api_call(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def open_watches(ports: list[int]) -> int:
    return sum(json.loads(api_call(p, "GET", "/_sim/stats")[1])["watches"] for p in ports)


def pod_body(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "fleet-bench"}},
        "spec": {"nodeName": "worker-00000", "containers": [{"name": "c", "image": "pause"}]},
        "status": {"phase": "Running"},
    }


def wait_until(check, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return False


def fleet_sync(
    workers: int, kubeconfigs: list[str], env: dict[str, str], log: Path
) -> tuple[float, float]:
    """Register every cluster afresh and time their first sync on `workers` Celery workers.

    Returns (wall seconds until all finished, the sum of the syncs' own durations)."""
    from django.db.models import Q

    from ippam import tasks
    from ippam.models import Cluster

    Cluster.objects.all().delete()
    clusters = [
        Cluster.objects.create(name=f"fleet-{i:02d}", kubeconfig=k, simulated=True)
        for i, k in enumerate(kubeconfigs)
    ]
    procs = []
    with open(log, "a") as out:
        for n in range(workers):
            procs.append(
                subprocess.Popen(
                    [common.PYTHON, "-m", "celery", "-A", "dashboard", "worker", "-c", "1"]
                    + ["-n", f"fleet{n}@%h", "-Q", "ippam", "--without-gossip", "-l", "WARNING"],
                    cwd=common.ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        from dashboard.celery import app

        def ready() -> bool:
            replies = app.control.ping(timeout=0.5) or []
            return len(replies) >= workers

        if not wait_until(ready, 60, 0.5):
            raise SystemExit(f"{workers} Celery workers did not answer within 60 s (see {log})")
        started = time.monotonic()
        for cluster in clusters:
            tasks.sync_cluster.delay(cluster.pk)
        done = Q(sync_state=Cluster.SyncState.OK) | Q(sync_state=Cluster.SyncState.FAILED)
        wait_until(lambda: Cluster.objects.filter(done).count() == len(clusters), 3600, 0.2)
        elapsed = time.monotonic() - started
        failed = Cluster.objects.filter(sync_state=Cluster.SyncState.FAILED).count()
        if failed:
            raise SystemExit(f"{failed} cluster syncs failed (see {log})")
        from ippam.models import SyncRun

        work = sum(
            (run.finished_at - run.started_at).total_seconds()
            for run in SyncRun.objects.filter(cluster__in=clusters, finished_at__isnull=False)
        )
        return elapsed, work
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


class Drive:
    """Creates at rate/2 and deletes (of pods LIFETIME s old) at rate/2, round-robin."""

    def __init__(self, ports: list[int], rate: float, seconds: float):
        self.ports = ports
        self.rate = rate
        self.seconds = seconds
        self.created: dict[str, float] = {}
        self.cluster_of: dict[str, int] = {}
        self.seen: dict[str, float] = {}
        self.errors = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def creator(self) -> None:
        interval = 2.0 / self.rate
        start = time.monotonic()
        n = 0
        pending: list[tuple[float, int, str]] = []
        while time.monotonic() - start < self.seconds:
            due = start + n * interval
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            index = n % len(self.ports)
            name = f"{PREFIX}{n:06d}"
            status, _ = api_call(
                self.ports[index], "POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod_body(name)
            )
            now = time.monotonic()
            with self.lock:
                if status == 201:
                    self.created[name] = now
                    self.cluster_of[name] = index
                    pending.append((now + LIFETIME, index, name))
                else:
                    self.errors += 1
            while pending and pending[0][0] <= now:
                _, idx, old = pending.pop(0)
                api_call(self.ports[idx], "DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{old}")
            n += 1

    def poller(self, cluster_ids: list[int]) -> None:
        from django.db import connection

        from ippam.models import Pod

        while not self.done.is_set():
            rows = Pod.objects.filter(name__startswith=PREFIX).values_list("cluster_id", "name")
            now = time.monotonic()
            with self.lock:
                for cluster_id, name in rows:
                    index = self.cluster_of.get(name)
                    if index is not None and cluster_ids[index] == cluster_id:
                        self.seen.setdefault(name, now)
            time.sleep(POLL_SECONDS)
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 clusters x 500 pods, 6 s drive")
    parser.add_argument("--json", action="store_true", help="end with one JSON line (run.py)")
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--pods", type=int, default=1500, help="pods per cluster")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to drive")
    parser.add_argument("--watchers", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.clusters, args.pods, args.seconds = min(args.clusters, 3), min(args.pods, 500), 6.0
    redis_url = os.environ.get("BENCH_REDIS_URL") or "redis://127.0.0.1:6379/10"
    load = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="ippam-fleet-bench-"))
    started = time.monotonic()
    sim = start_fleet(args.clusters, args.pods, str(workdir))
    load_s = time.monotonic() - started
    kubeconfigs = [str(workdir / f"fleet-{i:02d}.yaml") for i in range(args.clusters)]
    ports = [port_of(k) for k in kubeconfigs]
    watchers: list[subprocess.Popen[bytes]] = []
    log = workdir / "processes.log"
    try:
        url = common.database_create(DB_NAME)
        env = common.bench_env(url, REDIS_URL=redis_url, LOG_LEVEL="WARNING")
        common.django_setup(url, REDIS_URL=redis_url, LOG_LEVEL="WARNING")
        import logging

        logging.disable(logging.INFO)
        import redis

        redis.Redis.from_url(redis_url).flushdb()  # no stale tasks or locks from earlier runs
        from django.utils import timezone

        from ippam.models import Cluster, WatcherLease

        sync_1, work_1 = fleet_sync(1, kubeconfigs, env, log)
        sync_2, work_2 = fleet_sync(2, kubeconfigs, env, log)
        cluster_ids = list(Cluster.objects.order_by("name").values_list("pk", flat=True))

        watch_env = common.bench_env(url, LOG_LEVEL="WARNING")
        with open(log, "a") as out:
            for _ in range(args.watchers):
                watchers.append(
                    subprocess.Popen(
                        [common.PYTHON, "manage.py", "watch"],
                        cwd=common.ROOT,
                        env=watch_env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        streams = 7 * args.clusters
        if not wait_until(lambda: open_watches(ports) >= streams, 120, 0.2):
            raise SystemExit(f"watch streams did not open (see {log})")

        def balanced() -> bool:
            """every watcher holds its fair share and every stream is open"""
            live = WatcherLease.objects.filter(expires_at__gt=timezone.now())
            holders = set(live.values_list("holder", flat=True)) - {""}
            return (
                len(holders) == min(args.watchers, args.clusters)
                and live.exclude(holder="").count() == args.clusters
                and open_watches(ports) == streams
            )

        if not wait_until(balanced, 120, 0.2):
            raise SystemExit(f"the watchers did not share the clusters (see {log})")

        drive = Drive(ports, args.rate, args.seconds)
        poller = threading.Thread(target=drive.poller, args=(cluster_ids,), daemon=True)
        poller.start()
        drive_started = time.monotonic()
        drive.creator()
        drive_s = time.monotonic() - drive_started
        wait_until(lambda: set(drive.created) <= set(drive.seen), 15)
        drive.done.set()
        poller.join(10)
        latencies = [
            (drive.seen[n] - t) * 1000 for n, t in drive.created.items() if n in drive.seen
        ]
        missed = len(set(drive.created) - set(drive.seen))
        rss = [common.process_peak_rss_mb(w.pid) or 0.0 for w in watchers]
        holders = dict(WatcherLease.objects.values_list("cluster_id", "holder"))
        per_watcher = sorted(
            sum(1 for h in holders.values() if h.split("-")[-2] == str(w.pid)) for w in watchers
        )

        # Takeover: kill one watcher (no release), make changes during the gap.
        victim = watchers[0]
        victim_clusters = [pk for pk, h in holders.items() if h.split("-")[-2] == str(victim.pid)]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic()
        gap = []
        for i, port in enumerate(ports):
            name = f"{PREFIX}gap-{i}"
            api_call(port, "POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod_body(name))
            gap.append((cluster_ids[i], name))
        survivors = {str(w.pid) for w in watchers[1:]}

        def taken_over() -> bool:
            now = timezone.now()
            leases = WatcherLease.objects.filter(cluster_id__in=cluster_ids, expires_at__gt=now)
            return sum(
                1 for h in leases.values_list("holder", flat=True) if h.split("-")[-2] in survivors
            ) == len(cluster_ids)

        from ippam.models import Pod

        def gap_applied() -> bool:
            return all(Pod.objects.filter(cluster_id=c, name=n).exists() for c, n in gap)

        wait_until(taken_over, 120, 0.1)
        takeover_s = time.monotonic() - killed_at
        wait_until(gap_applied, 60, 0.1)
        gap_s = time.monotonic() - killed_at
        gap_missing = sum(
            1 for c, n in gap if not Pod.objects.filter(cluster_id=c, name=n).exists()
        )
    finally:
        for w in watchers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in watchers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sim.kill()
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            common.database_drop(DB_NAME)

    total_pods = args.clusters * args.pods
    context = (
        f"simcluster.fleet {args.clusters} clusters x {args.pods:,} pods ({total_pods:,} pods, "
        f"loaded in {load_s:.1f}s), PostgreSQL, Redis; Celery workers concurrency 1 each "
        f"(sum of the syncs' own durations: {work_1:.1f}s with 1 worker, {work_2:.1f}s "
        "with 2); "
        f"{args.watchers} watchers holding {per_watcher} clusters; drove "
        f"{len(drive.created)} creates + deletes in {drive_s:.1f}s across the fleet "
        f"({drive.errors} API errors); the killed watcher held {len(victim_clusters)} "
        f"clusters; lease TTL 15 s; load average at start {load:.1f}"
    )
    metrics = [
        common.metric("fleet first sync, 1 worker", sync_1, "s"),
        common.metric("fleet first sync, 2 workers", sync_2, "s", note=f"{sync_1 / sync_2:.2f}x"),
        common.metric(
            "watch create -> Pod row p95, fleet", common.percentile(latencies, 95), "ms", 1000.0
        ),
        common.metric("watch create -> Pod row p50, fleet", common.percentile(latencies, 50), "ms"),
        common.metric("pods never seen in the DB", float(missed), "pods", 0.0),
        common.metric("takeover after killing a watcher", takeover_s, "s", 30.0),
        common.metric("gap's pods in the DB after the kill", gap_s, "s", 30.0),
        common.metric("gap's pods missing", float(gap_missing), "pods", 0.0),
        common.metric("watcher peak RSS (max)", max(rss, default=None), "MB", 300.0),
    ]
    common.report("fleet", context, metrics, as_json=args.json)


if __name__ == "__main__":
    os.chdir(common.ROOT)
    main()
