"""Long exclude lists (issue 13): what a NAD with thousands of `exclude` entries costs.

Usage: .venv/bin/python bench/excludes_bench.py [--json] [--quick] [--keep-db]

In one process, on a throwaway PostgreSQL database (bench/common.py), against simcluster's
`demo` scenario served in a thread:
  base      first full sync of `demo` into an empty cluster row (median of 5, round robin)
  scattered the same plus one NAD whose /16 range has 5,000 scattered /32 excludes
  dups      the same plus one NAD with 20,000 copies of one exclude entry
  preview   the NAD form's check (NADForm.is_valid: parse, usable count, overlap query)
            with 6,000 excludes, as the preview view runs it
Targets (issue 13): scattered sync <= 1.5x base; preview <= 1 s. The usable count of the
scattered NAD must equal a brute-force count (checked, not timed).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    database_create,
    database_drop,
    django_setup,
    median,
    metric,
    metric_rows,
    table,
)

DB = "ippam_bench_excludes"


def _nad(name: str, cidr: str, exclude: list[str]) -> dict:
    config = {
        "cniVersion": "0.3.1",
        "type": "macvlan",
        "master": "eth1",
        "ipam": {"type": "whereabouts", "range": cidr, "exclude": exclude},
    }
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"config": json.dumps(config)},
    }


def scattered(n: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    return [f"10.77.{rnd.randrange(256)}.{rnd.randrange(256)}/32" for _ in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1 run per sync instead of 5")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    runs = 1 if args.quick else 5

    url = database_create(DB)
    try:
        django_setup(url)
        from ippam.models import Cluster, NADRange
        from ippam.sync import cluster_sync_full
        from simcluster.runtime import Running, write_kubeconfig
        from simcluster.server import SimServer

        def serve(extra: list[dict]) -> tuple[Running, str]:
            server = SimServer()
            server.reset("demo", 1)
            for obj in extra:
                server.store.create("network-attachment-definitions", obj, "default")
            running = Running(server)
            path = write_kubeconfig(tempfile.mktemp(suffix=".kubeconfig"), running.url)
            return running, path

        excludes = scattered(5000)
        cases = {
            "base": [],
            "scattered": [_nad("many-excludes", "10.77.0.0/16", excludes)],
            "dups": [_nad("dup-excludes", "10.78.0.0/16", ["10.78.3.3/32"] * 20000)],
        }
        # Round robin over the cases, so that a warming or growing database weighs on each
        # alike; the first round only warms up (client, caches).
        served = {case: serve(extra) for case, extra in cases.items()}
        samples: dict[str, list[float]] = {case: [] for case in cases}
        for i in range(runs + 1):
            for case, (_, kubeconfig) in served.items():
                cluster = Cluster.objects.create(name=f"{case}-{i}", kubeconfig=kubeconfig)
                t0 = time.perf_counter()
                cluster_sync_full(cluster=cluster, run_hooks=False)
                if i:
                    samples[case].append(time.perf_counter() - t0)
        for running, _ in served.values():
            running.stop()
        times = {case: median(values) for case, values in samples.items()}
        # Exact count, against a brute force over the /16 (the bench may enumerate).
        net = ipaddress.ip_network("10.77.0.0/16")
        gone = {ipaddress.ip_network(e)[0] for e in excludes}
        expected = sum(1 for ip in net.hosts() if ip not in gone)
        counted = int(
            NADRange.objects.filter(nad__name="many-excludes").values_list("usable", flat=True)[0]
        )

        from dashboard.forms.nad import NADForm

        preview_cluster = Cluster.objects.get(name="base-1")
        data = {
            "cluster": str(preview_cluster.pk),
            "namespace": "default",
            "name": "preview-net",
            "cni_version": "0.3.1",
            "cni_type": "macvlan",
            "macvlan_master": "eth1",
            "macvlan_mode": "bridge",
            "ipam_type": "whereabouts",
            "wb_range": "10.77.0.0/16",
            "wb_exclude": "\n".join(scattered(6000, seed=2)),
            "wb_enable_overlapping_ranges": "on",
        }
        preview = []
        for _ in range(runs):
            t0 = time.perf_counter()
            form = NADForm(data)
            form.is_valid()
            form.draft_manifest()
            preview.append(time.perf_counter() - t0)
    finally:
        if not args.keep_db:
            database_drop(DB)

    metrics = [
        metric("sync demo (first, median)", times["base"], "s"),
        metric(
            "sync demo + NAD with 5,000 scattered /32 excludes: ratio",
            times["scattered"] / times["base"],
            "x",
            1.5,
        ),
        metric(
            "sync demo + NAD with 20,000 duplicate excludes: ratio",
            times["dups"] / times["base"],
            "x",
            1.5,
        ),
        metric("NAD form check with 6,000 excludes", median(preview), "s", 1.0),
        metric(
            "usable count of the 5,000-exclude /16 equals brute force",
            float(counted == expected),
            "",
            1.0,
            higher_is_better=True,
            note=f"{counted} vs {expected}",
        ),
    ]
    print(table(["metric", "measured", "target", "result"], metric_rows(metrics), right={1}))
    if args.json:
        print(json.dumps({"bench": "excludes", "context": f"runs={runs}", "metrics": metrics}))
    return 0 if all(m["ok"] is not False for m in metrics) else 1


if __name__ == "__main__":
    sys.exit(main())
