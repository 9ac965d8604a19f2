"""Watch latency: pod created in the API -> its Pod row in the database (docs/design.md §6).

Usage: .venv/bin/python bench/watch_bench.py [--quick] [--json] [--rate 200] [--seconds 20]
       [--lifetime 5] [--scenario demo] [--keep-db]

Creates a throwaway PostgreSQL database (ippam_bench_watch), starts simcluster (`demo`
scenario) on a free port, registers a cluster, runs one full sync, and starts the watcher
as its own process (`manage.py watch`, every kind, like `make run` and docker-compose).
Then it drives `--rate` events per second for `--seconds` seconds over HTTP: a creator
thread POSTs Running pods that carry Multus network-status annotations (rate/2 per second)
and a deleter thread DELETEs each one `--lifetime` seconds after its creation (rate/2 per
second once the first pods age), so the watcher sees a steady mix of ADDED and DELETED.

A poller thread reads the bench's Pod rows every 50 ms; a pod's latency is the time from
the create response to the first poll that sees its row (so it is up to ~50 ms high); the
same for a delete and the row's disappearance. Reports p50/p95/max, the events the watcher
applied, its peak RSS and CPU. Target: create -> row p95 <= 1 s at 200 events/s.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DB_NAME = "ippam_bench_watch"
NAMESPACE = "analytics"
NAD = "analytics/v6-net"  # fd00:10:20::/64 in the demo scenario
PREFIX = "wb-"
POLL_SECONDS = 0.05


def start_simcluster(scenario: str, kubeconfig: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            common.PYTHON,
            "-m",
            "simcluster",
            "--scenario",
            scenario,
            "--port",
            "0",
            "--kubeconfig",
            kubeconfig,
        ],
        cwd=common.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("simcluster serving"):
            port = int(line.split()[2].rsplit(":", 1)[1])
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # drain
            return proc, port
    raise SystemExit("simcluster did not start")


class Api:
    """One keep-alive HTTP connection to simcluster (one per thread)."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        return response.status, response.read()


def pod_body(n: int) -> dict:
    name = f"{PREFIX}{n:06d}"
    ip = f"fd00:10:20::1:{n:x}"
    status = [
        {
            "name": "k8s-pod-network",
            "interface": "eth0",
            "ips": [f"10.250.{n // 250 % 256}.{n % 250 + 2}"],
            "mac": f"0a:58:0a:fa:{n // 256 % 256:02x}:{n % 256:02x}",
            "default": True,
            "dns": {},
        },
        {
            "name": NAD,
            "interface": "net1",
            "ips": [ip],
            "mac": f"0a:58:fd:00:{n // 256 % 256:02x}:{n % 256:02x}",
            "dns": {},
        },
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": "watch-bench"},
            "annotations": {
                "k8s.v1.cni.cncf.io/networks": NAD,
                "k8s.v1.cni.cncf.io/network-status": json.dumps(status, indent=1),
            },
        },
        "spec": {
            "nodeName": "sim-node-01",
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
        },
        "status": {"phase": "Running", "podIP": status[0]["ips"][0]},
    }


class Drive:
    def __init__(self, port: int, rate: float, seconds: float, lifetime: float):
        self.port = port
        self.interval = 2.0 / rate  # half the events are creates, half deletes
        self.seconds = seconds
        self.lifetime = lifetime
        self.created: dict[str, float] = {}  # name -> monotonic time of the create response
        self.order: list[str] = []  # created names, oldest first
        self.deleted: dict[str, float] = {}
        self.seen: dict[str, float] = {}  # name -> first poll that saw the row
        self.gone: dict[str, float] = {}  # name -> first poll after the delete without the row
        self.errors = 0
        self.lock = threading.Lock()
        self.driving = threading.Event()
        self.polling = threading.Event()
        self.create_done = threading.Event()

    def creator(self, start: float) -> None:
        api = Api(self.port)
        n = 0
        while True:
            at = start + n * self.interval
            if at - start >= self.seconds:
                break
            delay = at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n += 1
            status, _ = api.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", pod_body(n))
            done = time.monotonic()
            with self.lock:
                if status == 201:
                    self.created[f"{PREFIX}{n:06d}"] = done
                    self.order.append(f"{PREFIX}{n:06d}")
                else:
                    self.errors += 1
        self.create_done.set()

    def deleter(self) -> None:
        api = Api(self.port)
        order = 0
        while True:
            finished = self.create_done.is_set()  # before reading: no create is missed
            with self.lock:
                name = self.order[order] if order < len(self.order) else None
                due = self.created[name] + self.lifetime if name else 0.0
            if name is None:
                if finished:
                    return
                time.sleep(0.01)
                continue
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 0.05))
                continue
            order += 1
            status, _ = api.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
            done = time.monotonic()
            with self.lock:
                if status == 200:
                    self.deleted[name] = done
                else:
                    self.errors += 1

    def poller(self, cluster_id: int) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            while not self.polling.is_set():
                cursor.execute(
                    "SELECT name FROM ippam_pod WHERE cluster_id = %s AND namespace = %s"
                    " AND name LIKE %s",
                    [cluster_id, NAMESPACE, PREFIX + "%"],
                )
                present = {row[0] for row in cursor.fetchall()}
                now = time.monotonic()
                with self.lock:
                    for name in present:
                        self.seen.setdefault(name, now)
                    for name in self.deleted:
                        if name not in present and name not in self.gone:
                            self.gone[name] = now
                time.sleep(POLL_SECONDS)
        connection.close()


def add_filler_pods(cluster_id: int, count: int) -> None:
    """`count` more Pod rows for the cluster, in the database only (COPY; no interfaces).

    simcluster serves the small demo, but the watcher's work per batch may grow with the
    rows the cluster has (a scale cluster has 150k pods): these rows make the database as
    big as that. Nobody lists them, so no sync or watch event touches them.
    """
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    columns = (
        "cluster_id, name, uid, resource_version, created_at, sync_generation, synced_at,"
        " namespace, node_name, phase, disruption_target, networks_annotation,"
        " network_status_annotation, requested_networks, annotation_problems"
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ippam_pod ({columns}) FROM STDIN") as copy:
            for i in range(count):
                copy.write_row(
                    (
                        cluster_id, f"filler-{i:06d}", f"filler-uid-{i}", "1", now, 0, now,
                        f"filler-{i % 50}", f"node-{i % 5000:04d}", "Running", False,
                        "", "", "[]", "[]",
                    )
                )  # fmt: skip
        cursor.execute("ANALYZE ippam_pod")


def wait_for_watches(port: int, want: int, timeout: float = 60) -> int:
    api = Api(port)
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        _, body = api.call("GET", "/_sim/stats")
        count = json.loads(body)["watches"]
        if count >= want:
            return count
        time.sleep(0.2)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="drive for 8 s (pods live 3 s) instead of 20"
    )
    parser.add_argument("--json", action="store_true", help="end with one JSON line (run.py)")
    parser.add_argument("--rate", type=float, default=200.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--lifetime", type=float, default=5.0, help="seconds a pod lives")
    parser.add_argument("--scenario", default="demo")
    parser.add_argument(
        "--extra-pods",
        type=int,
        default=150_000,
        help="Pod rows added to the database only, so it is as big as a scale cluster's",
    )
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 8.0)
        args.lifetime = min(args.lifetime, 3.0)
    load = os.getloadavg()[0]

    workdir = Path(tempfile.mkdtemp(prefix="ippam-watch-bench-"))
    kubeconfig = str(workdir / "kubeconfig")
    sim, port = start_simcluster(args.scenario, kubeconfig)
    watcher = None
    watcher_log = workdir / "watch.log"
    try:
        url = common.database_create(DB_NAME)
        common.django_setup(url, LOG_LEVEL="WARNING")
        import logging

        logging.disable(logging.INFO)
        from ippam.models import Cluster, Pod
        from ippam.sync import cluster_sync_full

        cluster = Cluster.objects.create(name="bench", kubeconfig=kubeconfig, simulated=True)
        started = time.monotonic()
        cluster_sync_full(cluster=cluster, run_hooks=False)
        sync_s = time.monotonic() - started
        synced_pods = Pod.objects.filter(cluster=cluster).count()
        if args.extra_pods:
            add_filler_pods(cluster.pk, args.extra_pods)

        with open(watcher_log, "w") as log:
            watcher = subprocess.Popen(
                [common.PYTHON, "manage.py", "watch"],
                cwd=common.ROOT,
                env=common.bench_env(url, LOG_LEVEL="WARNING"),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        watches = wait_for_watches(port, 7, timeout=30)
        time.sleep(1.0)  # let every stream settle

        drive = Drive(port, args.rate, args.seconds, args.lifetime)
        poller = threading.Thread(target=drive.poller, args=(cluster.pk,), daemon=True)
        poller.start()
        cpu0 = common.process_cpu_seconds(watcher.pid) or 0.0
        sim_cpu0 = common.process_cpu_seconds(sim.pid) or 0.0
        own_cpu0 = common.process_cpu_seconds(os.getpid()) or 0.0
        start = time.monotonic() + 0.2
        threads = [
            threading.Thread(target=drive.creator, args=(start,), daemon=True),
            threading.Thread(target=drive.deleter, daemon=True),
        ]
        for t in threads:
            t.start()
        threads[0].join()
        create_end = time.monotonic()
        threads[1].join(timeout=args.lifetime + 30)
        drive_end = time.monotonic()
        # Let the last events land (or give up after 10 s).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with drive.lock:
                pending = (set(drive.created) - set(drive.seen) - set(drive.deleted)) | (
                    set(drive.deleted) - set(drive.gone)
                )
            if not pending:
                break
            time.sleep(0.1)
        drive.polling.set()
        poller.join(timeout=5)
        cpu1 = common.process_cpu_seconds(watcher.pid) or 0.0
        sim_cpu1 = common.process_cpu_seconds(sim.pid) or 0.0
        own_cpu1 = common.process_cpu_seconds(os.getpid()) or 0.0
        watcher_rss = common.process_peak_rss_mb(watcher.pid)
        watcher.send_signal(signal.SIGTERM)
        try:
            watcher.wait(timeout=20)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.wait()
        watcher = None
        output = watcher_log.read_text()
        applied = None
        for line in output.splitlines():
            if line.startswith("stopped after applying"):
                applied = int(line.split()[3])
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait()
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sim.kill()
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            common.database_drop(DB_NAME)

    created, seen = drive.created, drive.seen
    # The steady window: creates and deletes both running (after the first pods aged).
    lo, hi = start + args.lifetime, create_end
    in_window = [n for n, t in created.items() if lo <= t <= hi]
    window_events = len(in_window) + sum(1 for t in drive.deleted.values() if lo <= t <= hi)
    achieved = window_events / (hi - lo) if hi > lo else float("nan")
    add_lat = [max((seen[n] - created[n]) * 1000, 0.0) for n in in_window if n in seen]
    all_lat = [max((seen[n] - t) * 1000, 0.0) for n, t in created.items() if n in seen]
    missed = [n for n in created if n not in seen]
    del_lat = [(drive.gone[n] - t) * 1000 for n, t in drive.deleted.items() if n in drive.gone]
    drive_s = drive_end - start
    cpu_pct = (cpu1 - cpu0) / max(drive_s, 1e-9) * 100
    sim_pct = (sim_cpu1 - sim_cpu0) / max(drive_s, 1e-9) * 100
    own_pct = (own_cpu1 - own_cpu0) / max(drive_s, 1e-9) * 100
    context = (
        f"simcluster {args.scenario}, PostgreSQL; full sync of {synced_pods} pods in "
        f"{sync_s:.1f}s, plus {args.extra_pods:,} Pod rows in the database only; "
        f"{watches} watch streams; drove {len(created)} creates + "
        f"{len(drive.deleted)} deletes in {drive_s:.1f}s, each pod deleted "
        f"{args.lifetime:.0f}s after its create; steady window {max(hi - lo, 0):.1f}s at "
        f"{achieved:.0f} events/s ({len(in_window)} creates in it); {drive.errors} API errors; "
        f"DB polled every {POLL_SECONDS * 1000:.0f} ms; load average at start {load:.1f}"
    )
    # Bench pod events the watcher applied: what it applied in all minus the rest.
    metrics = [
        common.metric(
            "create -> Pod row, p95 (steady)", common.percentile(add_lat, 95), "ms", 1000.0
        ),
        common.metric("create -> Pod row, p50 (steady)", common.percentile(add_lat, 50), "ms"),
        common.metric("create -> Pod row, max (all)", max(all_lat, default=float("nan")), "ms"),
        common.metric("delete -> row gone, p95 (all)", common.percentile(del_lat, 95), "ms"),
        common.metric(
            "event rate in the steady window",
            achieved,
            "ev/s",
            args.rate * 0.95,
            higher_is_better=True,
        ),
        common.metric(
            "pods never seen in the DB", float(len(missed)), "pods", 0.0, note=", ".join(missed[:5])
        ),
        common.metric("events applied by the watcher", float(applied or 0), "events"),
        common.metric("watcher peak RSS", watcher_rss, "MB"),
        common.metric("watcher CPU while driven", cpu_pct, "%"),
        common.metric("simcluster CPU while driven", sim_pct, "%"),
        common.metric("bench driver + poller CPU", own_pct, "%"),
    ]
    common.report("watch", context, metrics, as_json=args.json)
    if missed or applied is None:
        print(f"(watcher log: {watcher_log})", file=sys.stderr)


if __name__ == "__main__":
    os.chdir(common.ROOT)
    main()
