"""The `workloads` scenario: workloads whose addresses fool naive leak detection.

- A StatefulSet pod (db/postgres-0) re-created under the same name with a new address: the
  old allocation (same podref, address no longer in its network-status) is stale, the new
  one fine. whereabouts normally hands the old address back (AssignIP reuses by podref +
  ifname), but not after its pod controller freed it in between; its reconciler matches on
  podref alone (issues #176, #182).
- A KubeVirt virt-launcher pod (vms/virt-launcher-vm1-x7k2p) whose *default* network is a
  whereabouts NAD (`v1.multus-cni.io/default-network`, resolved by Multus in kube-system):
  Multus marks that network-status entry `default: true`, and whereabouts' reconciler
  skips such entries and frees the address of a running VM (whereabouts#638). Not a leak.
- A pod stuck Terminating on a dead node (deletionTimestamp set, node NotReady): its stale
  allocation is suspect, never leaked. Another on a node that is gone altogether.
"""

from __future__ import annotations

import json

from .builder import ClusterBuilder

DEFAULT_NETWORK = "v1.multus-cni.io/default-network"
NETWORK_STATUS = "k8s.v1.cni.cncf.io/network-status"


def build_workloads(seed: int = 1) -> ClusterBuilder:
    b = ClusterBuilder(seed=seed)
    for ns in ("default", "kube-system", "db", "vms", "batch"):
        b.namespace(ns)
    b.node("worker-1")
    b.node("worker-2")
    b.node("worker-dead", ready=False)
    db = ("db", "db-net")
    b.whereabouts_nad(*db, "10.60.0.0/24", master="eth1")
    vm_net = ("kube-system", "vm-pod-net")
    b.whereabouts_nad(*vm_net, "10.61.0.0/24", cni_type="bridge", master="br0")
    batch = ("batch", "batch-net")
    b.whereabouts_nad(*batch, "10.62.0.0/24", master="eth1")
    db_pool = b.pools[b.wb_nads[db].pool_key]

    # StatefulSet: postgres-0 held old_ip before it was re-created; postgres-1 is healthy.
    old_ip = db_pool.next_free()
    b.allocation(db_pool.name, old_ip, "db/postgres-0", "net1")
    b.reservation(old_ip, "db/postgres-0", "", db_pool.namespace, "net1")
    for i in range(2):
        pod = b.pod(
            "db",
            f"postgres-{i}",
            "worker-1",
            [db],
            labels={"app": "postgres", "statefulset.kubernetes.io/pod-name": f"postgres-{i}"},
            created_ago=600 if i == 0 else None,
        )
        pod["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": "postgres",
                "uid": b.uid(),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    b.finding(
        "stale_allocation",
        ip=old_ip,
        pool=db_pool.ref,
        podref="db/postgres-0",
        note="StatefulSet pod re-created under the same name with a new address",
    )

    # KubeVirt: the VM's pod network is the whereabouts NAD, as its default network.
    vm_pool = b.pools[b.wb_nads[vm_net].pool_key]
    name = "virt-launcher-vm1-x7k2p"
    vm_ip = vm_pool.next_free()
    b.allocation(vm_pool.name, vm_ip, f"vms/{name}", "eth0")
    b.reservation(vm_ip, f"vms/{name}", "", vm_pool.namespace, "eth0")
    pod = b.pod("vms", name, "worker-2", labels={"kubevirt.io": "virt-launcher"})
    annotations = pod["metadata"].setdefault("annotations", {})
    annotations[DEFAULT_NETWORK] = "vm-pod-net"  # KubeVirt writes the bare name
    annotations[NETWORK_STATUS] = json.dumps(
        [
            {
                "name": "kube-system/vm-pod-net",
                "interface": "eth0",
                "ips": [vm_ip],
                "mac": b.mac(),
                "default": True,
                "dns": {},
            }
        ]
    )
    pod["status"]["podIP"] = vm_ip
    pod["status"]["podIPs"] = [{"ip": vm_ip}]

    # Stuck Terminating on a dead node (NotReady) and on a node that is gone.
    batch_pool = b.pools[b.wb_nads[batch].pool_key]
    for pod_name, node in (("cruncher-0", "worker-dead"), ("cruncher-1", "worker-gone")):
        pod = b.pod("batch", pod_name, node, [batch], network_status=False)
        pod["metadata"]["deletionTimestamp"] = b.ts(1800)
        pod["metadata"]["deletionGracePeriodSeconds"] = 30
        (ip,) = (
            str(batch_pool.net.network_address + off)
            for off, a in batch_pool.allocations.items()
            if a["podref"] == f"batch/{pod_name}"
        )
        b.finding(
            "stale_allocation",
            state="suspect",
            ip=ip,
            pool=batch_pool.ref,
            podref=f"batch/{pod_name}",
            note=f"pod stuck Terminating on dead node {node}",
        )
    b.extra["scenario"] = "workloads"
    b.extra["seed"] = seed
    return b
