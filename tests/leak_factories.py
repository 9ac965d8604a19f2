"""Row builders for the leak, alert and reclaim tests: a small synced cluster in the DB.

Rows look like what ippam.sync writes: pools named like whereabouts names them, allocation
keys as decimal offsets, network-status entries split into PodInterface/InterfaceAddress.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

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
    PodInterface,
)
from ippam.naming import pool_name, reservation_name, split_podref

LONG_AGO = timezone.now() - dt.timedelta(days=3)


class Rows:
    def __init__(self, name: str = "c1", **cluster: Any) -> None:
        self.cluster = Cluster.objects.create(name=name, kubeconfig="/dev/null", **cluster)
        self._uid = 0

    def uid(self) -> str:
        self._uid += 1
        return f"uid-{self._uid}"

    def node(self, name: str, ready: bool = True) -> Node:
        return Node.objects.create(cluster=self.cluster, name=name, uid=self.uid(), ready=ready)

    def pool(self, cidr: str, network_name: str = "", namespace: str = "kube-system") -> IPPool:
        name = pool_name(cidr, network_name)
        existing = IPPool.objects.filter(
            cluster=self.cluster, namespace=namespace, name=name
        ).first()
        if existing:
            return existing
        net = IPNetwork(cidr)
        return IPPool.objects.create(
            cluster=self.cluster,
            namespace=namespace,
            name=name,
            uid=self.uid(),
            range=cidr,
            first_ip=IPAddress(net.first, net.version),
            last_ip=IPAddress(net.last, net.version),
            network_name=network_name,
            usable=max(net.size - 2, 0),
            created_at=LONG_AGO,
        )

    def nad(
        self,
        ref: str,
        cidr: str | None = "10.0.0.0/24",
        network_name: str = "",
        overlapping: bool = True,
        created_at: dt.datetime = LONG_AGO,
    ) -> NetworkAttachmentDefinition:
        namespace, name = split_podref(ref)
        ipam = {"type": "whereabouts"} if cidr else {"type": "static"}
        nad = NetworkAttachmentDefinition.objects.create(
            cluster=self.cluster,
            namespace=namespace,
            name=name,
            uid=self.uid(),
            created_at=created_at,
            config={"cniVersion": "0.3.1", "type": "macvlan", "ipam": ipam},
            cni_type="macvlan",
            ipam_type=ipam["type"],
        )
        if cidr:
            net = IPNetwork(cidr)
            pool = self.pool(cidr, network_name)
            NADRange.objects.create(
                nad=nad,
                cluster=self.cluster,
                range=cidr,
                first_ip=IPAddress(net.first, net.version),
                last_ip=IPAddress(net.last, net.version),
                network_name=network_name,
                enable_overlapping_ranges=overlapping,
                usable=max(net.size - 2, 0),
                pool_name=pool.name,
                pool=pool,
            )
        return nad

    def pod(
        self,
        ref: str,
        attachments: list[tuple[NetworkAttachmentDefinition | None, str, list[str]]] = (),
        *,
        node: str = "node-1",
        phase: str = "Running",
        created_at: dt.datetime | None = LONG_AGO,
        deleting: dt.datetime | None = None,
        default_attachment: bool = False,
        network_status: bool = True,
    ) -> Pod:
        """`attachments`: (nad, interface, ips); with `default_attachment` the first one is
        the pod's default network (network-status `default: true`)."""
        namespace, name = split_podref(ref)
        status: list[dict[str, Any]] = []
        if not default_attachment:
            status.append(
                {"name": "cbr0", "interface": "eth0", "ips": ["10.244.0.9"], "default": True}
            )
        for i, (nad, iface, ips) in enumerate(attachments):
            status.append(
                {
                    "name": f"{nad.namespace}/{nad.name}" if nad else "other/none",
                    "interface": iface,
                    "ips": ips,
                    "default": default_attachment and i == 0,
                }
            )
        pod = Pod.objects.create(
            cluster=self.cluster,
            namespace=namespace,
            name=name,
            uid=self.uid(),
            node_name=node,
            phase=phase,
            created_at=created_at,
            deletion_timestamp=deleting,
            network_status_annotation=json.dumps(status) if network_status else "",
        )
        if not network_status:
            return pod
        for entry in status:
            nad = None
            if entry["name"] != "cbr0":
                ns, nm = split_podref(entry["name"])
                nad = NetworkAttachmentDefinition.objects.filter(
                    cluster=self.cluster, namespace=ns, name=nm
                ).first()
            iface = PodInterface.objects.create(
                pod=pod,
                cluster=self.cluster,
                network_name=entry["name"],
                nad_namespace=nad.namespace if nad else "",
                nad_name=nad.name if nad else "",
                nad=nad,
                interface=entry["interface"],
                ips=entry["ips"],
                default=entry["default"],
            )
            for ip in entry["ips"]:
                InterfaceAddress.objects.create(
                    interface=iface, cluster=self.cluster, ip=IPAddress(ip)
                )
        return pod

    def alloc(
        self,
        pool: IPPool,
        ip: str,
        podref: str,
        *,
        reservation: bool | None = None,
        ifname: str = "net1",
    ) -> Allocation:
        """An allocation; with overlapping ranges on (the default) also its reservation."""
        address = IPAddress(ip)
        namespace, name = split_podref(podref)
        allocation = Allocation.objects.create(
            pool=pool,
            cluster=self.cluster,
            key=str(int(address) - int(IPNetwork(pool.range).network)),
            ip=address,
            podref=podref,
            pod_namespace=namespace,
            pod_name=name,
            ifname=ifname,
        )
        if reservation is None:
            reservation = NADRange.objects.filter(
                pool=pool, enable_overlapping_ranges=True
            ).exists()
        if reservation:
            self.orip(ip, podref, pool.network_name)
        pool.allocated = Allocation.objects.filter(pool=pool).count()
        pool.utilization = pool.allocated / int(pool.usable) if int(pool.usable) else 0.0
        pool.save(update_fields=["allocated", "utilization"])
        return allocation

    def orip(
        self, ip: str, podref: str, network_name: str = "", created_at: dt.datetime = LONG_AGO
    ) -> OverlappingRangeIPReservation:
        namespace, name = split_podref(podref)
        return OverlappingRangeIPReservation.objects.create(
            cluster=self.cluster,
            namespace="kube-system",
            name=reservation_name(IPAddress(ip), network_name),
            uid=self.uid(),
            created_at=created_at,
            ip=IPAddress(ip),
            network_name=network_name,
            podref=podref,
            pod_namespace=namespace,
            pod_name=name,
            ifname="net1",
        )
