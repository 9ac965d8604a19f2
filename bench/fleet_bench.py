"""Fleet figures (issue 15): many clusters, Celery workers on Redis, sharded watchers.

Usage: .venv/bin/python bench/fleet_bench.py [--quick] [--json] [--clusters 4] [--pods 1500]
       [--rate 200] [--seconds 10] [--watchers 2] [--keep-db] [--db-name ippam_bench_fleet]
       full size: --clusters 20 --pods 7500

Starts `python -m simcluster.fleet` (one process, one port per cluster, each with its own
store), a throwaway PostgreSQL database (--db-name) and registers every cluster.
Then, in order:

1. first sync of the whole fleet with 1 Celery worker, then (clusters deleted and
   registered again, so it is a first sync again) with 2 workers: real `celery worker`
   processes (concurrency 1 each) on Redis (BENCH_REDIS_URL, default
   redis://127.0.0.1:6379/10), `sync_cluster` enqueued once per cluster; the time until
   every cluster's sync finished. Then every cluster's `sync_cluster` is enqueued twice in a
   row on 2 workers, and the SyncRun rows (not the lock) say whether two syncs of one
   cluster ever overlapped;
2. `--watchers` `manage.py watch` processes share the clusters by lease; once every
   cluster's 7 watch streams are open, `--rate` events/s are driven over kept-alive HTTP
   connections, one thread per cluster: each tick creates a pod and deletes the cluster's
   oldest one 5 s old (pods made beforehand serve the first 5 s), so creates and deletes
   run at rate / 2 each from the start; latency = create response -> Pod row (polled every
   50 ms, by key), p95 over all clusters; the rate reached is a row of its own;
3. takeover: SIGKILL one watcher, create one pod on each cluster, and measure until every
   cluster has a live lease of a survivor and every pod created in the gap is in the
   database (nothing missed);
4. the watchers' peak RSS (VmHWM) before the kill, and the survivors' after the takeover
   (with 2 watchers: one process following every cluster).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
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


@contextlib.contextmanager
def celery_workers(count: int, env: dict[str, str], log: Path) -> Iterator[None]:
    """`count` real `celery worker` processes (concurrency 1 each), answering pings."""
    procs = []
    with open(log, "a") as out:
        for n in range(count):
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
            return len(replies) >= count

        if not wait_until(ready, 60, 0.5):
            raise SystemExit(f"{count} Celery workers did not answer within 60 s (see {log})")
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def fleet_sync(
    workers: int, kubeconfigs: list[str], env: dict[str, str], log: Path
) -> tuple[float, float]:
    """Register every cluster afresh and time their first sync on `workers` Celery workers.

    Returns (wall seconds until all finished, the sum of the syncs' own durations)."""
    from django.db.models import Q

    from ippam import tasks
    from ippam.models import Cluster, SyncRun

    Cluster.objects.all().delete()
    clusters = [
        Cluster.objects.create(name=f"fleet-{i:02d}", kubeconfig=k, simulated=True)
        for i, k in enumerate(kubeconfigs)
    ]
    with celery_workers(workers, env, log):
        started = time.monotonic()
        for cluster in clusters:
            tasks.sync_cluster.delay(cluster.pk)
        done = Q(sync_state=Cluster.SyncState.OK) | Q(sync_state=Cluster.SyncState.FAILED)
        wait_until(lambda: Cluster.objects.filter(done).count() == len(clusters), 3600, 0.2)
        elapsed = time.monotonic() - started
    failed = Cluster.objects.filter(sync_state=Cluster.SyncState.FAILED).count()
    if failed:
        raise SystemExit(f"{failed} cluster syncs failed (see {log})")
    work = sum(
        (run.finished_at - run.started_at).total_seconds()
        for run in SyncRun.objects.filter(cluster__in=clusters, finished_at__isnull=False)
    )
    return elapsed, work


def overlapping(runs: list[tuple[int, datetime, datetime | None]]) -> int:
    """How many runs started while an earlier run of the same cluster had not finished."""
    count = 0
    last_end: dict[int, datetime | None] = {}
    for cluster_id, started_at, finished_at in sorted(runs, key=lambda r: r[1]):
        if cluster_id in last_end:
            end = last_end[cluster_id]
            if end is None or started_at < end:
                count += 1
        previous = last_end.get(cluster_id, started_at)
        last_end[cluster_id] = (
            None if finished_at is None or previous is None else max(previous, finished_at)
        )
    return count


def duplicate_deliveries(env: dict[str, str], log: Path) -> tuple[int, collections.Counter[str]]:
    """Every cluster's sync_cluster enqueued twice in a row on 2 workers, so both workers
    are handed the same cluster at once: (syncs of one cluster that overlapped in time, read
    from the SyncRun rows and not from the lock itself; the tasks' statuses)."""
    from ippam import tasks
    from ippam.models import Cluster, SyncRun

    ids = list(Cluster.objects.order_by("pk").values_list("pk", flat=True))
    since = SyncRun.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with celery_workers(2, env, log):
        results = [tasks.sync_cluster.delay(pk) for pk in ids for _ in range(2)]
        statuses = collections.Counter(str(r.get(timeout=3600)["status"]) for r in results)
    runs = list(
        SyncRun.objects.filter(pk__gt=since).values_list("cluster_id", "started_at", "finished_at")
    )
    return overlapping(runs), statuses


class Connection:
    """One kept-alive HTTP connection to one cluster (a new TCP connection per request
    costs the 2 shared cores more than the request itself at 200 events/s)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body: dict | None = None) -> int:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(2):
            try:
                self.conn.request(
                    method, path, body=data, headers={"Content-Type": "application/json"}
                )
                resp = self.conn.getresponse()
                resp.read()
                return resp.status
            except (http.client.HTTPException, OSError):
                self.conn.close()  # the server closed a kept-alive connection: reconnect
                if attempt:
                    raise
        raise AssertionError("unreachable")


class Drive:
    """`rate` events/s across the fleet: each cluster gets rate / clusters, from a thread of
    its own so one slow answer does not hold back the other clusters' schedule. Every tick
    creates a pod and deletes the cluster's oldest one once it is LIFETIME s old; the pods
    deleted during the first LIFETIME s were created beforehand (`warm_up`), so deletes run
    at rate / 2 from the first second and the whole drive is at `rate`."""

    def __init__(self, ports: list[int], rate: float, seconds: float):
        self.ports = ports
        self.rate = rate
        self.seconds = seconds
        self.created: dict[str, float] = {}
        self.cluster_of: dict[str, int] = {}
        self.seen: dict[str, float] = {}
        self.sent = 0  # creates + deletes answered
        self.warm: list[list[str]] = [[] for _ in ports]  # per cluster, deleted first
        self.errors = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def interval(self) -> float:
        """Seconds between one cluster's ticks."""
        return 2.0 * len(self.ports) / self.rate

    def warm_up(self, cluster_ids: list[int]) -> None:
        """Create the pods the first LIFETIME s delete; return once all are in the database."""
        from ippam.models import Pod

        count = math.ceil(LIFETIME / self.interval())
        for index, port in enumerate(self.ports):
            conn = Connection(port)
            for n in range(count):
                name = f"{PREFIX}w{index:02d}-{n:05d}"
                if conn.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod_body(name)) == 201:
                    self.warm[index].append(name)
            conn.conn.close()
        names = [n for names in self.warm for n in names]

        def applied() -> bool:
            rows = Pod.objects.filter(cluster_id__in=cluster_ids, namespace=NAMESPACE)
            return rows.filter(name__in=names).count() == len(names)

        if not wait_until(applied, 120, 0.2):
            raise SystemExit("the warm-up pods did not reach the database within 120 s")

    def run(self) -> float:
        """Drive every cluster for `seconds`; returns the wall time it took."""
        started = time.monotonic()
        threads = [
            threading.Thread(target=self._cluster, args=(i, started), daemon=True)
            for i in range(len(self.ports))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.monotonic() - started

    def _cluster(self, index: int, started: float) -> None:
        clusters = len(self.ports)
        interval = self.interval()
        first = started + interval * index / clusters  # the clusters take turns
        conn = Connection(self.ports[index])
        pending = collections.deque((0.0, name) for name in self.warm[index])
        n = 0
        while (due := first + n * interval) < started + self.seconds:
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            name = f"{PREFIX}{index:02d}-{n:05d}"
            status = conn.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod_body(name))
            now = time.monotonic()
            with self.lock:
                self.sent += 1
                if status == 201:
                    self.created[name] = now
                    self.cluster_of[name] = index
                    pending.append((now + LIFETIME, name))
                else:
                    self.errors += 1
            if pending and pending[0][0] <= now:
                _, old = pending.popleft()
                status = conn.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{old}")
                with self.lock:
                    self.sent += 1
                    self.errors += status not in (200, 202)
            n += 1
        conn.conn.close()

    def poller(self, cluster_ids: list[int]) -> None:
        from django.db import connection

        from ippam.models import Pod

        while not self.done.is_set():
            with self.lock:
                unseen = [n for n in self.created if n not in self.seen]
            # Only the pods still awaited, through the (cluster, namespace, name) index: a
            # name LIKE scan of every pod (150,000 at full size) every 50 ms would load the
            # very machine it measures.
            rows = (
                Pod.objects.filter(
                    cluster_id__in=cluster_ids, namespace=NAMESPACE, name__in=unseen
                ).values_list("cluster_id", "name")
                if unseen
                else []
            )
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
    parser.add_argument("--db-name", default=DB_NAME, help=f"bench database (default {DB_NAME})")
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
        url = common.database_create(args.db_name)
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
        overlaps, statuses = duplicate_deliveries(env, log)
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
        drive.warm_up(cluster_ids)
        busy = {"simcluster": [sim.pid]} | {f"watcher {i}": [w.pid] for i, w in enumerate(watchers)}
        cpu_before = {
            k: sum(common.process_cpu_seconds(p) or 0.0 for p in v) for k, v in busy.items()
        }
        load_drive = os.getloadavg()[0]
        drive_s = drive.run()
        # Cores each process used while driving: which one bounds the latency.
        cores = {
            k: (sum(common.process_cpu_seconds(p) or 0.0 for p in v) - cpu_before[k]) / drive_s
            for k, v in busy.items()
        }
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
        # A survivor now follows every cluster (all 7 streams of each): its peak RSS is the
        # one a single watcher needs for the whole fleet.
        rss_all = [common.process_peak_rss_mb(w.pid) or 0.0 for w in watchers[1:]]
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
            common.database_drop(args.db_name)

    total_pods = args.clusters * args.pods
    context = (
        f"simcluster.fleet {args.clusters} clusters x {args.pods:,} pods ({total_pods:,} pods, "
        f"loaded in {load_s:.1f}s), PostgreSQL, Redis; Celery workers concurrency 1 each "
        f"(sum of the syncs' own durations: {work_1:.1f}s with 1 worker, {work_2:.1f}s "
        "with 2); "
        "then every cluster's sync_cluster enqueued twice on 2 workers ("
        + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        + "); "
        f"{args.watchers} watchers holding {per_watcher} clusters; drove "
        f"{len(drive.created)} creates and {drive.sent - len(drive.created)} deletes in "
        f"{drive_s:.1f}s across the fleet "
        f"({drive.errors} API errors); the killed watcher held {len(victim_clusters)} "
        f"clusters; lease TTL 15 s; cores used while driving: "
        + ", ".join(f"{k} {v:.2f}" for k, v in cores.items())
        + f"; load average at start {load:.1f}, when the drive began {load_drive:.1f}"
    )
    metrics = [
        common.metric("fleet first sync, 1 worker", sync_1, "s"),
        common.metric("fleet first sync, 2 workers", sync_2, "s", note=f"{sync_1 / sync_2:.2f}x"),
        common.metric(
            "syncs of one cluster at once, 2 workers",
            float(overlaps),
            "syncs",
            0.0,
            note=", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
        ),
        common.metric(
            "events/s driven across the fleet",
            drive.sent / drive_s,
            "/s",
            0.95 * args.rate,
            higher_is_better=True,
        ),
        common.metric(
            "watch create -> Pod row p95, fleet", common.percentile(latencies, 95), "ms", 1000.0
        ),
        common.metric("watch create -> Pod row p50, fleet", common.percentile(latencies, 50), "ms"),
        common.metric("pods never seen in the DB", float(missed), "pods", 0.0),
        common.metric("takeover after killing a watcher", takeover_s, "s", 30.0),
        common.metric("gap's pods in the DB after the kill", gap_s, "s", 30.0),
        common.metric("gap's pods missing", float(gap_missing), "pods", 0.0),
        common.metric("watcher peak RSS (max)", max(rss, default=None), "MB", 300.0),
        common.metric(
            f"survivor peak RSS, all {args.clusters} clusters",
            max(rss_all, default=None),
            "MB",
            300.0,
        ),
    ]
    common.report("fleet", context, metrics, as_json=args.json)


if __name__ == "__main__":
    os.chdir(common.ROOT)
    main()
