"""Attachment failures: FailedCreatePodSandBox events with their CNI error explained in
plain words, and the pod and node they happened on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Exists, F, OuterRef, Subquery

from ippam.models import Cluster, IPPool, NetworkAttachmentDefinition, Node, Pod, PodEvent
from ippam.selectors.shared import scoped

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
class FailureNode:
    pk: int
    name: str


@dataclass
class FailurePod:
    node_name: str


@dataclass
class AttachmentFailure:
    event: PodEvent
    explanation: str
    pod: FailurePod | None  # the pod the event is about, if it still exists
    node: FailureNode | None  # its node, if synced


def attachment_failures(
    *,
    cluster: Cluster | None = None,
    pool: IPPool | None = None,
    nad: NetworkAttachmentDefinition | None = None,
    node: Node | None = None,
    limit: int = 20,
) -> list[AttachmentFailure]:
    """The latest failures, each with its pod's node, in one query: the pod and the node are
    correlated subqueries on their unique (cluster, namespace, name) and (cluster, name)
    indexes, not two more queries."""
    pods = Pod.objects.filter(
        cluster=OuterRef("cluster_id"),
        namespace=OuterRef("pod_namespace"),
        name=OuterRef("pod_name"),
    )
    nodes = Node.objects.filter(cluster=OuterRef("cluster_id"), name=OuterRef("pod_node_name"))
    qs = (
        PodEvent.objects.filter(reason=PodEvent.Reason.FAILED_SANDBOX)
        .select_related("nad", "pool")
        .only(
            *_EVENT_FIELDS,
            "nad__namespace",
            "nad__name",
            "pool__range",
        )
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
    # PostgreSQL evaluates these subqueries after the sort and limit: `limit` times each.
    events = list(
        qs.annotate(
            pod_exists=Exists(pods),
            pod_node_name=Subquery(pods.values("node_name")[:1]),
        )
        .annotate(node_pk=Subquery(nodes.values("pk")[:1]))
        .order_by(F("last_seen").desc(nulls_last=True), "-pk")[:limit]
    )
    out = []
    for e in events:
        node_name = e.pod_node_name or ""
        out.append(
            AttachmentFailure(
                event=e,
                explanation=explain_cni_error(e.message),
                pod=FailurePod(node_name) if e.pod_exists else None,
                node=FailureNode(e.node_pk, node_name) if e.node_pk is not None else None,
            )
        )
    return out


# What the failures table shows of an event (plus its NAD's and pool's names).
_EVENT_FIELDS = (
    "cluster_id",
    "pod_namespace",
    "pod_name",
    "message",
    "count",
    "last_seen",
    "nad",
    "pool",
)
