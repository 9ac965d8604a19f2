"""Scenarios: `empty`, `demo` (realistic, with planted findings) and `scale`.

Each loader fills a Store (already holding the CRDs and the default and kube-system
namespaces) and returns the ground truth: what a correct leak detector must find.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random

from . import nodeslice
from .builder import ClusterBuilder, PoolExhausted
from .store import Store

# the controller that owns each demo workload's pods, and how it names itself
DEMO_CONTROLLERS = {
    "cnf-upf": "StatefulSet",
    "cnf-smf": "ReplicaSet",
    "cnf-amf": "ReplicaSet",
    "cnf-nrf": "ReplicaSet",
    "probe": "DaemonSet",
    "web": "ReplicaSet",
    "web-api": "ReplicaSet",
    "batch": "Job",
    "ceph-osd": "StatefulSet",
    "spark-exec": "ReplicaSet",
    "kafka": "StatefulSet",
    "lab-client": "ReplicaSet",
    "echo": "ReplicaSet",
    "blue": "ReplicaSet",
    "tiny": "ReplicaSet",
}
CONTROLLER_NAMES = {
    "ReplicaSet": lambda app: f"{app}-{hash_name(app) % 16**10:010x}",
    "StatefulSet": lambda app: app,
    "DaemonSet": lambda app: app,
    "Job": lambda app: f"{app}-{28_900_000 + abs(hash_name(app)) % 100_000}",
}
SMF_DNS = {
    "nameservers": ["10.96.0.10"],
    "search": ["telco.svc.cluster.local", "svc.cluster.local", "cluster.local"],
    "options": ["ndots:5"],
}


# scale's pods: 7 in 10 from ReplicaSets, then StatefulSets, DaemonSets and Jobs
SCALE_CONTROLLERS = ("ReplicaSet",) * 7 + ("StatefulSet", "DaemonSet", "Job")


def hash_name(text: str) -> int:
    """A stable number for a name (Python's hash() changes per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


SCENARIOS = ("empty", "demo", "leaky", "scale", "nodeslice", "workloads")

GKE_INVALID = """{
  "cniVersion":"0.3.0",
  "type": "ipvlan",
  "master": "ens224", # defines the node interface that this Pod interface would map to
  "mode": "l2",
  "ipam": {
    "type": "whereabouts",
    "range": "172.16.9.0/24"
   }
}"""


def load_scenario(store: Store, name: str, seed: int = 1) -> dict:
    if name == "empty":
        return {"findings": [], "exhausted_pools": [], "failed_pods": [], "pools": {}}
    if name == "demo":
        b = build_demo(seed)
        store.load_objects(b.objects(), emit=False)
        return b.ground_truth()
    if name == "leaky":
        b = build_leaky(seed)
        store.load_objects(b.objects(), emit=False)
        return b.ground_truth()
    if name == "scale":
        return load_scale(store, seed)
    if name == "workloads":
        from .workloads import build_workloads

        b = build_workloads(seed)
        store.load_objects(b.objects(), emit=False)
        return b.ground_truth()
    if name == "nodeslice":
        b = build_nodeslice(seed)
        store.load_objects(b.objects(), emit=False)
        return b.ground_truth()
    raise ValueError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")


# ---------------------------------------------------------------- demo


def build_demo(seed: int = 1) -> ClusterBuilder:
    b = ClusterBuilder(seed)
    rng = random.Random(seed * 7919 + 1)

    for ns, labels in (
        ("default", None),
        ("kube-system", None),
        ("telco", {"team": "core-network"}),
        ("storage", {"team": "storage"}),
        ("analytics", {"team": "data"}),
        ("lab", {"team": "platform", "env": "dev"}),
    ):
        b.namespace(ns, labels)

    nodes = [f"sim-node-{i:02d}" for i in range(1, 9)]
    for i, n in enumerate(nodes):
        labels = {"node-role.kubernetes.io/worker": ""}
        if i < 4:
            labels["my-label"] = "multinicNP"
        if i >= 5:
            labels["topology.kubernetes.io/zone"] = "zone-b"
        else:
            labels["topology.kubernetes.io/zone"] = "zone-a"
        # zone b is dual-stack: its pods get an IPv6 address too
        b.node(n, ready=(n != "sim-node-08"), labels=labels, dual_stack=i >= 5)
    ready_nodes = nodes[:7]
    labelled = nodes[:4]

    # -- NADs as users write them
    gke = ("telco", "ipvlan-data")  # GKE: ipvlan l2 + whereabouts on eth1 (conflist)
    b.whereabouts_nad(*gke, "172.16.1.0/24", cni_type="ipvlan", master="eth1", conflist=True)
    tanzu = ("telco", "macvlan-conf")  # Tanzu: macvlan bridge conflist + range_start/end/gateway
    b.whereabouts_nad(
        *tanzu,
        "192.168.20.0/24",
        cni_type="macvlan",
        master="eth0",
        conflist=True,
        range_start="192.168.20.10",
        range_end="192.168.20.100",
        gateway="192.168.20.1",
    )
    vmw = ("default", "gke-network-1")  # GKE on VMware: ipvlan ens224 + nodeSelector
    b.whereabouts_nad(
        *vmw,
        "172.16.0.0/24",
        cni_type="ipvlan",
        master="ens224",
        cni_version="0.3.0",
        annotations={"k8s.v1.cni.cncf.io/nodeSelector": "my-label=multinicNP"},
    )
    storage = ("storage", "storage-net")  # no ORIPs for this one
    b.whereabouts_nad(
        *storage,
        "10.20.0.0/26",
        master="eth1",
        exclude=["10.20.0.0/29"],
        enable_overlapping_ranges=False,
    )
    v6 = ("analytics", "v6-net")
    b.whereabouts_nad(*v6, "fd00:10:20::/64", master="eth1")
    shared_a = ("lab", "shared-a")
    shared_b = ("analytics", "shared-b")
    b.whereabouts_nad(*shared_a, "10.30.0.0/24", master="eth1", network_name="shared-l2")
    b.whereabouts_nad(*shared_b, "10.30.0.0/24", master="eth1", network_name="shared-l2")
    tiny = ("lab", "tiny-net")
    b.whereabouts_nad(*tiny, "10.40.0.0/28", master="eth1", range_end="10.40.0.14")
    blue = ("lab", "blue-net")
    green = ("analytics", "green-net")
    b.whereabouts_nad(
        *blue, "10.60.0.0/24", master="eth2", network_name="blue", range_start="10.60.0.100"
    )
    b.whereabouts_nad(
        *green, "10.60.0.0/25", master="eth2", cni_type="ipvlan", network_name="green"
    )

    flannel = ("default", "flannel")
    b.nad(
        *flannel,
        {
            "cniVersion": "0.3.0",
            "type": "flannel",
            "delegate": {"hairpinMode": True, "isDefaultGateway": False},
        },
    )
    sriov = ("telco", "sriov-net")
    b.nad(
        *sriov,
        {
            "cniVersion": "0.3.1",
            "name": "sriov-net",
            "type": "sriov",
            "vlan": 100,
            "spoofchk": "on",
            "trust": "off",
            "ipam": {
                "type": "host-local",
                "subnet": "10.56.217.0/24",
                "rangeStart": "10.56.217.171",
                "rangeEnd": "10.56.217.240",
                "routes": [{"dst": "0.0.0.0/0"}],
                "gateway": "10.56.217.1",
            },
        },
        annotations={"k8s.v1.cni.cncf.io/resourceName": "intel.com/intel_sriov_netdevice"},
    )
    bridge = ("storage", "bridge-net")
    b.nad(
        *bridge,
        {
            "cniVersion": "0.3.1",
            "name": "bridge-net",
            "type": "bridge",
            "bridge": "br-storage",
            "isGateway": True,
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "subnet": "10.10.0.0/16",
                "rangeStart": "10.10.1.20",
                "rangeEnd": "10.10.3.50",
                "routes": [{"dst": "0.0.0.0/0"}],
                "gateway": "10.10.0.1",
            },
        },
    )
    b.nad("default", "legacy-ens224", GKE_INVALID)  # invalid JSON (a '#' comment)
    b.nad("default", "node-local", "")  # empty config: it lives on the nodes

    # -- pods
    counter = {"i": 0}

    def place(pool=None):
        pool = pool or ready_nodes
        counter["i"] += 1
        # a few pods live on the NotReady node too
        if pool is ready_nodes and counter["i"] % 23 == 0:
            return "sim-node-08"
        return pool[(counter["i"] * 5 + rng.randrange(3)) % len(pool)]

    def group(ns, prefix, n, atts, nodes_=None, **kw):
        made = []
        kind = DEMO_CONTROLLERS[prefix]
        owner = (kind, CONTROLLER_NAMES[kind](prefix))
        for i in range(n):
            name = f"{prefix}-{i}"
            made.append(
                b.pod(
                    ns,
                    name,
                    place(nodes_),
                    atts,
                    labels={"app": prefix},
                    networks_json=(i % 5 == 4),
                    ifname_requests=(i % 5 == 2),
                    owner=owner,
                    restarts=(i % 7 == 3) + (i % 14 == 3),
                    **kw,
                )
            )
        return made

    # the user plane runs jumbo frames (Multus reports the CNI result's mtu); the SMF's
    # networks return DNS settings
    upf = group("telco", "cnf-upf", 30, [gke, tanzu, sriov], init=True, mtu=9000)
    group("telco", "cnf-smf", 25, [gke, tanzu], mtu=1500, dns=SMF_DNS)
    # records from whereabouts < 0.8, pods annotated by Multus < 3.7 (networks-status)
    group("telco", "cnf-amf", 27, [tanzu], legacy=True, legacy_status=True)
    nrf = group("telco", "cnf-nrf", 15, [gke])
    group("telco", "probe", 40, [gke])
    web = group("default", "web", 14, [vmw, flannel], labelled)
    group("default", "web-api", 11, [vmw], labelled)
    group("default", "batch", 10, [flannel])
    group("storage", "ceph-osd", 35, [storage, bridge], init=True)
    group("analytics", "spark-exec", 20, [v6, shared_b])
    group("analytics", "kafka", 5, [green, shared_b])
    group("lab", "lab-client", 25, [shared_a])
    group("lab", "echo", 20, [shared_a, flannel])
    group("lab", "blue", 5, [blue])
    group("lab", "tiny", 14, [tiny])

    # exhausted tiny-net: the next pods cannot start
    tiny_pool = b.pools[b.wb_nads[tiny].pool_key]
    try:
        tiny_pool.next_free()
        raise AssertionError("tiny-net should be exhausted")
    except PoolExhausted:
        pass
    b.exhausted_pools.append(tiny_pool.ref)
    for i in range(3):
        b.failed_pod(
            "lab", f"tiny-overflow-{i}", ready_nodes[i], tiny, labels={"app": "tiny-overflow"}
        )

    # -- planted findings (each exactly one finding)
    # 1. orphaned allocation: a pool without ORIPs (enable_overlapping_ranges: false)
    sp = b.pools[b.wb_nads[storage].pool_key]
    ip = sp.next_free()
    b.allocation(sp.name, ip, "storage/ceph-osd-old-7f9c4", "net1")
    b.finding(
        "orphaned_allocation",
        ip=ip,
        pool=sp.ref,
        podref="storage/ceph-osd-old-7f9c4",
        note="podref names no pod (storage-net has enable_overlapping_ranges: false, so no ORIP)",
    )

    # 2. stale allocation: a Running pod holds a second address it does not show
    victim = nrf[3]
    vref = f"{victim['metadata']['namespace']}/{victim['metadata']['name']}"
    gp = b.pools[b.wb_nads[gke].pool_key]
    ip = gp.next_free()
    b.allocation(gp.name, ip, vref, "net2")
    b.reservation(ip, vref, "", gp.namespace, "net2")
    b.finding(
        "stale_allocation",
        ip=ip,
        pool=gp.ref,
        podref=vref,
        note="pod is Running; its network-status lacks this IP (ifname net2 is not attached)",
    )

    # 3. untracked address: a pod shows an address no allocation holds
    pod = b.pod(
        "lab",
        "lab-client-untracked",
        place(),
        [shared_a],
        labels={"app": "lab-client"},
        allocate=False,
    )
    ip = _net_ip(pod, "lab/shared-a")
    b.finding(
        "untracked_address",
        ip=ip,
        pool=b.pool_ref(shared_a),
        podref="lab/lab-client-untracked",
        note="network-status shows an IP of a whereabouts NAD that no IPPool allocation holds",
    )

    # 4. duplicate address: a second live pod shows web-3's address on the same network
    owner = web[3]
    oref = f"default/{owner['metadata']['name']}"
    ip = _net_ip(owner, "default/gke-network-1")
    b.pod(
        "default",
        "web-dup",
        labelled[1],
        [vmw],
        labels={"app": "web"},
        ips=[ip],
        allocate=False,
    )
    b.finding(
        "duplicate_address",
        ip=ip,
        pool=b.pool_ref(vmw),
        podref="default/web-dup",
        podrefs=[oref, "default/web-dup"],
        note=f"same IP on two live pods of default/gke-network-1; {oref} holds the allocation",
    )

    # 5a. orphaned reservation: ORIP whose pod is gone, and no allocation
    ip = gp.next_free()
    orip = b.reservation(ip, "telco/cnf-upf-gone-5d8f7", "", gp.namespace, "net1")
    b.finding(
        "orphaned_reservation",
        ip=ip,
        pool=gp.ref,
        podref="telco/cnf-upf-gone-5d8f7",
        reservation=f"{gp.namespace}/{orip['metadata']['name']}",
        note="ORIP whose pod is gone and which no IPPool allocation matches",
    )
    # 5b. the reverse: an allocation of a live pod without its ORIP
    pod = b.pod(
        "analytics", "spark-exec-noorip", place(), [v6], labels={"app": "spark-exec"}, reserve=False
    )
    ip = _net_ip(pod, "analytics/v6-net")
    b.finding(
        "orphaned_reservation",
        ip=ip,
        pool=b.pool_ref(v6),
        podref="analytics/spark-exec-noorip",
        note="allocation without its OverlappingRangeIPReservation (enable_overlapping_ranges is true)",
    )

    # 6. overlapping ranges with different network_name
    b.finding(
        "overlapping_range",
        nads=["lab/blue-net", "analytics/green-net"],
        note="10.60.0.0/24 (network_name blue) intersects 10.60.0.0/25 (network_name green)",
    )

    # suspect: allocation for a Pending pod that has no network-status yet
    pod = b.pod(
        "lab",
        "lab-client-pending",
        ready_nodes[2],
        [shared_a],
        "Pending",
        labels={"app": "lab-client"},
        owner=("ReplicaSet", CONTROLLER_NAMES["ReplicaSet"]("lab-client")),
    )
    # it waited for a node first (the scheduler's events.k8s.io event, with a series)
    b.new_event(
        pod,
        "FailedScheduling",
        "0/8 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }, 7 Insufficient memory. preemption: 0/8 nodes are "
        "available: 8 No preemption victims found for incoming pod.",
        "Scheduling",
        type_="Warning",
        ago=900,
        series_count=4,
    )
    # a probe preempted by a user-plane pod: the event regards the gone victim and names
    # the preemptor as `related`
    victim = {"metadata": {"name": "probe-evicted-0", "namespace": "telco", "uid": b.uid()}}
    b.new_event(
        victim,
        "Preempted",
        f"Preempted by pod {upf[0]['metadata']['uid']} on node {upf[0]['spec']['nodeName']}",
        "Preempting",
        ago=1200,
        related=upf[0],
    )
    pool = b.pools[b.wb_nads[shared_a].pool_key]
    alloc_ip = next(
        str(ipaddress.ip_address(int(pool.net.network_address) + k))
        for k, v in pool.allocations.items()
        if v["podref"] == "lab/lab-client-pending"
    )
    b.finding(
        "stale_allocation",
        state="suspect",
        ip=alloc_ip,
        pool=pool.ref,
        podref="lab/lab-client-pending",
        note="pod is Pending (ContainerCreating) with no network-status yet",
    )
    b.extra["scenario"] = "demo"
    b.extra["seed"] = seed
    return b


def build_leaky(seed: int = 1, orphans: int = 12, gone_orips: int = 6) -> ClusterBuilder:
    """The demo after a bad week: a node crashed, many allocations and ORIPs leaked."""
    b = build_demo(seed)
    sp = b.pools[b.wb_nads[("storage", "storage-net")].pool_key]
    for i in range(orphans):
        ip = sp.next_free()
        podref = f"storage/ceph-osd-crashed-{i}"
        b.allocation(sp.name, ip, podref, "net1")
        b.finding("orphaned_allocation", ip=ip, pool=sp.ref, podref=podref, note="node crash")
    gp = b.pools[b.wb_nads[("telco", "ipvlan-data")].pool_key]
    for i in range(gone_orips):
        ip = gp.next_free()
        podref = f"telco/probe-gone-{i}"
        orip = b.reservation(ip, podref, "", gp.namespace, "net1")
        b.finding(
            "orphaned_reservation",
            ip=ip,
            pool=gp.ref,
            podref=podref,
            reservation=f"{gp.namespace}/{orip['metadata']['name']}",
            note="ORIP whose pod is gone and which no IPPool allocation matches",
        )
    b.extra["scenario"] = "leaky"
    return b


def build_nodeslice(seed: int = 1) -> ClusterBuilder:
    """whereabouts' node-slice mode (simcluster/nodeslice.py) with nodes joining and leaving.

    fast/fast-net: 10.20.0.0/24 in /27 slices (8), network_name "fastnet", an exclude that
    node-slice mode ignores. fast/tiny-net: 10.21.0.0/27 in /28 slices (2), no network_name
    (its NodeSlicePool is named after the config: "tiny-net"). History: ns-w0..ns-w2 exist
    when the NADs are made (tiny-net has no slice left for ns-w2); ns-w1 leaves (its slices
    freed, its empty pools stay); ns-w3 joins and takes the freed slices, so tiny-net is
    full; ns-w4 joins, gets a fast-net slice and leaves while the controller is down: the
    slice stays assigned to a node that no longer exists, with its pods' allocations.
    """
    b = ClusterBuilder(seed)
    b.namespace("kube-system")
    b.namespace("fast")
    for node in ("ns-w0", "ns-w1", "ns-w2"):
        b.node(node)
    fast = ("fast", "fast-net")
    tiny = ("fast", "tiny-net")
    nodeslice.node_slice_nad(
        b, *fast, "10.20.0.0/24", "/27", network_name="fastnet", exclude=["10.20.0.0/28"]
    )
    nodeslice.node_slice_nad(b, *tiny, "10.21.0.0/27", "/28")
    for i in range(3):
        b.pod("fast", f"both-w0-{i}", "ns-w0", [fast, tiny])
    for i in range(2):
        b.pod("fast", f"fast-w2-{i}", "ns-w2", [fast])
    # ns-w2 has no tiny-net slice: whereabouts fails the ADD ("no allocated node slice")
    b.pod("fast", "tiny-w2", "ns-w2", [tiny], phase="Pending", network_status=False)
    b.finding("node_without_slice", node="ns-w2", network="tiny-net")
    nodeslice.node_leave(b, "ns-w1")
    nodeslice.node_join(b, "ns-w3")
    for i in range(2):
        b.pod("fast", f"both-w3-{i}", "ns-w3", [fast, tiny])
    b.finding("slices_exhausted", network="tiny-net")
    nodeslice.node_join(b, "ns-w4")
    gone = b.pools[b.node_pool_keys[(b.wb_nads[fast].pool_key, "ns-w4")]]
    for i in range(2):
        ip = gone.next_free()
        b.allocation(gone.name, ip, f"fast/fast-w4-{i}", pool_namespace=gone.namespace)
        b.finding("orphaned_allocation", ip=ip, pool=gone.ref, podref=f"fast/fast-w4-{i}")
    nodeslice.node_leave(b, "ns-w4", controller_saw_it=False)
    b.finding("slice_stranded", node="ns-w4", network="fastnet", pool=gone.ref)
    b.extra["scenario"] = "nodeslice"
    b.extra["seed"] = seed
    return b


def _net_ip(pod: dict, nad_ref: str) -> str:
    import json

    for e in json.loads(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]):
        if e.get("name") == nad_ref:
            return e["ips"][0]
    raise KeyError(nad_ref)


# ---------------------------------------------------------------- scale


def load_scale(
    store: Store,
    seed: int = 1,
    nodes: int = 5000,
    pods: int = 150_000,
    nads: int = 2000,
    namespaces: int = 100,
) -> dict:
    """Streams pods and ORIPs straight into the store as compact JSON bytes."""
    b = ClusterBuilder(seed, events=False)
    rng = random.Random(seed)

    def sink(plural, obj):
        store.put_raw(plural, obj)

    ns_names = [f"tenant-{i:03d}" for i in range(namespaces)]
    for ns in ns_names:
        b.namespace(ns, {"tier": rng.choice(["gold", "silver", "bronze"])})
    node_names = [f"worker-{i:05d}" for i in range(nodes)]
    for i, n in enumerate(node_names):
        b.node(
            n,
            ready=(i % 997 != 5),
            labels={"node-role.kubernetes.io/worker": "", "rack": f"r{i // 40:03d}"},
        )
    nad_refs = []
    for i in range(nads):
        ns = ns_names[i % namespaces]
        name = f"net-{i:04d}"
        second = 100 + i // 256
        cidr = f"10.{second}.{i % 256}.0/24"
        kind = i % 4
        overlapping = None if i % 20 else False
        if kind == 0:
            b.whereabouts_nad(
                ns,
                name,
                cidr,
                cni_type="ipvlan",
                conflist=True,
                enable_overlapping_ranges=overlapping,
            )
        elif kind == 1:
            b.whereabouts_nad(
                ns,
                name,
                cidr,
                conflist=True,
                range_start=f"10.{second}.{i % 256}.10",
                gateway=f"10.{second}.{i % 256}.1",
                enable_overlapping_ranges=overlapping,
            )
        else:
            b.whereabouts_nad(
                ns, name, cidr, master="ens224", enable_overlapping_ranges=overlapping
            )
        nad_refs.append((ns, name))
    # the namespaces, nodes and NADs are small: store them now, then stream the pods
    objs = b.objects()
    for plural in ("namespaces", "nodes", "network-attachment-definitions"):
        for obj in objs[plural]:
            store.put_raw(plural, obj)
    b._objs["nodes"].clear()
    b._objs["network-attachment-definitions"].clear()
    b.sink = sink
    by_ns: dict[str, list] = {}
    for ref in nad_refs:
        by_ns.setdefault(ref[0], []).append(ref)
    pod_i = 0
    while pod_i < pods:
        ns = ns_names[pod_i % namespaces]
        choices = by_ns[ns]
        r = rng.random()
        k = 0 if r < 0.1 else (1 if r < 0.9 else 2)
        atts = []
        for _ in range(k):
            ref = choices[rng.randrange(len(choices))]
            if ref not in atts:
                atts.append(ref)
        node = node_names[rng.randrange(nodes)]
        name = f"app-{pod_i:06d}"
        # never half-allocate a pod: drop attachments whose pool is full
        atts = [a for a in atts if b.pools[b.wb_nads[a].pool_key].has_free()]
        app = f"app-{pod_i % 500}"
        controller = SCALE_CONTROLLERS[pod_i % len(SCALE_CONTROLLERS)]
        b.pod(
            ns,
            name,
            node,
            atts,
            labels={"app": app, "shard": str(pod_i % 7)},
            owner=(controller, CONTROLLER_NAMES[controller](app)),
            init=pod_i % 10 == 3,
            restarts=int(pod_i % 25 == 7),
            mtu=9000 if pod_i % 4 == 1 else None,
            ifname_requests=pod_i % 8 == 5,
            legacy_status=pod_i % 50 == 9,
            events=pod_i % 10 == 0,  # events expire after an hour: a tenth of the pods
        )
        pod_i += 1
    # planted: orphaned allocations in pools without ORIPs
    planted = 0
    for i in range(0, nads, 20):
        if planted >= 20:
            break
        ref = nad_refs[i]
        pool = b.pools[b.wb_nads[ref].pool_key]
        try:
            ip = pool.next_free()
        except PoolExhausted:
            continue
        podref = f"{ref[0]}/ghost-{planted:03d}"
        b.allocation(pool.name, ip, podref)
        b.finding(
            "orphaned_allocation", ip=ip, pool=pool.ref, podref=podref, note="planted in scale"
        )
        planted += 1
    for obj in b.pool_objects():
        store.put_raw("ippools", obj)
    gt = {
        "findings": b.findings,
        "exhausted_pools": [],
        "failed_pods": [],
        "counts": store.counts(),
        "allocations": sum(len(p.allocations) for p in b.pools.values()),
        "scenario": "scale",
        "seed": seed,
    }
    gt["exhausted_pools"] = sorted(
        p.ref for p in b.pools.values() if len(p.allocations) >= p.usable()
    )
    return gt
