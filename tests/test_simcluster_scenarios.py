"""simcluster scenarios, builder and CLI: consistency, ground truth, determinism, startup time."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from simcluster.builder import ClusterBuilder, ip_offset, orip_name, pool_name
from simcluster.scenarios import build_demo, build_leaky, load_scale
from simcluster.store import Store

ROOT = Path(__file__).resolve().parents[1]


def test_whereabouts_naming():
    assert pool_name("10.0.0.0/24") == "10.0.0.0-24"
    assert pool_name("10.0.0.0/8") == "10.0.0.0-8"
    assert pool_name("fd00::/64") == "fd00---64"
    assert pool_name("10.0.0.0/24", "blue") == "blue-10.0.0.0-24"
    assert orip_name("10.0.0.5") == "10.0.0.5"
    assert orip_name("fd00::") == "fd00--0"
    assert orip_name("fd00::1") == "fd00--1"
    assert orip_name("10.0.0.5", "blue") == "blue-10.0.0.5"
    assert ip_offset("10.0.0.0/24", "10.0.0.5") == 5


def test_builder_pod_is_internally_consistent():
    b = ClusterBuilder(seed=1)
    b.namespace("ns")
    b.node("n1")
    b.whereabouts_nad("ns", "net", "10.5.0.0/24", range_start="10.5.0.10", network_name="blue")
    b.nad(
        "ns",
        "plain",
        {
            "cniVersion": "0.3.1",
            "type": "bridge",
            "ipam": {"type": "host-local", "subnet": "10.6.0.0/24"},
        },
    )
    pod = b.pod("ns", "p", "n1", [("ns", "net"), ("ns", "plain"), ("ns", "net")])
    objs = b.objects()
    (pool,) = objs["ippools"]
    assert pool["metadata"] == {
        **pool["metadata"],
        "name": "blue-10.5.0.0-24",
        "namespace": "kube-system",
    }
    assert pool["spec"]["range"] == "10.5.0.0/24"
    allocs = pool["spec"]["allocations"]
    assert sorted(allocs) == ["10", "11"]
    assert {a["ifname"] for a in allocs.values()} == {"net1", "net3"}
    assert all(a["podref"] == "ns/p" and len(a["id"]) == 64 for a in allocs.values())
    assert sorted(o["metadata"]["name"] for o in objs["overlappingrangeipreservations"]) == [
        "blue-10.5.0.10",
        "blue-10.5.0.11",
    ]
    status = json.loads(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
    assert [s["interface"] for s in status] == ["eth0", "net1", "net2", "net3"]
    assert status[0]["default"] is True
    assert status[1]["ips"] == ["10.5.0.10"] and status[3]["ips"] == ["10.5.0.11"]
    assert status[2]["ips"] and status[2]["ips"][0].startswith("10.6.0.")
    assert pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "ns/net,ns/plain,ns/net"
    config = json.loads(objs["network-attachment-definitions"][0]["spec"]["config"])
    assert config["ipam"] == {
        "type": "whereabouts",
        "range": "10.5.0.0/24",
        "range_start": "10.5.0.10",
        "network_name": "blue",
    }
    assert {e["reason"] for e in objs["events"]} == {"AddedInterface", "Scheduled"}
    (scheduled,) = (e for e in objs["events"] if e["reason"] == "Scheduled")
    # written through events.k8s.io/v1: eventTime and action, no count or timestamps
    assert scheduled["action"] == "Binding" and scheduled["eventTime"].endswith("Z")
    assert scheduled["firstTimestamp"] is None and "count" not in scheduled
    assert any(e["message"] == "Add net1 [10.5.0.10/24] from ns/net" for e in objs["events"])


def test_builder_output_loads_into_the_fixture(simcluster):
    b = ClusterBuilder(seed=2)
    b.namespace("x")
    b.node("n1")
    b.whereabouts_nad("x", "net", "10.7.0.0/28")
    b.pod("x", "p", "n1", [("x", "net")])
    simcluster.seed(b.objects())
    assert (
        simcluster.get("pods", "x", "p")["metadata"]["uid"]
        == b.objects()["pods"][0]["metadata"]["uid"]
    )
    assert (
        simcluster.get("ippools", "kube-system", "10.7.0.0-28")["spec"]["allocations"]["1"][
            "podref"
        ]
        == "x/p"
    )
    assert simcluster.get("overlappingrangeipreservations", "kube-system", "10.7.0.1") is not None


# ---------------------------------------------------------------- a reference detector


def _status_annotation(pod: dict) -> str:
    ann = pod["metadata"].get("annotations") or {}
    return (
        ann.get("k8s.v1.cni.cncf.io/network-status")
        or ann.get("k8s.v1.cni.cncf.io/networks-status")
        or "[]"
    )


def _detect(objs: dict) -> list[tuple]:
    """An independent, simple leak detector over plain objects: an allocation whose podref
    names no pod is orphaned; one whose pod does not show its address is stale (suspect while
    the pod is Pending); an allocation missing its ORIP (overlapping ranges on), or an ORIP
    whose pod is gone or holds no matching allocation, is an orphaned reservation; an address
    pods show that no allocation holds is untracked, one shown by a second pod duplicated;
    whereabouts ranges that overlap under different network_names overlap."""
    pods = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in objs["pods"]}
    wb = {}
    for n in objs["network-attachment-definitions"]:
        try:
            cfg = json.loads(n["spec"]["config"])
        except ValueError:
            continue
        plugins = cfg.get("plugins", [cfg])
        ipam = next(
            (p["ipam"] for p in plugins if p.get("ipam", {}).get("type") == "whereabouts"), None
        )
        if ipam:
            nn = ipam.get("network_name", "")
            ref = f"{n['metadata']['namespace']}/{n['metadata']['name']}"
            wb[ref] = {
                "net": ipaddress.ip_network(ipam["range"], strict=False),
                "nn": nn,
                "pool": f"kube-system/{pool_name(ipam['range'], nn)}",
                "orip": ipam.get("enable_overlapping_ranges", True),
            }
    pools = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p for p in objs["ippools"]}
    alloc = {}  # (pool, ip) -> allocation
    for ref, p in pools.items():
        net = ipaddress.ip_network(p["spec"]["range"])
        for k, a in p["spec"]["allocations"].items():
            alloc[(ref, str(net.network_address + int(k)))] = a
    orips = {(o["metadata"]["name"]): o for o in objs["overlappingrangeipreservations"]}
    shown = {}  # (pool, ip) -> [podref]
    pod_ips = {}
    for ref, p in pods.items():
        st = json.loads(_status_annotation(p))
        pod_ips[ref] = {ip for e in st for ip in e.get("ips", [])}
        for e in st:
            if e.get("name") in wb:
                for ip in e["ips"]:
                    shown.setdefault((wb[e["name"]]["pool"], ip), []).append(ref)
    out = []
    pool_cfg = {w["pool"]: w for w in wb.values()}
    for (pool, ip), a in alloc.items():
        pod = pods.get(a["podref"])
        if pod is None:
            out.append(("orphaned_allocation", "leaked", ip, pool, a["podref"]))
        elif ip not in pod_ips[a["podref"]]:
            state = "suspect" if pod["status"]["phase"] == "Pending" else "leaked"
            out.append(("stale_allocation", state, ip, pool, a["podref"]))
        w = pool_cfg[pool]
        if w["orip"] and pod is not None and orip_name(ip, w["nn"] or None) not in orips:
            out.append(("orphaned_reservation", "leaked", ip, pool, a["podref"]))
    for (pool, ip), refs in shown.items():
        if (pool, ip) not in alloc:
            out += [("untracked_address", "leaked", ip, pool, r) for r in refs]
        elif len(refs) > 1:
            holder = alloc[(pool, ip)]["podref"]
            out += [("duplicate_address", "leaked", ip, pool, r) for r in refs if r != holder]
    for name, o in orips.items():
        ref = o["spec"]["podref"]
        held = any(
            a["podref"] == ref and orip_name(ip, pool_cfg[p]["nn"] or None) == name
            for (p, ip), a in alloc.items()
        )
        if ref not in pods or not held:
            ip = next(
                (ip for (p, ip) in alloc if orip_name(ip, pool_cfg[p]["nn"] or None) == name), None
            )
            out.append(("orphaned_reservation", "leaked", ip, "*", ref))
    refs = sorted(wb)
    for i, a in enumerate(refs):
        for b in refs[i + 1 :]:
            if wb[a]["net"].overlaps(wb[b]["net"]) and wb[a]["nn"] != wb[b]["nn"]:
                out.append(("overlapping_range", "leaked", None, None, tuple(sorted((a, b)))))
    return out


@pytest.mark.parametrize("build", [build_demo, build_leaky])
def test_ground_truth_matches_a_reference_detector(build):
    b = build(1)
    objs = b.objects()
    gt = b.ground_truth()
    found = _detect(objs)
    expected = []
    for f in gt["findings"]:
        if f["kind"] == "overlapping_range":
            expected.append((f["kind"], f["state"], None, None, tuple(sorted(f["nads"]))))
        elif f["kind"] == "orphaned_reservation" and f.get("reservation"):
            expected.append((f["kind"], f["state"], None, "*", f["podref"]))
        else:
            expected.append((f["kind"], f["state"], f["ip"], f["pool"], f["podref"]))
    assert sorted(found, key=str) == sorted(expected, key=str)
    kinds = {f["kind"] for f in gt["findings"]}
    assert kinds == {
        "orphaned_allocation",
        "stale_allocation",
        "untracked_address",
        "duplicate_address",
        "orphaned_reservation",
        "overlapping_range",
    }
    assert {f["state"] for f in gt["findings"]} == {"leaked", "suspect"}


def test_demo_shape():
    b = build_demo(1)
    objs = b.objects()
    gt = b.ground_truth()
    assert len(objs["nodes"]) == 8 and len(objs["namespaces"]) == 6
    assert 280 <= len(objs["pods"]) <= 320
    nads = {
        f"{n['metadata']['namespace']}/{n['metadata']['name']}": n
        for n in objs["network-attachment-definitions"]
    }
    assert nads["default/node-local"]["spec"]["config"] == ""
    with pytest.raises(ValueError):
        json.loads(nads["default/legacy-ens224"]["spec"]["config"])
    assert nads["default/gke-network-1"]["metadata"]["annotations"] == {
        "k8s.v1.cni.cncf.io/nodeSelector": "my-label=multinicNP"
    }
    assert "k8s.v1.cni.cncf.io/resourceName" in nads["telco/sriov-net"]["metadata"]["annotations"]
    assert json.loads(nads["default/flannel"]["spec"]["config"])["type"] == "flannel"
    assert gt["exhausted_pools"] == ["kube-system/10.40.0.0-28"]
    assert len(gt["failed_pods"]) == 3
    usage = sorted(u["allocated"] / u["usable"] for u in gt["pools"].values())
    assert usage[0] < 0.05 and usage[-1] == 1.0 and any(0.85 < x < 1 for x in usage)
    # pods: 1-3 secondary interfaces, all objects old enough for grace periods
    for p in objs["pods"]:
        n = len(
            (p["metadata"].get("annotations") or {})
            .get("k8s.v1.cni.cncf.io/networks", "x")
            .split(",")
        )
        assert 1 <= n <= 3 or p["metadata"]["annotations"][
            "k8s.v1.cni.cncf.io/networks"
        ].startswith("[")
    assert all(p["metadata"]["creationTimestamp"] < b.ts(3600) for p in objs["pods"])
    # the JSON form of the networks annotation appears too
    assert any(
        p["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"].startswith("[")
        for p in objs["pods"]
    )


def test_demo_is_deterministic_from_seed():
    a, b, c = build_demo(1).objects(), build_demo(1).objects(), build_demo(2).objects()

    def key(o):
        return [
            (p["metadata"]["name"], p["metadata"]["uid"], p["metadata"].get("annotations"))
            for p in o["pods"]
        ]

    assert key(a) == key(b)
    assert key(a) != key(c)


def test_scale_loader_small_and_consistent():
    store = Store()
    t0 = time.monotonic()
    gt = load_scale(store, 1, nodes=50, pods=3000, nads=40, namespaces=5)
    assert time.monotonic() - t0 < 10
    counts = store.counts()
    assert (
        counts["pods"] == 3000
        and counts["nodes"] == 50
        and counts["network-attachment-definitions"] == 40
    )
    assert counts["ippools"] == 40
    assert 2700 <= gt["allocations"] <= 3600
    assert gt["findings"] and all(f["kind"] == "orphaned_allocation" for f in gt["findings"])
    objs = {
        p: [e.obj() for e in store.select(p)[1]]
        for p in (
            "pods",
            "network-attachment-definitions",
            "ippools",
            "overlappingrangeipreservations",
        )
    }
    expected = [(f["kind"], f["state"], f["ip"], f["pool"], f["podref"]) for f in gt["findings"]]
    assert sorted(_detect(objs), key=str) == sorted(expected, key=str)
    from kubernetes.client import ApiClient
    from kubernetes.client.models import V1Node, V1Pod

    _, pods = store.select("pods")
    V1Pod.from_dict(pods[0].obj())
    _, nodes = store.select("nodes")
    V1Node.from_dict(nodes[0].obj())
    assert ApiClient is not None


def test_demo_typed_models_validate_every_object(simcluster):
    from kubernetes.client.models import CoreV1Event, V1Namespace, V1Node, V1Pod

    simcluster.load("demo")
    for plural, model in (
        ("pods", V1Pod),
        ("nodes", V1Node),
        ("namespaces", V1Namespace),
        ("events", CoreV1Event),
    ):
        for obj in simcluster.list(plural):
            model.from_dict(obj)
    assert simcluster.ground_truth["findings"]


# ---------------------------------------------------------------- the CLI


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_cli_serves_demo_within_5_seconds(tmp_path):
    port = _free_port()
    kc = tmp_path / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simcluster",
            "--scenario",
            "demo",
            "--port",
            str(port),
            "--kubeconfig",
            str(kc),
            "--churn",
            "20",
        ],
        cwd=str(ROOT),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = None
        while time.monotonic() - t0 < 5:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v1/pods?limit=5", timeout=1
                ) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None, "not serving within 5 s"
        assert len(body["items"]) == 5 and body["metadata"]["continue"]
        import yaml

        cfg = yaml.safe_load(kc.read_text())
        assert cfg["current-context"] == "simcluster"
        assert cfg["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        churned: list = []
        deadline = time.monotonic() + 10
        while not churned and time.monotonic() < deadline:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/v1/pods?labelSelector=app%3Dchurn", timeout=2
            ) as r:
                churned = json.loads(r.read())["items"]
            time.sleep(0.05)
        assert churned, "churn did not create pods within 10 s"
    finally:
        proc.terminate()
        proc.wait(10)


def test_churn_keeps_the_demo_ground_truth():
    from kubernetes.client.models import V1Pod

    from simcluster.churn import Churner

    store = Store()
    b = build_demo(1)
    store.load_objects(b.objects(), emit=False)
    churner = Churner(store, seed=3)
    steps = [churner.step() for _ in range(600)]
    assert {"create", "start", "delete"} <= set(steps)
    live = len(churner.pending) + len(churner.running)
    assert live <= churner.max_pods
    objs = {
        p: [e.obj() for e in store.select(p)[1]]
        for p in (
            "pods",
            "network-attachment-definitions",
            "ippools",
            "overlappingrangeipreservations",
        )
    }
    for p in objs["pods"]:
        if p["metadata"]["name"].startswith("churn-"):
            V1Pod.from_dict(p)
    found = _detect(objs)
    expected = _detect(b.objects())
    assert sorted(found, key=str) == sorted(expected, key=str)


def test_bounded_event_log_expires_old_versions():
    from simcluster.resources import BY_PLURAL
    from simcluster.store import FieldSelector, LabelSelector

    store = Store(log_size=5)
    store.compact()
    start = store.rv
    for i in range(10):
        store.create("namespaces", {"metadata": {"name": f"n{i}"}})
    sel, fsel = LabelSelector(None), FieldSelector(None, BY_PLURAL["namespaces"])
    w, initial, _ = store.watch("namespaces", None, sel, fsel, str(start), lambda ev: None)
    assert w is None  # too old: the HTTP layer turns this into an in-stream 410
    w, initial, _ = store.watch("namespaces", None, sel, fsel, str(store.rv - 3), lambda ev: None)
    assert [e.name for _, e in initial] == ["n7", "n8", "n9"]
