"""Leak detection on a large synced database (docs/design.md §6: ≤ 3 s at 150k allocations).

Usage: .venv/bin/python bench/leaks_bench.py [--allocations 150000] [--nads 2000]
       [--nodes 5000] [--leak-percent 1] [--repeat 3]
Runs on a throw-away test database of the configured backend (DATABASE_URL: SQLite file
by default, or PostgreSQL), fills it with rows shaped like a full sync of the scale
scenario (one pod per allocation with a default and one whereabouts interface, an ORIP per
allocation), plants orphaned and stale allocations, then times each rule and the whole of
leaks_detect (rules + upsert of findings + alerts) and prints one table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
os.environ.setdefault("IPPAM_LEAK_GRACE_SECONDS", "0")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402
from netaddr import IPAddress, IPNetwork  # noqa: E402

BATCH = 5000


def fill(args: argparse.Namespace) -> dict[str, int]:
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
        PodInterface,
    )

    long_ago = timezone.now() - timezone.timedelta(days=2)
    cluster = Cluster.objects.create(name="bench", kubeconfig="/dev/null")
    Node.objects.bulk_create(
        [
            Node(cluster=cluster, name=f"node-{i:05d}", uid=f"n{i}", ready=i % 97 != 0)
            for i in range(args.nodes)
        ],
        batch_size=BATCH,
    )
    nads, pools = [], []
    for i in range(args.nads):
        cidr = f"10.{i // 256}.{i % 256}.0/24" if i < 256 * 64 else f"11.{i // 256}.{i % 256}.0/24"
        net = IPNetwork(cidr)
        nads.append(
            NetworkAttachmentDefinition(
                cluster=cluster,
                namespace=f"ns-{i % 50}",
                name=f"net-{i}",
                uid=f"d{i}",
                created_at=long_ago,
                cni_type="macvlan",
                ipam_type="whereabouts",
            )
        )
        pools.append(
            IPPool(
                cluster=cluster,
                namespace="kube-system",
                name=cidr.replace("/", "-"),
                uid=f"p{i}",
                range=cidr,
                first_ip=IPAddress(net.first),
                last_ip=IPAddress(net.last),
                usable=254,
                created_at=long_ago,
            )
        )
    NetworkAttachmentDefinition.objects.bulk_create(nads, batch_size=BATCH)
    IPPool.objects.bulk_create(pools, batch_size=BATCH)
    nads = list(NetworkAttachmentDefinition.objects.filter(cluster=cluster).order_by("id"))
    pools = list(IPPool.objects.filter(cluster=cluster).order_by("id"))
    NADRange.objects.bulk_create(
        [
            NADRange(
                nad=nad,
                cluster=cluster,
                range=pool.range,
                first_ip=pool.first_ip,
                last_ip=pool.last_ip,
                usable=254,
                pool_name=pool.name,
                pool=pool,
            )
            for nad, pool in zip(nads, pools, strict=True)
        ],
        batch_size=BATCH,
    )

    per_nad = -(-args.allocations // args.nads)
    leak_every = max(int(100 / args.leak_percent), 2) if args.leak_percent else 0
    planted = {"orphaned": 0, "stale": 0}
    done = 0
    while done < args.allocations:
        chunk = range(done, min(done + BATCH, args.allocations))
        pods, allocations, orips, plan = [], [], [], []
        for n in chunk:
            nad_i, offset = divmod(n, per_nad)
            nad, pool = nads[nad_i], pools[nad_i]
            ip = IPAddress(int(pool.first_ip) + 1 + offset)
            podref_ns, name = nad.namespace, f"pod-{n}"
            kind = ""
            if leak_every and n % leak_every == 0:
                kind = "orphaned" if (n // leak_every) % 2 == 0 else "stale"
                planted[kind] += 1
            if kind != "orphaned":
                pods.append(
                    Pod(
                        cluster=cluster,
                        namespace=podref_ns,
                        name=name,
                        uid=f"u{n}",
                        node_name=f"node-{n % args.nodes:05d}",
                        phase="Running",
                        created_at=long_ago,
                        network_status_annotation="[...]",
                    )
                )
                plan.append((nad, None if kind == "stale" else ip))
            allocations.append(
                Allocation(
                    pool=pool,
                    cluster=cluster,
                    key=str(1 + offset),
                    ip=ip,
                    podref=f"{podref_ns}/{name}",
                    pod_namespace=podref_ns,
                    pod_name=name,
                    ifname="net1",
                )
            )
            orips.append(
                OverlappingRangeIPReservation(
                    cluster=cluster,
                    namespace="kube-system",
                    name=str(ip),
                    uid=f"o{n}",
                    ip=ip,
                    podref=f"{podref_ns}/{name}",
                    pod_namespace=podref_ns,
                    pod_name=name,
                    created_at=long_ago,
                )
            )
        Pod.objects.bulk_create(pods)
        Allocation.objects.bulk_create(allocations)
        OverlappingRangeIPReservation.objects.bulk_create(orips)
        ifaces = []
        for pod, (nad, _ip) in zip(pods, plan, strict=True):
            ifaces.append(
                PodInterface(
                    pod=pod,
                    cluster=cluster,
                    network_name="k8s-pod-network",
                    interface="eth0",
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
                )
            )
        PodInterface.objects.bulk_create(ifaces)
        addresses = []
        for i, (_nad, ip) in enumerate(plan):
            pod_net = IPAddress(int(IPAddress("100.64.0.0")) + done + i)
            addresses.append(InterfaceAddress(interface=ifaces[2 * i], cluster=cluster, ip=pod_net))
            if ip is not None:
                addresses.append(
                    InterfaceAddress(interface=ifaces[2 * i + 1], cluster=cluster, ip=ip)
                )
        InterfaceAddress.objects.bulk_create(addresses)
        done = chunk.stop
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
        else:
            cursor.execute("ANALYZE")
    return {"cluster": cluster.pk, **planted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocations", type=int, default=150_000)
    parser.add_argument("--nads", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--leak-percent", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--keep", action="store_true", help="keep the filled database for a later --keep run"
    )
    args = parser.parse_args()

    from ippam.leaks.detect import leaks_detect
    from ippam.leaks.rules.common import Context
    from ippam.leaks.rules.registry import RULES, _planner_settings, candidates_compute
    from ippam.models import Cluster

    setup_test_environment()
    if connection.vendor == "sqlite":
        # A file, like the embedded default, not the in-memory database tests use.
        connection.settings_dict.setdefault("TEST", {})["NAME"] = str(
            ROOT / "var" / "leaks-bench.sqlite3"
        )
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, keepdb=args.keep, serialize=False
    )
    try:
        t0 = time.monotonic()
        cluster = Cluster.objects.filter(name="bench").first() if args.keep else None
        if cluster is None:
            planted = fill(args)
            cluster = Cluster.objects.get(pk=planted["cluster"])
        else:  # reused from an earlier --keep run
            from ippam.models import Allocation

            args.allocations = Allocation.objects.filter(cluster=cluster).count()
            planted = {"orphaned": "?", "stale": "?"}
        fill_s = time.monotonic() - t0
        rows: list[tuple[str, str, str]] = []
        ctx = Context(cluster, timezone.now())
        for rule in RULES:
            t = time.monotonic()
            with _planner_settings():
                found = rule(ctx)
            rows.append((rule.__name__, f"{time.monotonic() - t:.3f}", str(len(found))))
        runs = []
        for _ in range(args.repeat):
            t = time.monotonic()
            result = leaks_detect(cluster=cluster)
            runs.append(time.monotonic() - t)
        rows.append(
            ("sum of the rules, one after the other", f"{sum(float(r[1]) for r in rows):.3f}", "")
        )
        for parallel in (False, True):
            t = time.monotonic()
            found = candidates_compute(cluster=cluster, now=timezone.now(), parallel=parallel)
            label = "all rules, concurrently" if parallel else "all rules, one connection"
            rows.append((label, f"{time.monotonic() - t:.3f}", str(len(found))))
        rows.append(("leaks_detect (first run: inserts)", f"{runs[0]:.3f}", str(result.total)))
        if len(runs) > 1:
            best = min(runs[1:])
            rows.append(
                (
                    f"leaks_detect (steady, best of {len(runs) - 1})",
                    f"{best:.3f}",
                    str(result.total),
                )
            )
        target = 3.0
        print(
            f"\nleak detection on {connection.vendor}: {args.allocations} allocations, {args.nads} NADs, "
            f"{args.nodes} nodes; planted {planted['orphaned']} orphaned + {planted['stale']} stale "
            f"(filled in {fill_s:.1f}s)\n"
        )
        width = max(len(r[0]) for r in rows)
        print(f"{'step'.ljust(width)}  {'seconds':>8}  {'findings':>8}")
        for name, seconds, count in rows:
            print(f"{name.ljust(width)}  {seconds:>8}  {count:>8}")
        steady = min(runs[1:]) if len(runs) > 1 else runs[0]
        verdict = "meets" if steady <= target else "MISSES"
        print(f"\n{verdict} the {target:.0f} s target (docs/design.md §6)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=args.keep)


if __name__ == "__main__":
    main()
