"""Dashboard page times on PostgreSQL with a /16 pool holding 60,000 allocations (docs/design.md §6).

Usage: .venv/bin/python bench/pages_bench.py [--quick] [--json] [--requests 100]
       [--allocations 60000] [--other-pools 300] [--keep-db]

Creates a throwaway PostgreSQL database (ippam_bench_pages on the server of DATABASE_URL,
or postgres://postgres@127.0.0.1:5432), fills it (COPY for the big tables): one cluster, 200 nodes,
a whereabouts NAD over 10.100.0.0/16 whose IPPool holds 60,000 allocations (a pod each,
with its eth0 + net1 interfaces, addresses and ORIP; 0.5% of them orphaned or stale), and
a few hundred other NADs with a /24 pool each, partly filled; then runs the real leak
detection (findings + alerts) and plants some FailedCreatePodSandBox events.

Then, with Django's test Client and a logged-in user, production settings (DEBUG off, cached
templates), it requests each page 2 times to warm up, then N rounds (default 100) in which
every page is requested once (so load swings hit every page alike), and prints the
median and p95 wall time, the SQL time and the number of queries per request.
Targets: the /16 pool page <= 250 ms, the overview <= 150 ms; and (issue 15) the overview,
the /16 pool page and a search each at p95 <= 3x an empty logged-in page (/search/ without
a query: session, auth, middleware, base template) served by the same stack in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DB_NAME = "ippam_bench_pages"
EMPTY_PAGE = "empty logged-in page (/search/)"
RATIO_TARGET = 3.0  # p95 of the overview, the /16 pool page and a search / the empty page's
RATIO_PAGES = ("overview /", "pool page 10.100.0.0/16 (heat map)", "search ")
BATCH = 5000
BIG_RANGE = "10.100.0.0/16"


class Copier:
    """Bulk loads by COPY with ids assigned here (bulk_create of 400k rows takes minutes).

    Rows are unsaved model instances, so every field is prepared exactly as Django would.
    Only for tables that are empty before the fill; `finish()` moves their id sequences on.
    """

    def __init__(self) -> None:
        self.next_id: dict[type, int] = {}

    def assign(self, objs: list) -> None:
        if not objs:
            return
        model = type(objs[0])
        start = self.next_id.get(model, 1)
        for i, obj in enumerate(objs):
            obj.pk = start + i
        self.next_id[model] = start + len(objs)

    def copy(self, objs: list) -> None:
        from django.db import connection, models
        from django.utils import timezone
        from psycopg.types.json import Jsonb

        from ippam.fields import IPAddressField

        if not objs:
            return
        model = type(objs[0])
        fields = list(model._meta.concrete_fields)
        now = timezone.now()
        # Per field: how Django would prepare the value (get_db_prep_save), inlined.
        getters = []
        for f in fields:
            name = f.attname
            if isinstance(f, IPAddressField):
                getters.append(lambda o, n=name, f=f: f.get_prep_value(getattr(o, n)))
            elif isinstance(f, models.JSONField):
                getters.append(lambda o, n=name: Jsonb(getattr(o, n)))
            elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                getters.append(lambda o, now=now: now)
            else:
                getters.append(lambda o, n=name: getattr(o, n))
        columns = ", ".join(f'"{f.column}"' for f in fields)
        sql = f"COPY {model._meta.db_table} ({columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for obj in objs:
                copy.write_row([get(obj) for get in getters])

    def finish(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            for model in self.next_id:
                table = model._meta.db_table
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )


def fill(args: argparse.Namespace) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from netaddr import IPAddress, IPNetwork

    from ippam.models import (
        Allocation,
        Cluster,
        InterfaceAddress,
        IPPool,
        NADRange,
        NetworkAttachmentDefinition,
        Node,
        OverlappingRangeIPReservation,
        Pod,
        PodEvent,
        PodInterface,
    )
    from ippam.sync import store

    rng = random.Random(7)
    t0 = time.monotonic()
    now = timezone.now()
    long_ago = now - timedelta(days=3)
    cluster = Cluster.objects.create(
        name="bench",
        kubeconfig="/dev/null",
        sync_state=Cluster.SyncState.OK,
        last_sync_started=now - timedelta(seconds=20),
        last_sync_finished=now,
        last_good_sync=now,
        resource_versions={"pods": "1"},
    )
    nodes = [f"worker-{i:03d}" for i in range(200)]
    Node.objects.bulk_create(
        [
            Node(
                cluster=cluster,
                name=n,
                uid=f"node-{i}",
                ready=i % 50 != 7,
                labels={"kubernetes.io/hostname": n, "topology.kubernetes.io/zone": f"z{i % 3}"},
                addresses=[{"type": "InternalIP", "address": f"192.168.{i // 250}.{i % 250 + 1}"}],
                created_at=long_ago,
            )
            for i, n in enumerate(nodes)
        ]
    )

    def nad_obj(i: int, ns: str, name: str, cidr: str, gateway: str | None) -> tuple:
        ipam = {"type": "whereabouts", "range": cidr}
        if gateway:
            ipam["gateway"] = gateway
        config = {
            "cniVersion": "0.3.1",
            "type": "macvlan",
            "master": "eth1",
            "mode": "bridge",
            "ipam": ipam,
        }
        nad = NetworkAttachmentDefinition(
            cluster=cluster,
            namespace=ns,
            name=name,
            uid=f"nad-{i}",
            created_at=long_ago,
            config_raw=json.dumps(config),
            config=config,
            cni_version="0.3.1",
            cni_type="macvlan",
            ipam_type="whereabouts",
            master="eth1",
            mode="bridge",
        )
        return nad, cidr, gateway

    # The big /16 and the other /24 networks (the first few hundred of 10.200-10.201.x.0/24).
    specs = [nad_obj(0, "big", "big-net", BIG_RANGE, "10.100.0.1")]
    for i in range(args.other_pools):
        cidr = f"10.{200 + i // 256}.{i % 256}.0/24"
        specs.append(nad_obj(i + 1, f"team-{i % 12}", f"net-{i:03d}", cidr, None))
    NetworkAttachmentDefinition.objects.bulk_create([s[0] for s in specs], batch_size=BATCH)
    pools, ranges = [], []
    for nad, cidr, gateway in specs:
        net = IPNetwork(cidr)
        name = cidr.replace("/", "-")
        pools.append(
            IPPool(
                cluster=cluster,
                namespace="kube-system",
                name=name,
                uid=f"pool-{nad.uid}",
                range=cidr,
                first_ip=IPAddress(net.first),
                last_ip=IPAddress(net.last),
                usable=net.size - 2,
                created_at=long_ago,
            )
        )
        ranges.append(
            NADRange(
                nad=nad,
                cluster=cluster,
                range=cidr,
                first_ip=IPAddress(net.first),
                last_ip=IPAddress(net.last),
                gateway=gateway,
                usable=net.size - 2,
                pool_name=name,
            )
        )
    IPPool.objects.bulk_create(pools, batch_size=BATCH)
    NADRange.objects.bulk_create(ranges, batch_size=BATCH)

    # Who holds what: (pool index, address) for every allocation.
    big = IPNetwork(BIG_RANGE)
    candidates = list(range(big.first + 2, big.last))  # neither network, gateway nor broadcast
    big_ips = sorted(rng.sample(candidates, args.allocations))
    holders: list[tuple[int, int]] = [(0, ip) for ip in big_ips]
    for p in range(1, len(pools)):
        net = IPNetwork(pools[p].range)
        count = rng.choice((0, 3, 10, 30, 60, 120, 250))
        holders.extend((p, net.first + 1 + k) for k in range(count))

    copier = Copier()
    orphaned = stale = 0
    done = 0
    pod_seq = 0
    while done < len(holders):
        chunk = holders[done : done + BATCH]
        pod_objs, alloc_objs, orips, plan = [], [], [], []
        for p, value in chunk:
            pool, (nad, _cidr, _gw) = pools[p], specs[p]
            ip = IPAddress(value)
            pod_seq += 1
            ns = nad.namespace
            pod_name = f"app-{pod_seq:06d}-{secrets.token_hex(2)}"
            podref = f"{ns}/{pod_name}"
            kind = ""
            if p == 0 and pod_seq % 200 == 0:
                kind = "orphaned" if pod_seq % 400 == 0 else "stale"
            if kind != "orphaned":
                node = nodes[pod_seq % len(nodes)]
                pod_ip = f"100.{64 + pod_seq // 65536}.{pod_seq // 256 % 256}.{pod_seq % 256}"
                status = (
                    f'[{{"name":"k8s-pod-network","interface":"eth0","ips":["{pod_ip}"],'
                    f'"default":true}},{{"name":"{ns}/{nad.name}","interface":"net1",'
                    f'"ips":["{ip}"],"mac":"0a:58:{secrets.token_hex(1)}:00:00:01"}}]'
                )
                pod_objs.append(
                    Pod(
                        cluster=cluster,
                        namespace=ns,
                        name=pod_name,
                        uid=f"pod-{pod_seq}",
                        node_name=node,
                        phase="Running",
                        created_at=long_ago,
                        networks_annotation=f"{ns}/{nad.name}",
                        network_status_annotation=status,
                        requested_networks=[{"name": nad.name, "namespace": ns}],
                    )
                )
                plan.append((nad, pod_ip, None if kind == "stale" else ip))
            orphaned += kind == "orphaned"
            stale += kind == "stale"
            alloc_objs.append(
                Allocation(
                    pool=pool,
                    cluster=cluster,
                    key=str(value - IPNetwork(pool.range).first),
                    ip=ip,
                    container_id=secrets.token_hex(32),
                    podref=podref,
                    pod_namespace=ns,
                    pod_name=pod_name,
                    ifname="net1",
                )
            )
            orips.append(
                OverlappingRangeIPReservation(
                    cluster=cluster,
                    namespace="kube-system",
                    name=str(ip),
                    uid=f"orip-{pod_seq}",
                    ip=ip,
                    podref=podref,
                    pod_namespace=ns,
                    pod_name=pod_name,
                    ifname="net1",
                    created_at=long_ago,
                )
            )
        copier.assign(pod_objs)
        copier.copy(pod_objs)
        copier.assign(alloc_objs)
        copier.copy(alloc_objs)
        copier.assign(orips)
        copier.copy(orips)
        ifaces = []
        for pod, (nad, pod_ip, ip) in zip(pod_objs, plan, strict=True):
            ifaces.append(
                PodInterface(
                    pod=pod,
                    cluster=cluster,
                    network_name="k8s-pod-network",
                    interface="eth0",
                    ips=[pod_ip],
                    default=True,
                )
            )
            ifaces.append(
                PodInterface(
                    pod=pod,
                    cluster=cluster,
                    network_name=f"{nad.namespace}/{nad.name}",
                    nad_namespace=nad.namespace,
                    nad_name=nad.name,
                    nad=nad,
                    interface="net1",
                    ips=[str(ip)] if ip is not None else [],
                    mac=f"0a:58:00:{pod.pk % 256:02x}:{pod.pk // 256 % 256:02x}:01",
                )
            )
        copier.assign(ifaces)
        copier.copy(ifaces)
        addresses = []
        for i, (_nad, pod_ip, ip) in enumerate(plan):
            addresses.append(
                InterfaceAddress(interface=ifaces[2 * i], cluster=cluster, ip=IPAddress(pod_ip))
            )
            if ip is not None:
                addresses.append(
                    InterfaceAddress(interface=ifaces[2 * i + 1], cluster=cluster, ip=ip)
                )
        copier.assign(addresses)
        copier.copy(addresses)
        done += len(chunk)

    # Attachment failures for the overview and pool pages.
    events = []
    for i in range(40):
        p = 0 if i % 2 or len(specs) == 1 else 1 + i % (len(specs) - 1)
        nad = specs[p][0]
        events.append(
            PodEvent(
                cluster=cluster,
                uid=f"ev-{i}",
                namespace=nad.namespace,
                name=f"failing-{i}.17a",
                pod_namespace=nad.namespace,
                pod_name=f"failing-{i}",
                reason=PodEvent.Reason.FAILED_SANDBOX,
                type="Warning",
                message=(
                    'Failed to create pod sandbox: plugin type="multus" failed (add): '
                    f"[{nad.namespace}/failing-{i}:{nad.name}]: error adding container to "
                    "network: Error at storage engine: Could not allocate IP in range: "
                    f"ip: {pools[p].range.split('/')[0]} / - 10.100.255.254 / range: "
                    f"{pools[p].range}"
                ),
                first_seen=now - timedelta(minutes=i),
                last_seen=now - timedelta(minutes=i),
                nad=nad,
                pool=pools[p],
            )
        )
    PodEvent.objects.bulk_create(events)
    copier.finish()
    print(f"rows written in {time.monotonic() - t0:.1f}s", file=sys.stderr)

    store.links_refresh(cluster.pk)
    # Sync keeps IPPool.allocated from the IPPool's spec; rows written here need a recount.
    from ippam.leaks.reclaim.execute import pools_recount

    pools_recount(pool_ids=set(IPPool.objects.filter(cluster=cluster).values_list("pk", flat=True)))
    store.pools_refresh_usage(cluster.pk)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    from ippam.leaks.detect import leaks_detect

    t1 = time.monotonic()
    result = leaks_detect(cluster=cluster)
    print(f"leaks_detect in {time.monotonic() - t1:.1f}s", file=sys.stderr)
    with connection.cursor() as cursor:
        # What autovacuum does to a database that lives: visibility map (index-only scans),
        # hint bits, statistics. Without it the first reads write pages and skew the numbers.
        cursor.execute("VACUUM ANALYZE")
    get_user_model().objects.create_superuser("bench", "bench@example.com", "bench")
    return {
        "cluster": cluster,
        "pods": Pod.objects.count(),
        "allocations": Allocation.objects.count(),
        "findings": result.total,
        "planted": (orphaned, stale),
        "big_pool": IPPool.objects.get(cluster=cluster, range=BIG_RANGE),
        "big_ips": big_ips,
    }


def time_pages(pages: list[tuple], requests: int, warmup: int = 2) -> list[dict]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench"))
    results = []
    for _label, url, headers, _target in pages:
        for _ in range(warmup):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (url, response.status_code)
    # Round robin: each round requests every page once, so a swing in the machine's load
    # hits the empty reference page and the pages measured against it alike.
    times_by_page: list[list[float]] = [[] for _page in pages]
    for _ in range(requests):
        for times, (_label, url, headers, _target) in zip(times_by_page, pages, strict=True):
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
    for times, (label, url, headers, target) in zip(times_by_page, pages, strict=True):
        captured: list[dict] = []

        def record(execute, sql, params, many, context, captured=captured):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                captured.append({"sql": sql, "time": time.perf_counter() - started})

        # A wrapper, not CaptureQueriesContext: request_started resets the query log.
        with connection.execute_wrapper(record):
            response = client.get(url, headers=headers)
        sql_ms = sum(q["time"] for q in captured) * 1000
        slowest = max(captured, key=lambda q: q["time"], default=None)
        results.append(
            {
                "label": label,
                "url": url,
                "median": common.median(times),
                "p95": common.percentile(times, 95),
                "queries": len(captured),
                "sql_ms": sql_ms,
                "bytes": len(response.content),
                "target": target,
                "slowest_sql": slowest,
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 timed requests per page")
    parser.add_argument("--json", action="store_true", help="end with one JSON line (run.py)")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--allocations", type=int, default=60_000)
    parser.add_argument("--other-pools", type=int, default=300)
    parser.add_argument("--keep-db", action="store_true", help="leave the database in place")
    parser.add_argument(
        "--db-name", default=DB_NAME, help="throwaway database (dropped first; %(default)s)"
    )
    parser.add_argument("--verbose", action="store_true", help="print each page's slowest SQL")
    args = parser.parse_args()
    if args.quick:
        args.requests = min(args.requests, 10)

    url = common.database_create(args.db_name)
    try:
        # Production-like: DEBUG off (cached template loader, no query log).
        common.django_setup(
            url,
            DEBUG="false",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="testserver",
            IPPAM_LEAK_GRACE_SECONDS="0",
            LOG_LEVEL="WARNING",
            # Production serves hashed static names from a manifest: collect them once.
            IPPAM_STATIC_ROOT=tempfile.mkdtemp(prefix="ippam-bench-static-"),
        )
        from django.core.management import call_command

        call_command("collectstatic", interactive=False, verbosity=0)
        # No setup_test_environment(): its instrumented template rendering is not what
        # production runs. ALLOWED_HOSTS above lets the Client's "testserver" in.
        started = time.monotonic()
        filled = fill(args)
        fill_s = time.monotonic() - started
        pool = filled["big_pool"]
        probe = str(__import__("netaddr").IPAddress(filled["big_ips"][len(filled["big_ips"]) // 2]))
        block = ".".join(probe.split(".")[:3]) + ".0/24"
        table_hx = {"HX-Request": "true", "HX-Target": "pool-allocations"}
        pages = [
            # The reference: the same stack (session, auth, middleware, base template and
            # nav) with nothing to look up. Issue 15: the pages below within 3x of it.
            (EMPTY_PAGE, "/search/", None, None),
            ("overview /", "/", None, 150.0),
            ("pools list", "/pools/", None, None),
            (f"pool page {BIG_RANGE} (heat map)", f"/pools/{pool.pk}/", None, 250.0),
            (f"pool page, block {block}", f"/pools/{pool.pk}/?block={block}", None, None),
            ("allocations table p1 (htmx)", f"/pools/{pool.pk}/?page=1", table_hx, None),
            ("allocations table p1000 (htmx)", f"/pools/{pool.pk}/?page=1000", table_hx, None),
            ("leaks page", "/leaks/", None, None),
            (f"search {probe}", f"/search/?q={probe}", None, None),
        ]
        started = time.monotonic()
        load = os.getloadavg()
        results = time_pages(pages, args.requests)
        timing_s = time.monotonic() - started
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            common.database_drop(args.db_name)

    context = (
        f"PostgreSQL, {filled['pods']:,} pods, {filled['allocations']:,} allocations "
        f"({args.allocations:,} in {BIG_RANGE}), {args.other_pools + 1} pools, "
        f"{filled['findings']} findings; filled in {fill_s:.0f}s; "
        f"{args.requests} timed requests per page after 2 warm-ups ({timing_s:.0f}s); "
        f"load average {load[0]:.1f} before timing, {os.getloadavg()[0]:.1f} after"
    )
    print(f"\npages bench: {context}\n")
    empty_p95 = next(r["p95"] for r in results if r["label"] == EMPTY_PAGE)
    rows = []
    for r in results:
        target = "-" if r["target"] is None else f"<= {r['target']:.0f} ms"
        ok = None if r["target"] is None else r["p95"] <= r["target"]
        rows.append(
            [
                r["label"],
                f"{r['median']:.1f}",
                f"{r['p95']:.1f}",
                f"{r['p95'] / empty_p95:.1f}x",
                f"{r['sql_ms']:.1f}",
                str(r["queries"]),
                f"{r['bytes'] / 1024:.0f}",
                target,
                common.verdict(ok),
            ]
        )
    print(
        common.table(
            [
                "page",
                "median ms",
                "p95 ms",
                "p95 / empty",
                "SQL ms",
                "queries",
                "KiB",
                "target (p95)",
                "result",
            ],
            rows,
            right={1, 2, 3, 4, 5, 6},
        )
    )
    if args.verbose:
        for r in results:
            if r["slowest_sql"]:
                q = r["slowest_sql"]
                print(f"\n{r['label']}: slowest SQL {q['time'] * 1000:.1f} ms:\n{q['sql'][:400]}")
    metrics = []
    for r in results:
        metrics.append(common.metric(f"{r['label']}: p95", r["p95"], "ms", r["target"]))
        if r["target"] is not None:
            metrics.append(common.metric(f"{r['label']}: median", r["median"], "ms"))
    for r in results:
        if r["label"].startswith(RATIO_PAGES):
            ratio = r["p95"] / empty_p95
            metrics.append(
                common.metric(f"{r['label']}: p95 / empty page's", ratio, "x", RATIO_TARGET)
            )
            print(
                f"{r['label']}: p95 {ratio:.1f}x the empty page's ({empty_p95:.1f} ms): "
                f"{'ok' if ratio <= RATIO_TARGET else 'MISSED'} (target <= {RATIO_TARGET:.0f}x)"
            )
    if args.json:
        print(json.dumps({"bench": "pages", "context": context, "metrics": metrics}))


if __name__ == "__main__":
    os.chdir(common.ROOT)
    main()
