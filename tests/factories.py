"""Plain functions that create model rows for tests: sensible defaults, override anything.

cluster = make_cluster()
nad = make_nad(cluster, name="macvlan-a", range="10.0.0.0/24")   # also a NADRange
pool = make_pool(cluster, range="10.0.0.0/24", nads=[nad])
pod = make_pod(cluster, name="web-1", node=make_node(cluster, "worker-1"),
               interfaces=[("net1", nad, ["10.0.0.5"], "0a:58:0a:00:00:05")])
make_allocation(pool, "10.0.0.5", pod=pod)
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from netaddr import IPAddress, IPNetwork

from ippam.models import (
    Alert,
    Allocation,
    AuditEntry,
    Cluster,
    Finding,
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

_seq = itertools.count(1)


def _uid(prefix: str) -> str:
    return f"{prefix}-{next(_seq):08d}"


def make_cluster(name: str = "", *, synced: bool = True, **kw: Any) -> Cluster:
    now = timezone.now()
    defaults: dict[str, Any] = {"kubeconfig": "/etc/ippam/kubeconfig"}
    if synced:
        defaults.update(
            sync_state=Cluster.SyncState.OK,
            last_sync_started=now - timedelta(seconds=5),
            last_sync_finished=now,
            last_good_sync=now,
        )
    defaults.update(kw)
    return Cluster.objects.create(name=name or f"c{next(_seq)}", **defaults)


def make_node(cluster: Cluster, name: str = "", *, ready: bool = True, **kw: Any) -> Node:
    return Node.objects.create(
        cluster=cluster, name=name or f"worker-{next(_seq)}", uid=_uid("node"), ready=ready, **kw
    )


def make_nad(
    cluster: Cluster,
    name: str = "",
    *,
    namespace: str = "default",
    range: str | None = "10.0.0.0/24",
    range_start: str | None = None,
    range_end: str | None = None,
    exclude: list[str] | None = None,
    gateway: str | None = None,
    network_name: str = "",
    cni_type: str = "macvlan",
    master: str = "eth1",
    config: dict | None = None,
    problems: list[str] | None = None,
    **kw: Any,
) -> NetworkAttachmentDefinition:
    """A NAD with whereabouts IPAM over `range` (None: no IPAM range), and its NADRange."""
    name = name or f"nad-{next(_seq)}"
    ipam: dict[str, Any] = {"type": "whereabouts"}
    if range:
        ipam["range"] = range
        for key, value in (
            ("range_start", range_start),
            ("range_end", range_end),
            ("gateway", gateway),
        ):
            if value:
                ipam[key] = value
        if exclude:
            ipam["exclude"] = exclude
        if network_name:
            ipam["network_name"] = network_name
    if config is None:
        config = {
            "cniVersion": "0.3.1",
            "type": cni_type,
            "master": master,
            "mode": "bridge",
            "ipam": ipam,
        }
    import json

    nad = NetworkAttachmentDefinition.objects.create(
        cluster=cluster,
        namespace=namespace,
        name=name,
        uid=_uid("nad"),
        config_raw=kw.pop("config_raw", json.dumps(config)),
        config=config,
        cni_version=str(config.get("cniVersion", "")) if config else "",
        cni_type=cni_type,
        ipam_type="whereabouts" if range else "",
        master=master,
        problems=problems or [],
        **kw,
    )
    if range:
        make_nad_range(
            nad,
            range,
            range_start=range_start,
            range_end=range_end,
            exclude=exclude,
            gateway=gateway,
            network_name=network_name,
        )
    return nad


def make_nad_range(
    nad: NetworkAttachmentDefinition,
    range: str,
    *,
    position: int | None = None,
    range_start: str | None = None,
    range_end: str | None = None,
    exclude: list[str] | None = None,
    gateway: str | None = None,
    network_name: str = "",
    pool: IPPool | None = None,
) -> NADRange:
    net = IPNetwork(range)
    pool_name = (f"{network_name}-" if network_name else "") + str(net.cidr).replace(
        ":", "-"
    ).replace("/", "-")
    return NADRange.objects.create(
        nad=nad,
        cluster=nad.cluster,
        position=position if position is not None else nad.ranges.count(),
        range=range,
        range_start=range_start,
        range_end=range_end,
        first_ip=IPAddress(net.first, net.version),
        last_ip=IPAddress(net.last, net.version),
        exclude=exclude or [],
        gateway=gateway,
        network_name=network_name,
        usable=max(net.size - 2, 0),
        pool_name=pool_name,
        pool=pool,
    )


def make_pool(
    cluster: Cluster,
    range: str = "10.0.0.0/24",
    *,
    namespace: str = "kube-system",
    network_name: str = "",
    nads: list[NetworkAttachmentDefinition] | None = None,
    usable: int | None = None,
    allocated: int = 0,
    **kw: Any,
) -> IPPool:
    """An IPPool; NADRange rows of `nads` for this range are linked to it (`NADRange.pool`)."""
    net = IPNetwork(range)
    name = kw.pop("name", None) or (f"{network_name}-" if network_name else "") + str(
        net.cidr
    ).replace(":", "-").replace("/", "-")
    usable = usable if usable is not None else max(net.size - 2, 0)
    pool = IPPool.objects.create(
        cluster=cluster,
        namespace=namespace,
        name=name,
        uid=_uid("pool"),
        range=str(net.cidr),
        first_ip=IPAddress(net.first, net.version),
        last_ip=IPAddress(net.last, net.version),
        network_name=network_name,
        usable=usable,
        allocated=allocated,
        utilization=(allocated / usable) if usable else 0.0,
        **kw,
    )
    for nad in nads or []:
        NADRange.objects.filter(nad=nad, range=str(net.cidr)).update(pool=pool)
        NADRange.objects.filter(nad=nad, range=range).update(pool=pool)
    return pool


def pool_recount(pool: IPPool) -> IPPool:
    """Set allocated/utilization from the Allocation rows, as sync does."""
    pool.allocated = pool.allocations.count()
    pool.utilization = pool.allocated / int(pool.usable) if int(pool.usable) else 0.0
    pool.save(update_fields=["allocated", "utilization"])
    return pool


def make_pod(
    cluster: Cluster,
    name: str = "",
    *,
    namespace: str = "default",
    node: Node | str | None = None,
    phase: str = "Running",
    interfaces: list[tuple[str, NetworkAttachmentDefinition | None, list[str], str]] | None = None,
    default_ip: str | None = None,
    **kw: Any,
) -> Pod:
    """A pod; `interfaces` are (ifname, nad, ips, mac) of its secondary attachments.

    `default_ip` adds an eth0 default-network interface too.
    """
    node_name = node.name if isinstance(node, Node) else (node or "")
    pod = Pod.objects.create(
        cluster=cluster,
        namespace=namespace,
        name=name or f"pod-{next(_seq)}",
        uid=_uid("pod"),
        node_name=node_name,
        phase=phase,
        **kw,
    )
    if default_ip:
        make_interface(pod, "eth0", None, [default_ip], default=True, network_name="cbr0")
    for ifname, nad, ips, mac in interfaces or []:
        make_interface(pod, ifname, nad, ips, mac=mac)
    return pod


def make_interface(
    pod: Pod,
    interface: str,
    nad: NetworkAttachmentDefinition | None,
    ips: list[str],
    *,
    mac: str = "",
    default: bool = False,
    network_name: str = "",
) -> PodInterface:
    iface = PodInterface.objects.create(
        pod=pod,
        cluster=pod.cluster,
        network_name=network_name or (f"{nad.namespace}/{nad.name}" if nad else ""),
        nad_namespace=nad.namespace if nad else "",
        nad_name=nad.name if nad else "",
        nad=nad,
        interface=interface,
        ips=ips,
        mac=mac,
        default=default,
    )
    for ip in ips:
        InterfaceAddress.objects.create(
            interface=iface, cluster=pod.cluster, ip=IPAddress(ip.split("/")[0])
        )
    return iface


def make_allocation(
    pool: IPPool,
    ip: str,
    *,
    pod: Pod | None = None,
    podref: str = "",
    ifname: str = "net1",
    container_id: str = "",
) -> Allocation:
    address = IPAddress(ip)
    net = IPNetwork(pool.range)
    podref = podref or (pod.podref if pod else "default/gone-pod")
    ns, _, name = podref.partition("/")
    return Allocation.objects.create(
        pool=pool,
        cluster=pool.cluster,
        key=str(int(address) - net.first),
        ip=address,
        podref=podref,
        pod_namespace=ns,
        pod_name=name,
        ifname=ifname,
        container_id=container_id or f"{next(_seq):064x}",
    )


def make_finding(
    cluster: Cluster,
    *,
    kind: str = Finding.Kind.ORPHANED_ALLOCATION,
    state: str = Finding.State.LEAKED,
    ip: str | None = None,
    pool: IPPool | None = None,
    allocation: Allocation | None = None,
    podref: str = "",
    node_name: str = "",
    reason: str = "",
    **kw: Any,
) -> Finding:
    now = timezone.now()
    if allocation is not None:
        pool = pool or allocation.pool
        ip = ip or str(allocation.ip)
        podref = podref or allocation.podref
    key = allocation.key if allocation is not None else kw.pop("allocation_key", "")
    identity = (
        kw.pop("identity", None) or f"{kind}:{pool.name if pool else ''}:{key or ip or next(_seq)}"
    )
    return Finding.objects.create(
        cluster=cluster,
        kind=kind,
        identity=identity,
        state=state,
        ip=IPAddress(ip) if ip else None,
        pool=pool,
        allocation_key=key,
        podref=podref,
        node_name=node_name,
        reason=reason or f"{kind.replace('_', ' ')}: {podref or ip}",
        first_seen=kw.pop("first_seen", now - timedelta(minutes=10)),
        last_seen=kw.pop("last_seen", now),
        **kw,
    )


def make_alert(
    cluster: Cluster,
    *,
    finding: Finding | None = None,
    kind: str | None = None,
    state: str = Alert.State.OPEN,
    **kw: Any,
) -> Alert:
    now = timezone.now()
    extra: dict[str, Any] = {}
    if state == Alert.State.ACKNOWLEDGED:
        extra["acknowledged_at"] = now
    if state == Alert.State.RESOLVED:
        extra["resolved_at"] = now
    extra.update(kw)
    return Alert.objects.create(
        cluster=cluster,
        identity=extra.pop("identity", finding.identity if finding else f"alert-{next(_seq)}"),
        kind=kind or (finding.kind if finding else Alert.Kind.POOL_THRESHOLD),
        state=state,
        finding=finding,
        pool=extra.pop("pool", finding.pool if finding else None),
        message=extra.pop("message", finding.reason if finding else "pool above threshold"),
        opened_at=extra.pop("opened_at", now - timedelta(minutes=5)),
        **extra,
    )


def make_event(
    cluster: Cluster,
    *,
    pod: Pod | None = None,
    pod_namespace: str = "default",
    pod_name: str = "",
    reason: str = PodEvent.Reason.FAILED_SANDBOX,
    message: str = "",
    nad: NetworkAttachmentDefinition | None = None,
    pool: IPPool | None = None,
    ip: str | None = None,
    last_seen: datetime | None = None,
    **kw: Any,
) -> PodEvent:
    if pod is not None:
        pod_namespace, pod_name = pod.namespace, pod.name
    pod_name = pod_name or f"pod-{next(_seq)}"
    if not message and reason == PodEvent.Reason.FAILED_SANDBOX:
        message = (
            'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "abc": '
            'plugin type="multus" name="multus-cni-network" failed (add): [default/'
            + pod_name
            + ":macvlan-a]: "
            'error adding container to network "macvlan-a": error at storage engine: Could not allocate IP in range: '
            "ip: 10.0.0.1 / - 10.0.0.254 / range: net.IPNet{IP:net.IP{0xa, 0x0, 0x0, 0x0}}"
        )
    now = timezone.now()
    return PodEvent.objects.create(
        cluster=cluster,
        uid=_uid("ev"),
        namespace=pod_namespace,
        name=f"{pod_name}.{next(_seq):x}",
        pod_namespace=pod_namespace,
        pod_name=pod_name,
        reason=reason,
        type="Warning" if reason == PodEvent.Reason.FAILED_SANDBOX else "Normal",
        message=message,
        first_seen=now - timedelta(minutes=3),
        last_seen=last_seen or now,
        nad=nad,
        pool=pool,
        ip=IPAddress(ip) if ip else None,
        **kw,
    )


def make_orip(
    cluster: Cluster, ip: str, *, podref: str, network_name: str = "", **kw: Any
) -> OverlappingRangeIPReservation:
    ns, _, name = podref.partition("/")
    return OverlappingRangeIPReservation.objects.create(
        cluster=cluster,
        namespace="kube-system",
        name=(f"{network_name}-" if network_name else "") + ip.replace(":", "-"),
        uid=_uid("orip"),
        ip=IPAddress(ip),
        network_name=network_name,
        podref=podref,
        pod_namespace=ns,
        pod_name=name,
        **kw,
    )


def make_audit(
    *,
    cluster: Cluster | None,
    target: str,
    action: str = AuditEntry.Action.ALLOCATION_RECLAIM,
    **kw: Any,
) -> AuditEntry:
    return AuditEntry.objects.create(
        cluster=cluster,
        actor_name=kw.pop("actor_name", "admin1"),
        action=action,
        target=target,
        outcome=kw.pop("outcome", "reclaimed"),
        **kw,
    )


def make_demo(cluster: Cluster | None = None) -> dict[str, Any]:
    """A small, complete scene: two nodes (one NotReady), two NADs, pools, pods, leaks, alerts, failures."""
    cluster = cluster or make_cluster("demo", simulated=True)
    w1 = make_node(cluster, "worker-1")
    w2 = make_node(cluster, "worker-2", ready=False)
    nad_a = make_nad(
        cluster,
        "macvlan-a",
        range="10.10.0.0/24",
        range_start="10.10.0.10",
        exclude=["10.10.0.100/30"],
        gateway="10.10.0.1",
    )
    nad_b = make_nad(
        cluster,
        "ipvlan-b",
        namespace="storage",
        range="10.20.0.0/28",
        cni_type="ipvlan",
        master="bond0",
    )
    pool_a = make_pool(cluster, "10.10.0.0/24", nads=[nad_a], usable=241)
    pool_b = make_pool(cluster, "10.20.0.0/28", nads=[nad_b], usable=13)
    pods = []
    for i in range(6):
        ip = f"10.10.0.{10 + i}"
        pod = make_pod(
            cluster,
            f"web-{i}",
            node=w1 if i % 2 == 0 else w2,
            default_ip=f"172.16.0.{i + 2}",
            interfaces=[("net1", nad_a, [ip], f"0a:58:0a:0a:00:{10 + i:02x}")],
        )
        make_allocation(pool_a, ip, pod=pod)
        pods.append(pod)
    terminating = make_pod(
        cluster,
        "db-0",
        namespace="storage",
        node=w1,
        deletion_timestamp=timezone.now(),
        interfaces=[("net1", nad_b, ["10.20.0.2"], "0a:58:0a:14:00:02")],
    )
    make_allocation(pool_b, "10.20.0.2", pod=terminating)
    for i in range(3, 14):
        make_allocation(pool_b, f"10.20.0.{i}", podref=f"storage/db-{i}")
    leaked = make_allocation(pool_a, "10.10.0.50", podref="default/web-gone")
    suspect = make_allocation(pool_a, "10.10.0.51", podref="default/web-0")
    f1 = make_finding(
        cluster,
        allocation=leaked,
        reason="orphaned allocation: pod default/web-gone no longer exists",
    )
    f2 = make_finding(
        cluster,
        kind=Finding.Kind.STALE_ALLOCATION,
        state=Finding.State.SUSPECT,
        allocation=suspect,
        node_name="worker-1",
        reason="stale allocation: default/web-0 is Pending and its network-status lacks 10.10.0.51",
    )
    make_alert(cluster, finding=f1)
    make_alert(
        cluster,
        kind=Alert.Kind.POOL_EXHAUSTED,
        pool=pool_b,
        identity="pool:10.20.0.0-28",
        message="10.20.0.0/28 is full",
    )
    pool_recount(pool_a)
    pool_recount(pool_b)
    make_event(cluster, pod_name="web-new", nad=nad_b, pool=pool_b)
    return {
        "cluster": cluster,
        "nodes": [w1, w2],
        "nads": [nad_a, nad_b],
        "pools": [pool_a, pool_b],
        "pods": pods,
        "terminating": terminating,
        "findings": [f1, f2],
    }
