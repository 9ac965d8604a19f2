"""Build internally consistent cluster objects: nodes, NADs, pods, IPPools, ORIPs, events.

`ClusterBuilder.pod()` does what Multus + Whereabouts would do: takes the lowest free
address of the NAD's range, writes the IPPool allocation (podref, ifname, id), the
OverlappingRangeIPReservation, the pod's `networks` and `network-status` annotations and
Multus `AddedInterface` events. The low-level `allocation()` and `reservation()` plant
faults; `finding()` records what a correct leak detector must report (the ground truth).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import managed

WB_API = "whereabouts.cni.cncf.io/v1alpha1"
NAD_API = "k8s.cni.cncf.io/v1"
NETWORKS = "k8s.v1.cni.cncf.io/networks"
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"
LEGACY_NETWORK_STATUS = "k8s.v1.cni.cncf.io/networks-status"  # Multus before v3.7
INIT_IMAGE = "registry.k8s.io/busybox:1.36"
# the service-account token every pod gets mounted (the ServiceAccount admission plugin)
SA_MOUNT = {"readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
# who writes what of a pod (their managedFields entries)
CONTROLLER_MANAGER = "kube-controller-manager"
MULTUS_MANAGER = "multus-daemon"


def sa_projection() -> dict:
    return {
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {
                "configMap": {
                    "name": "kube-root-ca.crt",
                    "items": [{"key": "ca.crt", "path": "ca.crt"}],
                }
            },
            {
                "downwardAPI": {
                    "items": [
                        {
                            "path": "namespace",
                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                        }
                    ]
                }
            },
        ],
    }


def default_tolerations() -> list[dict]:
    """What the DefaultTolerationSeconds admission plugin adds to every pod."""
    return [
        {
            "key": f"node.kubernetes.io/{taint}",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        }
        for taint in ("not-ready", "unreachable")
    ]


def pool_name(cidr: str, network_name: str | None = None) -> str:
    """Whereabouts' IPPool name: `[network_name-]` + CIDR with ':' and '/' as '-'."""
    net = ipaddress.ip_network(cidr, strict=False)
    base = str(net).replace(":", "-").replace("/", "-")
    return f"{network_name}-{base}" if network_name else base


def orip_name(ip: str, network_name: str | None = None) -> str:
    """Whereabouts' OverlappingRangeIPReservation name for an IP."""
    s = ip if ":" not in ip and "/" not in ip else str(ipaddress.ip_address(ip))
    if s.endswith(":"):
        s += "0"
    s = s.replace(":", "-")
    return f"{network_name}-{s}" if network_name else s


def ip_offset(cidr: str, ip: str) -> int:
    net = ipaddress.ip_network(cidr, strict=False)
    return int(ipaddress.ip_address(ip)) - int(net.network_address)


def _ipstr(v: int, version: int) -> str:
    if version == 4:
        return f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}"
    return str(ipaddress.IPv6Address(v))


class PoolExhausted(Exception):
    pass


@dataclass
class WbNad:
    namespace: str
    name: str
    net: ipaddress.IPv4Network | ipaddress.IPv6Network
    first: int
    last: int
    exclude: list
    network_name: str
    pool_key: tuple[str, str]
    overlapping: bool
    gateway: str | None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class Pool:
    namespace: str
    name: str
    net: ipaddress.IPv4Network | ipaddress.IPv6Network
    first: int
    last: int
    exclude: list
    allocations: dict[int, dict] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)  # absolute ints seen on pods or allocated
    cursor: int = 0
    created: str = ""
    uid: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def usable(self) -> int:
        # whereabouts reads allocation offsets back as int64 (strconv.ParseInt): offsets
        # from 2**63 on cannot be kept, so they are not usable (see ippam.ranges).
        last = min(self.last, int(self.net.network_address) + 2**63 - 1)
        n = last - self.first + 1
        for ex in self.exclude:
            lo = max(self.first, int(ex.network_address))
            hi = min(last, int(ex.broadcast_address))
            if hi >= lo:
                n -= hi - lo + 1
        return max(n, 0)

    def excluded(self, v: int) -> bool:
        return any(int(ex.network_address) <= v <= int(ex.broadcast_address) for ex in self.exclude)

    def has_free(self) -> bool:
        v = max(self.first, self.cursor)
        while v <= self.last:
            if v not in self.used and not (self.exclude and self.excluded(v)):
                return True
            v += 1
        return False

    def next_free(self) -> str:
        return _ipstr(self.next_free_int(), self.net.version)

    def next_free_int(self) -> int:
        v = max(self.first, self.cursor)
        while v <= self.last:
            if v not in self.used and not (self.exclude and self.excluded(v)):
                self.cursor = v + 1
                return v
            v += 1
        raise PoolExhausted(f"pool {self.ref} is exhausted")

    def first_last_ips(self) -> tuple[str, str]:
        return str(ipaddress.ip_address(self.first)), str(ipaddress.ip_address(self.last))


def whereabouts_ipam(config: dict) -> dict | None:
    """The whereabouts ipam block of a CNI config or conflist (first plugin that has one)."""
    plugins: list = config["plugins"] if isinstance(config.get("plugins"), list) else [config]
    for p in plugins:
        ipam = p.get("ipam") if isinstance(p, dict) else None
        if isinstance(ipam, dict) and ipam.get("type") == "whereabouts":
            return ipam
    return None


def _ipam_of(config: dict) -> dict | None:
    plugins: list = config["plugins"] if isinstance(config.get("plugins"), list) else [config]
    for p in plugins:
        if isinstance(p, dict) and isinstance(p.get("ipam"), dict):
            return p["ipam"]
    return None


class ClusterBuilder:
    def __init__(self, seed: int = 1, now: dt.datetime | None = None, events: bool = True):
        self.rng = random.Random(seed)
        self.now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        self._naive_now = self.now.replace(tzinfo=None)
        self.with_events = events
        # stream pods/events/ORIPs out through sink(plural, obj) instead of keeping them
        self.sink: Callable[[str, dict], None] | None = None
        self._objs: dict[str, dict] = {
            p: {}
            for p in (
                "namespaces",
                "nodes",
                "network-attachment-definitions",
                "pods",
                "events",
                "nodeslicepools",
            )
        }
        self.wb_nads: dict[tuple[str, str], WbNad] = {}
        self.other_nads: dict[tuple[str, str], dict] = {}
        self.pools: dict[tuple[str, str], Pool] = {}
        # node-slice mode (simcluster/nodeslice.py): NADs whose pods allocate from their
        # node's slice pool, keyed (NAD's whole-range pool key, node) -> slice pool key
        self.node_slice_nads: set[tuple[str, str]] = set()
        self.node_pool_keys: dict[tuple[tuple[str, str], str], tuple[str, str]] = {}
        self.slice_nets: dict[str, Any] = {}  # NodeSlicePool name -> nodeslice.SliceNet
        self.reservations: dict[tuple[str, str], dict] = {}
        self._nodes: dict[str, dict] = {}
        self.findings: list[dict] = []
        self.exhausted_pools: list[str] = []
        self.failed_pods: list[str] = []
        self.extra: dict = {}
        self._managed_templates: dict[tuple, str] = {}
        self._stamp_fields: dict[tuple, bytes] = {}
        self._pods_made = 0
        self._owner_uids: dict[tuple[str, str, str], str] = {}
        # every n-th scheduled pod still has its Scheduled event (events expire after 1 h;
        # these are the recent ones); 0: none
        self._scheduled_every = 4

    # ---------------------------------------------------------------- helpers

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ts(self, ago: float) -> str:
        return (self._naive_now - dt.timedelta(seconds=int(ago))).isoformat() + "Z"

    def mac(self) -> str:
        h = f"{self.rng.getrandbits(32):08x}"
        return f"0a:58:{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}"

    def hexid(self, n: int = 64) -> str:
        return f"{self.rng.getrandbits(n * 4):0{n}x}"

    def _meta(
        self, name: str, namespace: str | None, ago: float, labels=None, annotations=None
    ) -> dict:
        md: dict = {"name": name}
        if namespace is not None:
            md["namespace"] = namespace
        md["uid"] = self.uid()
        md["creationTimestamp"] = self.ts(ago)
        if labels:
            md["labels"] = dict(labels)
        if annotations:
            md["annotations"] = dict(annotations)
        return md

    def _stamp(self, obj: dict, manager: str, api_version: str = "v1") -> None:
        """One Update entry owning every field, at the creation time: what an object written
        once by one client carries (a NAD from kubectl, a whereabouts reservation). Entries
        of a shape met before are copied from it (`scale` makes 150,000 reservations)."""
        md = obj["metadata"]
        key = (
            manager,
            api_version,
            tuple(md),
            tuple(md.get("labels") or ()),
            tuple(md.get("annotations") or ()),
            _keys(obj),
        )
        fields = self._stamp_fields.get(key)
        if fields is None:
            fields = orjson.dumps(managed.fields_v1(obj))
            self._stamp_fields[key] = fields
        md["managedFields"] = [
            managed.entry(
                manager, "Update", api_version, md["creationTimestamp"], orjson.loads(fields)
            )
        ]

    # ---------------------------------------------------------------- cluster objects

    def namespace(
        self, name: str, labels: dict | None = None, created_ago: float = 86400 * 40
    ) -> dict:
        lab = {"kubernetes.io/metadata.name": name, **(labels or {})}
        obj = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": self._meta(name, None, created_ago, lab),
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self._stamp(obj, "kubectl-create")
        self._objs["namespaces"][("", name)] = obj
        return obj

    def node(
        self,
        name: str,
        ready: bool = True,
        labels: dict | None = None,
        created_ago: float = 86400 * 30,
        kubelet_version: str = "v1.31.4",
        dual_stack: bool = False,
    ) -> dict:
        """dual_stack: the node's pods get an IPv6 address too (podIPs, network-status)."""
        i = len(self._nodes) + 1
        internal_ip = f"10.128.{i // 250}.{i % 250 + 2}"
        pod_cidr = f"10.{64 + i // 256}.{i % 256}.0/24"
        pod_cidr6 = f"fd00:10:244:{i:x}::/64"
        self._nodes[name] = {
            "index": i,
            "ip": internal_ip,
            "pod_net": ipaddress.ip_network(pod_cidr),
            "pod_net6": ipaddress.ip_network(pod_cidr6) if dual_stack else None,
            "next": 2,
        }
        lab = {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": "n2-standard-8",
            **(labels or {}),
        }
        hb = self.ts(30 if ready else 3600 * 3)
        cond = [
            {
                "type": t,
                "status": "False" if ready else "Unknown",
                "reason": f"KubeletHas{r}" if ready else "NodeStatusUnknown",
                "message": m if ready else "Kubelet stopped posting node status.",
                "lastHeartbeatTime": hb,
                "lastTransitionTime": self.ts(created_ago - 60),
            }
            for t, r, m in (
                ("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
                ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"),
            )
        ]
        cond.append(
            {
                "type": "Ready",
                "status": "True" if ready else "Unknown",
                "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                "message": "kubelet is posting ready status"
                if ready
                else "Kubelet stopped posting node status.",
                "lastHeartbeatTime": hb,
                "lastTransitionTime": self.ts(created_ago - 60 if ready else 3600 * 3),
            }
        )
        cidrs = [pod_cidr, pod_cidr6] if dual_stack else [pod_cidr]
        spec: dict = {"podCIDR": pod_cidr, "podCIDRs": cidrs, "providerID": f"sim://{name}"}
        if not ready:
            spec["taints"] = [
                {
                    "key": "node.kubernetes.io/unreachable",
                    "effect": "NoSchedule",
                    "timeAdded": self.ts(3600 * 3),
                },
                {
                    "key": "node.kubernetes.io/unreachable",
                    "effect": "NoExecute",
                    "timeAdded": self.ts(3600 * 3),
                },
            ]
        res = {
            "cpu": "8",
            "memory": "32863804Ki",
            "pods": "110",
            "ephemeral-storage": "101430960Ki",
        }
        obj: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": self._meta(name, None, created_ago, lab),
            "spec": spec,
            "status": {
                "capacity": res,
                "allocatable": res,
                "conditions": cond,
                "addresses": [
                    {"type": "InternalIP", "address": internal_ip},
                    {"type": "Hostname", "address": name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": self.uid(),
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kernelVersion": "6.1.0-28-cloud-amd64",
                    "kubeProxyVersion": kubelet_version,
                    "kubeletVersion": kubelet_version,
                    "machineID": self.hexid(32),
                    "operatingSystem": "linux",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "systemUUID": self.uid(),
                },
            },
        }
        obj["metadata"]["managedFields"] = [
            managed.entry(
                "kubelet",
                "Update",
                "v1",
                obj["metadata"]["creationTimestamp"],
                managed.fields_v1({"metadata": {"labels": lab}}),
            ),
            managed.entry(
                "kube-controller-manager",
                "Update",
                "v1",
                obj["metadata"]["creationTimestamp"],
                managed.fields_v1({"spec": spec}),
            ),
            managed.entry(
                "kubelet",
                "Update",
                "v1",
                hb,
                managed.fields_v1({"status": obj["status"]}),
                "status",
            ),
        ]
        self._objs["nodes"][("", name)] = obj
        return obj

    # ---------------------------------------------------------------- NADs

    def nad(
        self,
        namespace: str,
        name: str,
        config: dict | str,
        annotations: dict | None = None,
        created_ago: float = 86400 * 20,
        pool_namespace: str = "kube-system",
    ) -> dict:
        if isinstance(config, dict):
            text = json.dumps(config, indent=2)
            ipam = whereabouts_ipam(config)
            if ipam is not None:
                self._register_wb(namespace, name, ipam, pool_namespace, created_ago)
            else:
                other = _ipam_of(config)
                subnet = None
                if other and other.get("type") == "host-local":
                    subnet = other.get("subnet") or (
                        (other.get("ranges") or [[{}]])[0][0].get("subnet")
                    )
                elif config.get("type") == "flannel":
                    subnet = "10.1.0.0/16"
                net = ipaddress.ip_network(subnet, strict=False) if subnet else None
                start = 10
                if net is not None and other and other.get("rangeStart"):
                    start = int(ipaddress.ip_address(other["rangeStart"])) - int(
                        net.network_address
                    )
                self.other_nads[(namespace, name)] = {
                    "net": net,
                    "next": start,
                    "sriov": "sriov" in json.dumps(config),
                }
        else:
            text = config
        obj: dict[str, Any] = {
            "apiVersion": NAD_API,
            "kind": "NetworkAttachmentDefinition",
            "metadata": self._meta(name, namespace, created_ago, annotations=annotations),
            "spec": {"config": text},
        }
        if not annotations:
            obj["metadata"].pop("annotations", None)
        self._stamp(obj, "kubectl-client-side-apply", NAD_API)
        self._objs["network-attachment-definitions"][(namespace, name)] = obj
        return obj

    def _register_wb(self, namespace, name, ipam, pool_namespace, created_ago) -> WbNad:
        rng = ipam.get("range")
        if rng is None and ipam.get("ipRanges"):
            rng = ipam["ipRanges"][0]["range"]
        net = ipaddress.ip_network(rng, strict=False)
        first = int(net.network_address) + 1
        last = int(net.broadcast_address) - 1
        if ipam.get("range_start"):
            v = int(ipaddress.ip_address(ipam["range_start"]))
            if int(net.network_address) <= v <= int(net.broadcast_address):
                first = max(first, v)
        if ipam.get("range_end"):
            v = int(ipaddress.ip_address(ipam["range_end"]))
            if int(net.network_address) <= v <= int(net.broadcast_address):
                last = min(last, v)
        exclude = [ipaddress.ip_network(x, strict=False) for x in ipam.get("exclude") or []]
        nn = ipam.get("network_name") or ""
        key = (pool_namespace, pool_name(str(net), nn))
        wb = WbNad(
            namespace,
            name,
            net,
            first,
            last,
            exclude,
            nn,
            key,
            ipam.get("enable_overlapping_ranges", True) is not False,
            ipam.get("gateway"),
        )
        self.wb_nads[(namespace, name)] = wb
        if key not in self.pools:
            self.pools[key] = Pool(
                key[0],
                key[1],
                net,
                first,
                last,
                exclude,
                created=self.ts(created_ago),
                uid=self.uid(),
            )
        return wb

    def whereabouts_nad(
        self,
        namespace: str,
        name: str,
        range: str,
        *,
        master: str = "eth1",
        cni_type: str = "macvlan",
        range_start: str | None = None,
        range_end: str | None = None,
        exclude: list[str] | None = None,
        gateway: str | None = None,
        network_name: str | None = None,
        pool_namespace: str = "kube-system",
        enable_overlapping_ranges: bool | None = None,
        conflist: bool = False,
        mode: str | None = None,
        annotations: dict | None = None,
        cni_version: str = "0.3.1",
        created_ago: float = 86400 * 20,
    ) -> dict:
        ipam: dict = {"type": "whereabouts", "range": range}
        if range_start:
            ipam["range_start"] = range_start
        if range_end:
            ipam["range_end"] = range_end
        if exclude:
            ipam["exclude"] = list(exclude)
        if gateway:
            ipam["gateway"] = gateway
        if network_name:
            ipam["network_name"] = network_name
        if enable_overlapping_ranges is not None:
            ipam["enable_overlapping_ranges"] = enable_overlapping_ranges
        plugin: dict = {"type": cni_type, "master": master}
        if mode or cni_type in ("macvlan", "ipvlan"):
            plugin["mode"] = mode or ("bridge" if cni_type == "macvlan" else "l2")
        if conflist:
            if cni_type == "macvlan":
                plugin["capabilities"] = {"ips": True}
            plugin["ipam"] = ipam
            config: dict[str, Any] = {"cniVersion": cni_version, "name": name, "plugins": [plugin]}
        else:
            config = {"cniVersion": cni_version, "name": name, **plugin, "ipam": ipam}
        return self.nad(namespace, name, config, annotations, created_ago, pool_namespace)

    # ---------------------------------------------------------------- IPAM records

    def _pool(self, pool_name_: str, pool_namespace: str = "kube-system") -> Pool:
        p = self.pools.get((pool_namespace, pool_name_))
        if p is None:
            raise KeyError(f"no pool {pool_namespace}/{pool_name_}; declare its NAD first")
        return p

    def allocation(
        self,
        pool_name: str,
        ip: str,
        podref: str,
        ifname: str | None = "net1",
        pool_namespace: str = "kube-system",
        container_id: str | None = None,
    ) -> str:
        """Write an allocation into a pool (no reservation, no pod). Returns the key."""
        p = self._pool(pool_name, pool_namespace)
        v = int(ipaddress.ip_address(ip))
        off = v - int(p.net.network_address)
        alloc = {"id": container_id or self.hexid(), "podref": podref}
        if ifname:
            alloc["ifname"] = ifname
        p.allocations[off] = alloc
        p.used.add(v)
        return str(off)

    def reservation(
        self,
        ip: str,
        podref: str,
        network_name: str = "",
        namespace: str = "kube-system",
        ifname: str | None = "net1",
        created_ago: float = 3600 * 5,
        _mark: bool = True,
    ) -> dict:
        name = orip_name(ip, network_name or None)
        spec: dict = {"podref": podref}
        if ifname:
            spec["ifname"] = ifname
        obj = {
            "apiVersion": WB_API,
            "kind": "OverlappingRangeIPReservation",
            "metadata": self._meta(name, namespace, created_ago),
            "spec": spec,
        }
        self._stamp(obj, "whereabouts", WB_API)
        if self.sink is not None:
            self.sink("overlappingrangeipreservations", obj)
        else:
            self.reservations[(namespace, name)] = obj
        if not _mark:
            return obj
        v = int(ipaddress.ip_address(ip))
        for p in self.pools.values():
            if int(p.net.network_address) <= v <= int(p.net.broadcast_address):
                p.used.add(v)
        return obj

    def mark_used(self, ip: str) -> None:
        v = int(ipaddress.ip_address(ip))
        for p in self.pools.values():
            if int(p.net.network_address) <= v <= int(p.net.broadcast_address):
                p.used.add(v)

    # ---------------------------------------------------------------- pods

    def _pod_ip(self, node: str | None) -> str | None:
        n = self._nodes.get(node or "")
        if n is None:
            return None
        ip = n["pod_net"].network_address + n["next"]
        n["next"] += 1
        return str(ip)

    def pod(
        self,
        namespace: str,
        name: str,
        node: str | None,
        attachments=(),
        phase: str = "Running",
        *,
        ips: list | None = None,
        network_status: bool | None = None,
        allocate: bool | list = True,
        reserve: bool | list = True,
        labels: dict | None = None,
        image: str = "registry.k8s.io/e2e-test-images/agnhost:2.53",
        created_ago: float | None = None,
        waiting_reason: str | None = None,
        networks_json: bool = False,
        events: bool | None = None,
        legacy: bool = False,
        legacy_status: bool = False,
        owner: tuple[str, str] | None = None,
        init: bool = False,
        restarts: int = 0,
        mtu: int | None = None,
        dns: dict | None = None,
        ifname_requests: bool = False,
    ) -> dict:
        """A pod attached to NADs; whereabouts attachments get the lowest free IP.

        ips: explicit IPs per attachment (None entries mean "pick the next free one").
        allocate/reserve: whether the IPPool allocation / ORIP are written (bool or per attachment).
        network_status: write the network-status annotation (default: phase is Running).
        legacy: write records like whereabouts < 0.8 (no ifname; ORIP with containerid).
        legacy_status: write the old `networks-status` annotation instead of `network-status`.
        owner: (kind, name) of the controller (ReplicaSet, StatefulSet, DaemonSet, Job) that
        made the pod: its ownerReferences and the controller manager's managedFields entry.
        init: an init container (done when the pod runs); restarts: the container restarted
        that often, its lastState the last termination (OOMKilled).
        mtu, dns: what the CNI result reported, in the secondary network-status entries.
        ifname_requests: the `networks` annotation asks for each interface (`ns/name@net1`).
        """
        attachments = [tuple(a) for a in attachments]
        ago = created_ago if created_ago is not None else self.rng.randint(3600 * 3, 86400 * 9)
        running = phase == "Running"
        if network_status is None:
            network_status = running
        cid = self.hexid()
        vol = f"kube-api-access-{cid[:5]}"  # the suffix is random; cid is already drawn
        podref = f"{namespace}/{name}"
        ifaces = []
        for i, (nns, nname) in enumerate(attachments):
            ifname = f"net{i + 1}"
            want = ips[i] if ips and i < len(ips) else None
            alloc = allocate[i] if isinstance(allocate, list) else allocate
            resv = reserve[i] if isinstance(reserve, list) else reserve
            wb = self.wb_nads.get((nns, nname))
            ip = None
            pool_key = wb.pool_key if wb is not None else None
            if wb is not None and (nns, nname) in self.node_slice_nads:
                # node-slice mode: the pool of the node's slice; none, and the ADD fails
                pool_key = self.node_pool_keys.get((wb.pool_key, node or ""))
            if wb is not None and pool_key is not None:
                pool = self.pools[pool_key]
                if want:
                    ip = want
                    v = int(ipaddress.ip_address(ip))
                else:
                    v = pool.next_free_int()
                    ip = _ipstr(v, pool.net.version)
                pool.used.add(v)
                if alloc:
                    a = {"id": cid, "podref": podref}
                    if not legacy:
                        a["ifname"] = ifname
                    pool.allocations[v - int(pool.net.network_address)] = a
                if alloc and resv and wb.overlapping:
                    orip = self.reservation(
                        ip,
                        podref,
                        wb.network_name,
                        wb.pool_key[0],
                        None if legacy else ifname,
                        ago - 5,
                        _mark=False,
                    )
                    if legacy:
                        orip["spec"]["containerid"] = cid
                        self._stamp(orip, "whereabouts", WB_API)
            else:
                other = self.other_nads.get((nns, nname))
                if want:
                    ip = want
                elif other and other["net"] is not None:
                    ip = str(other["net"].network_address + other["next"])
                    other["next"] += 1
            prefix = None
            if wb is not None:
                prefix = wb.net.prefixlen
            elif (nns, nname) in self.other_nads and self.other_nads[(nns, nname)][
                "net"
            ] is not None:
                prefix = self.other_nads[(nns, nname)]["net"].prefixlen
            ifaces.append((nns, nname, ifname, ip, prefix))
        node_info = self._nodes.get(node or "")
        pod_ip = self._pod_ip(node) if (running or network_status) else None
        pod_ip6 = self._pod_ip6(node) if pod_ip else None
        annotations: dict = {}
        if attachments:
            if networks_json:
                annotations[NETWORKS] = json.dumps(
                    [
                        {"name": n, "namespace": ns, "interface": f"net{i + 1}"}
                        for i, (ns, n) in enumerate(attachments)
                    ]
                )
            elif ifname_requests:
                annotations[NETWORKS] = ",".join(
                    f"{ns}/{n}@net{i + 1}" for i, (ns, n) in enumerate(attachments)
                )
            else:
                annotations[NETWORKS] = ",".join(f"{ns}/{n}" for ns, n in attachments)
        if network_status and pod_ip:
            net_status: list[dict[str, Any]] = [
                {
                    "name": "k8s-pod-network",
                    "interface": "eth0",
                    "ips": [pod_ip, pod_ip6] if pod_ip6 else [pod_ip],
                    "mac": self.mac(),
                    "default": True,
                    "dns": {},
                    "gateway": [str(node_info["pod_net"].network_address + 1)] if node_info else [],
                }
            ]
            for nns, nname, ifname, ip, _prefix in ifaces:
                entry: dict[str, Any] = {
                    "name": f"{nns}/{nname}",
                    "interface": ifname,
                    "ips": [ip] if ip else [],
                    "mac": self.mac(),
                    "dns": dict(dns) if dns else {},
                }
                if mtu:
                    entry["mtu"] = mtu
                other = self.other_nads.get((nns, nname))
                if other and other.get("sriov"):
                    entry["device-info"] = {
                        "type": "pci",
                        "version": "1.1.0",
                        "pci": {
                            "pci-address": f"0000:18:{self.rng.randrange(2, 16):02x}.{self.rng.randrange(8)}"
                        },
                    }
                net_status.append(entry)
            annotations[LEGACY_NETWORK_STATUS if legacy_status else NETWORK_STATUS] = orjson.dumps(
                net_status, option=orjson.OPT_INDENT_2
            ).decode()
        started = self.ts(ago - 8)
        t_created = self.ts(ago)
        t_ready = started
        cstate: dict[str, dict[str, Any]]
        if running:
            cstate = {"running": {"startedAt": started}}
            ready = True
        elif phase == "Pending":
            cstate = {"waiting": {"reason": waiting_reason or "ContainerCreating"}}
            ready = False
        elif phase == "Succeeded":
            cstate = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started,
                    "finishedAt": self.ts(ago - 60),
                }
            }
            ready = False
        else:
            cstate = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": started,
                    "finishedAt": self.ts(ago - 60),
                }
            }
            ready = False
        cname = (labels or {}).get("app", "app")
        conds: list[dict[str, str]] = [
            {
                "type": "PodScheduled",
                "status": "True" if node else "False",
                "lastTransitionTime": t_created,
            },
        ]
        if node:
            conds += [
                {"type": "Initialized", "status": "True", "lastTransitionTime": t_created},
                {
                    "type": "ContainersReady",
                    "status": str(ready),
                    "lastTransitionTime": t_ready,
                },
                {"type": "Ready", "status": str(ready), "lastTransitionTime": t_ready},
            ]
            if not ready:
                conds[-1]["reason"] = conds[-2]["reason"] = "ContainersNotReady"
                conds[-1]["message"] = conds[-2]["message"] = (
                    f"containers with unready status: [{cname}]"
                )
        else:
            conds[0]["reason"] = "Unschedulable"
        status: dict[str, Any] = {"phase": phase, "conditions": conds, "qosClass": "BestEffort"}
        if node and node_info:
            status["hostIP"] = node_info["ip"]
            status["hostIPs"] = [{"ip": node_info["ip"]}]
            status["startTime"] = t_created
            status["containerStatuses"] = [
                {
                    "name": cname,
                    "image": image,
                    "imageID": ""
                    if phase == "Pending"
                    else f"{image.split(':')[0]}@sha256:{self.hexid()}",
                    "ready": ready,
                    "restartCount": restarts,
                    "started": running,
                    "state": cstate,
                    "lastState": self._last_state(restarts, ago, cid),
                    "volumeMounts": [{"name": vol, **SA_MOUNT, "recursiveReadOnly": "Disabled"}],
                    **({"containerID": f"containerd://{cid}"} if phase != "Pending" else {}),
                }
            ]
            if init:
                status["initContainerStatuses"] = [self._init_status(phase, ago)]
        if pod_ip:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}, {"ip": pod_ip6}] if pod_ip6 else [{"ip": pod_ip}]
        spec: dict = {
            "containers": [
                {
                    "name": cname,
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [{"name": vol, **SA_MOUNT}],
                }
            ],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Never" if owner and owner[0] == "Job" else "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "serviceAccount": "default",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
            "tolerations": default_tolerations(),
            "volumes": [{"name": vol, "projected": sa_projection()}],
        }
        if init:
            spec["initContainers"] = [
                {
                    "name": "init-sysctl",
                    "image": INIT_IMAGE,
                    "command": ["sh", "-c", "sysctl -w net.ipv4.ip_forward=1"],
                    "imagePullPolicy": "IfNotPresent",
                    "resources": {},
                    "securityContext": {"privileged": True},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [{"name": vol, **SA_MOUNT}],
                }
            ]
        if node:
            spec["nodeName"] = node
        obj: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": self._meta(name, namespace, ago, labels, annotations or None),
            "spec": spec,
            "status": status,
        }
        if owner:
            obj["metadata"]["ownerReferences"] = [self._owner_ref(namespace, *owner)]
        obj["metadata"]["managedFields"] = self._pod_managed(obj, vol, t_created, started)
        if self.sink is not None:
            self.sink("pods", obj)
        else:
            self._objs["pods"][(namespace, name)] = obj
        if events is None:
            events = self.with_events
        if (
            events
            and node
            and self._scheduled_every
            and self._pods_made % self._scheduled_every == 0
        ):
            self.new_event(
                obj,
                "Scheduled",
                f"Successfully assigned {namespace}/{name} to {node}",
                "Binding",
                ago=ago,
            )
        self._pods_made += 1
        if events and network_status and pod_ip:
            eth0 = f"{pod_ip}/24 {pod_ip6}/64" if pod_ip6 else f"{pod_ip}/24"
            self.event(
                obj, "AddedInterface", f"Add eth0 [{eth0}] from k8s-pod-network", ago=ago - 4
            )
            for nns, nname, ifname, ip, prefix in ifaces:
                shown = f"{ip}/{prefix}" if ip and prefix else (ip or "")
                self.event(
                    obj, "AddedInterface", f"Add {ifname} [{shown}] from {nns}/{nname}", ago=ago - 4
                )
        return obj

    def _pod_ip6(self, node: str | None) -> str | None:
        n = self._nodes.get(node or "")
        if n is None or n.get("pod_net6") is None:
            return None
        return str(n["pod_net6"].network_address + n["next"] - 1)

    def _owner_ref(self, namespace: str, kind: str, name: str) -> dict:
        # one uid per controller, derived (not drawn) so the other objects stay as they were
        uid = self._owner_uids.get((namespace, kind, name))
        if uid is None:
            uid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{namespace}/{kind}/{name}"))
            self._owner_uids[(namespace, kind, name)] = uid
        return {
            "apiVersion": "batch/v1" if kind == "Job" else "apps/v1",
            "kind": kind,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _last_state(self, restarts: int, ago: float, cid: str) -> dict:
        if not restarts:
            return {}
        return {
            "terminated": {
                "exitCode": 137,
                "reason": "OOMKilled",
                "startedAt": self.ts(ago - 8),
                "finishedAt": self.ts(ago / 2),
                "containerID": f"containerd://{cid[::-1]}",
            }
        }

    def _init_status(self, phase: str, ago: float) -> dict:
        st: dict[str, Any] = {
            "name": "init-sysctl",
            "image": INIT_IMAGE,
            "imageID": "",
            "ready": False,
            "restartCount": 0,
            "started": False,
            "state": {"waiting": {"reason": "PodInitializing"}},
            "lastState": {},
        }
        if phase != "Pending":
            st["ready"] = True
            st["imageID"] = f"{INIT_IMAGE.split(':')[0]}@sha256:{'0' * 64}"
            st["state"] = {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": self.ts(ago - 4),
                    "finishedAt": self.ts(ago - 6),
                }
            }
        return st

    def _pod_managed(self, pod: dict, vol: str, created: str, started: str) -> list[dict]:
        """A pod's managedFields as a cluster writes them: its creator (the controller, or
        kubectl for a bare pod), Multus (network-status, on the status subresource) and the
        kubelet (status). Built once per shape with placeholders (fast enough for `scale`)."""
        md = pod["metadata"]
        ann = md.get("annotations") or {}
        st = pod["status"]
        owner = (md.get("ownerReferences") or [None])[0]
        ips = [x["ip"] for x in st.get("podIPs") or []]
        host = [x["ip"] for x in st.get("hostIPs") or []]
        key = (
            owner["kind"] if owner else "",
            tuple(md.get("labels") or ()),
            tuple(ann),
            tuple(pod["spec"]),
            tuple(c["name"] for c in pod["spec"]["containers"]),
            tuple(st),
            tuple(c["type"] for c in st.get("conditions") or ()),
            len(ips),
            len(host),
        )
        values = {
            "vol": vol,
            "uid": owner["uid"] if owner else "",
            "created": created,
            "started": started,
            **{f"ip{i}": ip for i, ip in enumerate(ips)},
            **{f"host{i}": ip for i, ip in enumerate(host)},
        }
        template = self._managed_templates.get(key)
        if template is None:
            template = _pod_managed_template(pod, values)
            self._managed_templates[key] = template
        return orjson.loads(template % values)

    def failed_pod(
        self,
        namespace: str,
        name: str,
        node: str,
        nad: tuple[str, str],
        labels=None,
        count: int = 30,
    ) -> dict:
        """A pod stuck in ContainerCreating because whereabouts could not allocate."""
        obj = self.pod(namespace, name, node, [], "Pending", labels=labels, network_status=False)
        obj["metadata"].setdefault("annotations", {})[NETWORKS] = f"{nad[0]}/{nad[1]}"
        wb = self.wb_nads[nad]
        pool = self.pools[wb.pool_key]
        lo, hi = pool.first_last_ips()
        excl = "[" + " ".join(str(x) for x in pool.exclude) + "]"
        sandbox = self.hexid()
        msg = (
            f'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "{sandbox}": '
            f'plugin type="multus" name="multus-cni-network" failed (add): '
            f'[{namespace}/{name}/{obj["metadata"]["uid"]}:{nad[1]}]: error adding container to network "{nad[1]}": '
            f"error at storage engine: Could not allocate IP in range: ip: {lo} / - {hi} / range: {pool.net} / excludeRanges: {excl}"
        )
        self.event(
            obj,
            "FailedCreatePodSandBox",
            msg,
            type_="Warning",
            count=count,
            ago=60,
            first_ago=3600 * 2,
            component="kubelet",
        )
        self.failed_pods.append(f"{namespace}/{name}")
        return obj

    def event(
        self,
        pod: dict,
        reason: str,
        message: str,
        type_: str = "Normal",
        count: int = 1,
        ago: float = 3600,
        first_ago: float | None = None,
        component: str = "multus",
    ) -> dict:
        """An event as the old recorder (core/v1) writes it: count and first/last timestamps;
        a repeating one also carries the `series` events.k8s.io/v1 keeps for it."""
        md = pod["metadata"]
        name = f"{md['name']}.{self.hexid(16)}"
        node = (pod.get("spec") or {}).get("nodeName") or ""
        obj = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": self._meta(name, md["namespace"], first_ago or ago),
            "involvedObject": _involved(pod),
            "reason": reason,
            "message": message,
            "type": type_,
            "count": count,
            "firstTimestamp": self.ts(first_ago or ago),
            "lastTimestamp": self.ts(ago),
            "source": {"component": component, "host": node} if node else {"component": component},
            "reportingComponent": component,
            "reportingInstance": node,
        }
        if count > 1:
            obj["series"] = {"count": count, "lastObservedTime": self.micro_ts(ago)}
        self._stamp(obj, "kubelet" if component == "kubelet" else component)
        self._put_event(obj)
        return obj

    def new_event(
        self,
        pod: dict,
        reason: str,
        note: str,
        action: str,
        *,
        type_: str = "Normal",
        ago: float = 3600,
        controller: str = "default-scheduler",
        related: dict | None = None,
        series_count: int = 0,
    ) -> dict:
        """An event written through events.k8s.io/v1 (the scheduler, newer controllers), as
        a core/v1 read shows it: eventTime, action, reportingComponent/Instance, maybe
        `related` and `series`, and no count or first/last timestamps."""
        md = pod["metadata"]
        name = f"{md['name']}.{self.hexid(16)}"
        obj: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": self._meta(name, md["namespace"], ago),
            "involvedObject": _involved(pod),
            "reason": reason,
            "message": note,
            "type": type_,
            "action": action,
            "eventTime": self.micro_ts(ago),
            "firstTimestamp": None,
            "lastTimestamp": None,
            "source": {},
            "reportingComponent": controller,
            "reportingInstance": f"{controller}-sim-control-plane",
        }
        if related is not None:
            obj["related"] = _involved(related)
        if series_count:
            obj["series"] = {"count": series_count, "lastObservedTime": self.micro_ts(ago / 2)}
        self._stamp(obj, "kube-scheduler", "events.k8s.io/v1")
        self._put_event(obj)
        return obj

    def micro_ts(self, ago: float) -> str:
        """A MicroTime, as events.k8s.io writes eventTime and series.lastObservedTime."""
        return (self._naive_now - dt.timedelta(seconds=int(ago))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _put_event(self, obj: dict) -> None:
        md = obj["metadata"]
        if self.sink is not None:
            self.sink("events", obj)
        else:
            self._objs["events"][(md["namespace"], md["name"])] = obj

    # ---------------------------------------------------------------- ground truth

    def finding(
        self,
        kind: str,
        state: str = "leaked",
        ip: str | None = None,
        pool: str | None = None,
        podref: str | None = None,
        nads: list[str] | None = None,
        note: str = "",
        **extra,
    ) -> dict:
        f = {
            "kind": kind,
            "state": state,
            "ip": ip,
            "pool": pool,
            "podref": podref,
            "nads": nads or [],
            "note": note,
            **extra,
        }
        self.findings.append(f)
        return f

    def pool_ref(self, nad: tuple[str, str]) -> str:
        return "/".join(self.wb_nads[nad].pool_key)

    def ground_truth(self) -> dict:
        usage: dict[str, dict[str, Any]] = {}
        for p in self.pools.values():
            usage[p.ref] = {
                "range": str(p.net),
                "allocated": len(p.allocations),
                "usable": p.usable(),
            }
        exhausted = sorted(
            set(self.exhausted_pools)
            | {r for r, u in usage.items() if u["usable"] and u["allocated"] >= u["usable"]}
        )
        return {
            "findings": list(self.findings),
            "exhausted_pools": exhausted,
            "failed_pods": list(self.failed_pods),
            "pools": usage,
            "counts": {p: len(v) for p, v in self.objects().items()},
            **self.extra,
        }

    # ---------------------------------------------------------------- output

    def pool_objects(self) -> list[dict]:
        out = []
        for p in self.pools.values():
            obj: dict[str, Any] = {
                "apiVersion": WB_API,
                "kind": "IPPool",
                "metadata": {
                    "name": p.name,
                    "namespace": p.namespace,
                    "uid": p.uid,
                    "creationTimestamp": p.created,
                },
                "spec": {
                    "range": str(p.net),
                    "allocations": {str(k): dict(v) for k, v in sorted(p.allocations.items())},
                },
            }
            # whereabouts rewrites the whole pool on every allocation (an Update)
            obj["metadata"]["managedFields"] = [
                managed.entry("whereabouts", "Update", WB_API, self.ts(60), managed.fields_v1(obj))
            ]
            out.append(obj)
        return out

    def objects(self) -> dict[str, list[dict]]:
        out = {p: list(d.values()) for p, d in self._objs.items()}
        out["ippools"] = self.pool_objects()
        out["overlappingrangeipreservations"] = list(self.reservations.values())
        for obj in out["nodeslicepools"]:  # written by whereabouts' node-slice controller
            self._stamp(obj, "whereabouts", WB_API)
        return out


def _involved(pod: dict) -> dict:
    md = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": md["name"],
        "namespace": md["namespace"],
        "uid": md["uid"],
    }


def _keys(obj: dict) -> tuple:
    """The field names of obj's top two levels (which, with no keyed lists below, fix the
    FieldsV1 trie of a reservation, namespace or NAD)."""
    return tuple((k, tuple(v) if isinstance(v, dict) else ()) for k, v in obj.items())


def _pod_managed_template(pod: dict, values: dict[str, str]) -> str:
    """The managedFields of `pod` as a %-template: its per-pod values (volume name, owner
    uid, times, addresses) are `%(name)s` placeholders filled from `values`."""
    md = pod["metadata"]
    status_keys = (NETWORK_STATUS, LEGACY_NETWORK_STATUS)
    ann = md.get("annotations") or {}
    spec = {k: v for k, v in pod["spec"].items() if k != "nodeName"}
    creator_md = {k: v for k, v in md.items() if k in ("labels", "ownerReferences", "generateName")}
    mine = {k: v for k, v in ann.items() if k not in status_keys}
    if mine:
        creator_md["annotations"] = mine
    owner = (md.get("ownerReferences") or [None])[0]
    entries = [
        managed.entry(
            CONTROLLER_MANAGER if owner else "kubectl-create",
            "Update",
            "v1",
            "@created@",
            managed.fields_v1({"metadata": creator_md, "spec": spec}),
        )
    ]
    multus = {k: v for k, v in ann.items() if k in status_keys}
    if multus:
        entries.append(
            managed.entry(
                MULTUS_MANAGER,
                "Update",
                "v1",
                "@started@",
                managed.fields_v1({"metadata": {"annotations": multus}}),
                "status",
            )
        )
    if pod.get("status"):
        entries.append(
            managed.entry(
                "kubelet",
                "Update",
                "v1",
                "@started@",
                managed.fields_v1({"status": pod["status"]}),
                "status",
            )
        )
    raw = orjson.dumps(entries).decode().replace("%", "%%")
    raw = raw.replace('"@created@"', '"%(created)s"').replace('"@started@"', '"%(started)s"')
    for name, value in values.items():
        if value and name not in ("created", "started"):
            # the values only occur as keyed-list keys: k:{"ip":"<value>"}, quotes escaped
            raw = raw.replace(f'\\"{value}\\"', f'\\"%({name})s\\"')
    return raw
