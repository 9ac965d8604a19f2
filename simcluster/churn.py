"""Live traffic: pods are created, scheduled, get whereabouts IPs, and are deleted.

Every step goes through the same Store as the HTTP API (so watches see it) and keeps the
IPPool allocations, ORIPs and network-status annotations consistent, like Multus and
Whereabouts would: create (Pending) -> allocate + Running -> delete + release.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import uuid

from .builder import NETWORK_STATUS, NETWORKS, orip_name, pool_name, whereabouts_ipam
from .store import ApiError, Store, now_rfc3339

log = logging.getLogger("simcluster.churn")


def _wb_nads(store: Store) -> list[dict]:
    out = []
    _, entries = store.select("network-attachment-definitions")
    for e in entries:
        obj = e.obj()
        try:
            cfg = json.loads(obj.get("spec", {}).get("config") or "")
        except ValueError:
            continue
        if not isinstance(cfg, dict):
            continue
        ipam = whereabouts_ipam(cfg)
        if not ipam or not ipam.get("range"):
            continue
        try:
            net = ipaddress.ip_network(ipam["range"], strict=False)
        except ValueError:
            continue
        first = int(net.network_address) + 1
        last = int(net.broadcast_address) - 1
        for key, fn in (("range_start", max), ("range_end", min)):
            if ipam.get(key):
                v = int(ipaddress.ip_address(ipam[key]))
                if int(net.network_address) <= v <= int(net.broadcast_address):
                    first, last = (
                        (fn(first, v), last) if key == "range_start" else (first, fn(last, v))
                    )
        nn = ipam.get("network_name") or ""
        out.append(
            {
                "ref": (obj["metadata"]["namespace"], obj["metadata"]["name"]),
                "net": net,
                "first": first,
                "last": last,
                "exclude": [
                    ipaddress.ip_network(x, strict=False) for x in ipam.get("exclude") or []
                ],
                "network_name": nn,
                "pool": pool_name(str(net), nn),
                "overlapping": ipam.get("enable_overlapping_ranges", True) is not False,
            }
        )
    return out


class Churner:
    def __init__(self, store: Store, seed: int = 1, pool_namespace: str = "kube-system"):
        self.store = store
        self.rng = random.Random(seed)
        self.pool_ns = pool_namespace
        self.pending: list[tuple[str, str, dict]] = []
        self.running: list[tuple[str, str, dict, str]] = []
        self.n = 0
        self.nads = _wb_nads(store)
        _, nodes = store.select("nodes")
        self.nodes = [e.name for e in nodes]
        self.max_pods = 60
        self.failures = 0
        # addresses already shown by pods (planted untracked/duplicate ones included) are
        # never handed out again, so churn does not disturb a scenario's ground truth
        self.seen_ips: set[str] = set()
        _, pods = store.select("pods")
        for e in pods:
            ann = (e.obj()["metadata"].get("annotations") or {}).get(NETWORK_STATUS)
            try:
                for entry in json.loads(ann) if ann else []:
                    self.seen_ips.update(entry.get("ips") or [])
            except (ValueError, AttributeError, TypeError):
                continue

    def step(self) -> str:
        if not self.nads:
            self.nads = _wb_nads(self.store)
            if not self.nads:
                return "idle"
        r = self.rng.random()
        total = len(self.pending) + len(self.running)
        if total < 5 or (r < 0.35 and total < self.max_pods):
            return self.create()
        if self.pending and (r < 0.7 or not self.running):
            return self.start()
        if self.running:
            return self.remove()
        return self.create()

    def create(self) -> str:
        nad = self.rng.choice(self.nads)
        ns = nad["ref"][0]
        self.n += 1
        name = f"churn-{self.n:05d}-{uuid.uuid4().hex[:5]}"
        node = self.rng.choice(self.nodes) if self.nodes else None
        pod = {
            "metadata": {
                "name": name,
                "namespace": ns,
                "labels": {"app": "churn", "simcluster/churn": "true"},
                "annotations": {NETWORKS: f"{nad['ref'][0]}/{nad['ref'][1]}"},
            },
            "spec": {
                "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}],
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                **({"nodeName": node} if node else {}),
            },
            "status": {
                "phase": "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now_rfc3339()}
                ],
            },
        }
        self.store.create("pods", pod, ns, manager="kube-controller-manager")
        self.pending.append((ns, name, nad))
        return "create"

    def _pool(self, nad: dict) -> dict:
        try:
            return self.store.get("ippools", self.pool_ns, nad["pool"])
        except ApiError as err:
            if err.code != 404:
                raise
            return self.store.create(
                "ippools",
                {
                    "metadata": {"name": nad["pool"], "namespace": self.pool_ns},
                    "spec": {"range": str(nad["net"]), "allocations": {}},
                },
                self.pool_ns,
                manager="whereabouts",
            )

    def start(self) -> str:
        ns, name, nad = self.pending.pop(self.rng.randrange(len(self.pending)))
        podref = f"{ns}/{name}"
        pool = self._pool(nad)
        base = int(nad["net"].network_address)
        taken = {base + int(k) for k in (pool["spec"].get("allocations") or {}) if k.isdigit()}
        try:
            pod = self.store.get("pods", ns, name)
        except ApiError:
            return "gone"
        ip = None
        v = nad["first"]
        checked = 0
        while v <= nad["last"] and checked < 512:
            if v not in taken and not any(
                int(x.network_address) <= v <= int(x.broadcast_address) for x in nad["exclude"]
            ):
                checked += 1
                cand = str(ipaddress.ip_address(v))
                orip = orip_name(cand, nad["network_name"] or None)
                if cand not in self.seen_ips and (
                    not nad["overlapping"]
                    or _missing(self.store, "overlappingrangeipreservations", self.pool_ns, orip)
                ):
                    ip = cand
                    break
            v += 1
        if ip is None:  # the range is exhausted: give up on this pod, like a failed sandbox
            with contextlib.suppress(ApiError):
                self.store.delete("pods", ns, name)
            return "exhausted"
        cid = uuid.uuid4().hex + uuid.uuid4().hex
        self.store.patch(
            "ippools",
            self.pool_ns,
            nad["pool"],
            [
                {
                    "op": "test",
                    "path": "/metadata/resourceVersion",
                    "value": pool["metadata"]["resourceVersion"],
                },
                {
                    "op": "add",
                    "path": f"/spec/allocations/{v - base}",
                    "value": {"id": cid, "podref": podref, "ifname": "net1"},
                },
            ],
            "json",
            manager="whereabouts",
        )
        if nad["overlapping"]:
            self.store.put(
                "overlappingrangeipreservations",
                {
                    "metadata": {
                        "name": orip_name(ip, nad["network_name"] or None),
                        "namespace": self.pool_ns,
                    },
                    "spec": {"podref": podref, "ifname": "net1"},
                },
            )
        pod_ip = f"10.250.{self.rng.randrange(256)}.{self.rng.randrange(2, 254)}"
        status = [
            {
                "name": "k8s-pod-network",
                "interface": "eth0",
                "ips": [pod_ip],
                "mac": _mac(self.rng),
                "default": True,
                "dns": {},
            },
            {
                "name": f"{nad['ref'][0]}/{nad['ref'][1]}",
                "interface": "net1",
                "ips": [ip],
                "mac": _mac(self.rng),
                "dns": {},
            },
        ]
        now = now_rfc3339()
        self.store.patch(
            "pods",
            ns,
            name,
            {
                "metadata": {"annotations": {NETWORK_STATUS: json.dumps(status, indent=1)}},
                "status": {
                    "phase": "Running",
                    "podIP": pod_ip,
                    "podIPs": [{"ip": pod_ip}],
                    "startTime": now,
                    "conditions": (pod.get("status") or {}).get("conditions", [])
                    + [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                },
            },
            "merge",
            manager="kubelet",  # with Multus' annotation, in one write here
            subresource="status",
        )
        self.running.append((ns, name, nad, ip))
        return "start"

    def remove(self) -> str:
        ns, name, nad, ip = self.running.pop(self.rng.randrange(len(self.running)))
        base = int(nad["net"].network_address)
        key = str(int(ipaddress.ip_address(ip)) - base)
        with contextlib.suppress(ApiError):
            self.store.patch(
                "ippools",
                self.pool_ns,
                nad["pool"],
                [{"op": "remove", "path": f"/spec/allocations/{key}"}],
                "json",
                manager="whereabouts",
            )
        if nad["overlapping"]:
            with contextlib.suppress(ApiError):
                self.store.delete(
                    "overlappingrangeipreservations",
                    self.pool_ns,
                    orip_name(ip, nad["network_name"] or None),
                )
        with contextlib.suppress(ApiError):
            self.store.delete("pods", ns, name)
        return "delete"


def _missing(store: Store, plural: str, ns: str, name: str) -> bool:
    try:
        store.get_entry(plural, ns, name)
    except ApiError:
        return True
    return False


def _mac(rng: random.Random) -> str:
    h = f"{rng.getrandbits(32):08x}"
    return f"0a:58:{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}"


async def churn(server, events_per_second: float, seed: int = 1) -> None:
    """Run forever on the server's loop: `events_per_second` churn steps per second."""
    churner = Churner(server.store, seed)
    interval = 1.0 / events_per_second
    loop = asyncio.get_running_loop()
    nxt = loop.time()
    while True:
        nxt += interval
        try:
            churner.step()
        except ApiError as err:  # a conflicting test or user write: skip this step
            log.debug("churn step failed: %s", err)
        except Exception:
            churner.failures += 1
            if churner.failures <= 3:  # never flood a piped stderr
                log.exception("churn step crashed")
        delay = nxt - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1:
            nxt = loop.time()
