"""Attachment failures: FailedCreatePodSandBox events with their CNI error explained in
plain words, and the pod and node they happened on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef

from ippam.models import Cluster, IPPool, NetworkAttachmentDefinition, Node, Pod, PodEvent
from ippam.selectors.shared import nodes_by_name, pods_by_ref, scoped

_CNI_EXPLANATIONS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"could not allocate IP in range[^:]*?(?:ip:\s*(\S+)\s*/\s*(\S+))?", re.I),
        "The pool is full: whereabouts found no free address in the range.",
    ),
    (
        re.compile(r"failed to find plugin \"?([\w.-]+)\"?", re.I),
        'The CNI plugin binary "{0}" is not installed on the node.',
    ),
    (
        re.compile(
            r"(?:cannot find|failed to get|not found).{0,40}network-attachment-definition|networkattachmentdefinitions?\S* \"?([\w.-]+)\"? not found",
            re.I,
        ),
        "The pod asks for a NetworkAttachmentDefinition that does not exist in that namespace.",
    ),
    (
        re.compile(
            r"(?:failed to lookup master|Link not found|master.{0,20}not found)\s*\"?([\w.-]*)",
            re.I,
        ),
        'The master interface "{0}" named by the NAD does not exist on this node.',
    ),
    (
        re.compile(r"context deadline exceeded|timed? ?out|i/o timeout", re.I),
        "whereabouts timed out talking to the Kubernetes API while updating the pool.",
    ),
    (
        re.compile(r"overlapping ?range", re.I),
        "The address is already reserved in an overlapping range (OverlappingRangeIPReservation).",
    ),
    (
        re.compile(
            r"invalid character|cannot unmarshal|error parsing|failed to load netconf", re.I
        ),
        "The NAD's CNI config is not valid JSON, or a field has the wrong type.",
    ),
    (
        re.compile(r"insufficient|no (?:free )?(?:virtual functions|VFs|devices)", re.I),
        "No SR-IOV device is free on the node for this resource.",
    ),
]


def explain_cni_error(message: str) -> str:
    """The CNI error of a FailedCreatePodSandBox event, in plain words."""
    text = message or ""
    for pattern, words in _CNI_EXPLANATIONS:
        m = pattern.search(text)
        if m:
            arg = next((g for g in m.groups() if g), "")
            if "{0}" not in words:
                return words
            return words.format(arg) if arg else words.replace(' "{0}"', "").replace(" {0}", "")
    # Unknown: the innermost error is usually after the last ": ".
    tail = text.rsplit(": ", 1)[-1].strip()
    return tail[:300] if tail else "The network attachment failed (no message)."


@dataclass
class AttachmentFailure:
    event: PodEvent
    explanation: str
    pod: Pod | None
    node: Node | None


def attachment_failures(
    *,
    cluster: Cluster | None = None,
    pool: IPPool | None = None,
    nad: NetworkAttachmentDefinition | None = None,
    node: Node | None = None,
    limit: int = 20,
) -> list[AttachmentFailure]:
    qs = PodEvent.objects.filter(reason=PodEvent.Reason.FAILED_SANDBOX).select_related(
        "nad", "pool", "cluster"
    )
    qs = scoped(qs, cluster)
    if pool is not None:
        qs = qs.filter(pool=pool)
    if nad is not None:
        qs = qs.filter(nad=nad)
    if node is not None:
        on_node = Pod.objects.filter(
            cluster=OuterRef("cluster"),
            namespace=OuterRef("pod_namespace"),
            name=OuterRef("pod_name"),
            node_name=node.name,
        )
        qs = qs.filter(cluster=node.cluster_id).filter(Exists(on_node))
    events = list(qs.order_by(F("last_seen").desc(nulls_last=True), "-pk")[:limit])
    by_cluster: dict[int, set[tuple[str, str]]] = {}
    for e in events:
        by_cluster.setdefault(e.cluster_id, set()).add((e.pod_namespace, e.pod_name))
    pods: dict[tuple[int, str, str], Pod] = {}
    nodes: dict[tuple[int, str], Node] = {}
    for cid, refs in by_cluster.items():
        found = pods_by_ref(cid, refs)
        pods.update({(cid, *k): v for k, v in found.items()})
        nodes.update(
            {
                (cid, k): v
                for k, v in nodes_by_name(
                    cid, {p.node_name for p in found.values() if p.node_name}
                ).items()
            }
        )
    out = []
    for e in events:
        pod = pods.get((e.cluster_id, e.pod_namespace, e.pod_name))
        out.append(
            AttachmentFailure(
                event=e,
                explanation=explain_cni_error(e.message),
                pod=pod,
                node=nodes.get((e.cluster_id, pod.node_name)) if pod and pod.node_name else None,
            )
        )
    return out
