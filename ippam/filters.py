"""The list filters, one FilterSet per list (django-filter), shared by the pages and the API.

Each FilterSet narrows a queryset its selector built (ippam.selectors: the annotations,
prefetches and sort); the free-text box (`q`) means what the selector's `*_matching`
function says, so a page and an API answer the same question the same way. Cluster scoping
is not a filter here: the dashboard takes it from the cluster switcher (session).
"""

from __future__ import annotations

from typing import Any

import django_filters as filters  # type: ignore[import-untyped]  # types-django-filter needs django-stubs 6
from django import forms
from django.db.models import Exists, OuterRef, QuerySet

from ippam.ipparse import input_ip
from ippam.models import (
    Alert,
    Allocation,
    AuditEntry,
    Cluster,
    Finding,
    IPPool,
    NetworkAttachmentDefinition,
    Node,
    Pod,
    PodInterface,
)
from ippam.selectors.findings import findings_matching
from ippam.selectors.nads import nads_matching
from ippam.selectors.nodes import nodes_matching
from ippam.selectors.pools import pools_matching


def _search(placeholder: str) -> forms.TextInput:
    return forms.TextInput(attrs={"type": "search", "placeholder": placeholder})


class PoolFilter(filters.FilterSet):
    q = filters.CharFilter(
        label="Filter pools",
        method="filter_q",
        widget=_search("range, IP, CIDR, network name, NAD…"),
    )

    class Meta:
        model = IPPool
        fields: list[str] = []

    def filter_q(self, qs: QuerySet[IPPool], name: str, value: str) -> QuerySet[IPPool]:
        return pools_matching(qs, value)


class NADFilter(filters.FilterSet):
    q = filters.CharFilter(
        label="Filter NADs",
        method="filter_q",
        widget=_search("name, namespace, CNI type, master, range, IP…"),
    )

    class Meta:
        model = NetworkAttachmentDefinition
        fields: list[str] = []

    def filter_q(self, qs: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return nads_matching(qs, value)


class NodeFilter(filters.FilterSet):
    q = filters.CharFilter(label="Filter nodes", method="filter_q", widget=_search("node name"))

    class Meta:
        model = Node
        fields: list[str] = []

    def filter_q(self, qs: QuerySet[Node], name: str, value: str) -> QuerySet[Node]:
        return nodes_matching(qs, value)


class FindingFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(
        label="Kind", choices=Finding.Kind.choices, empty_label="every kind"
    )
    state = filters.ChoiceFilter(
        label="State", choices=Finding.State.choices, empty_label="leaked and suspect"
    )
    q = filters.CharFilter(
        label="Filter findings", method="filter_q", widget=_search("IP, pod, node, reason")
    )
    # A hidden field: the overview's and the pool page's "leaks" links narrow to one pool.
    pool = filters.NumberFilter(field_name="pool_id", widget=forms.HiddenInput)

    class Meta:
        model = Finding
        fields: list[str] = []

    def filter_q(self, qs: QuerySet[Finding], name: str, value: str) -> QuerySet[Finding]:
        return findings_matching(qs, value)


class AlertFilter(filters.FilterSet):
    state = filters.ChoiceFilter(
        label="State", choices=Alert.State.choices, empty_label="any state"
    )
    kind = filters.ChoiceFilter(label="Kind", choices=Alert.Kind.choices, empty_label="any kind")
    cluster = filters.ModelChoiceFilter(
        label="Cluster", queryset=Cluster.objects.order_by("name"), empty_label="any cluster"
    )

    class Meta:
        model = Alert
        fields: list[str] = []


class AuditFilter(filters.FilterSet):
    action = filters.ChoiceFilter(
        label="Action", choices=AuditEntry.Action.choices, empty_label="any action"
    )
    cluster = filters.ModelChoiceFilter(
        label="Cluster", queryset=Cluster.objects.order_by("name"), empty_label="any cluster"
    )
    actor = filters.CharFilter(
        label="Actor",
        method="filter_actor",
        widget=forms.TextInput(attrs={"placeholder": "user name", "list": "audit-actors"}),
        max_length=150,
    )
    outcome = filters.CharFilter(
        label="Outcome",
        method="filter_outcome",
        widget=forms.TextInput(attrs={"placeholder": "outcome"}),
        max_length=32,
    )

    class Meta:
        model = AuditEntry
        fields: list[str] = []

    def filter_actor(self, qs: QuerySet[AuditEntry], name: str, value: str) -> QuerySet[AuditEntry]:
        value = value.strip()
        return qs.filter(actor_name__iexact=value) if value else qs

    def filter_outcome(
        self, qs: QuerySet[AuditEntry], name: str, value: str
    ) -> QuerySet[AuditEntry]:
        value = value.strip()
        return qs.filter(outcome__iexact=value) if value else qs


class AllocationFilter(filters.FilterSet):
    """Allocations (the API's list; the pool page filters its own with `q`)."""

    ip = filters.CharFilter(label="IP", method="filter_ip")
    pod = filters.CharFilter(label="Pod (namespace/name, or name)", method="filter_pod")
    node = filters.CharFilter(label="Node", method="filter_node")
    pool = filters.NumberFilter(field_name="pool_id")

    class Meta:
        model = Allocation
        fields: list[str] = []

    def filter_ip(self, qs: QuerySet[Allocation], name: str, value: str) -> QuerySet[Allocation]:
        ip = input_ip(value)
        return qs.filter(ip=ip) if ip is not None else qs.none()

    def filter_pod(self, qs: QuerySet[Allocation], name: str, value: str) -> QuerySet[Allocation]:
        namespace, _, pod = value.strip().rpartition("/")
        qs = qs.filter(pod_name=pod)
        return qs.filter(pod_namespace=namespace) if namespace else qs

    def filter_node(self, qs: QuerySet[Allocation], name: str, value: str) -> QuerySet[Allocation]:
        # An allocation names its pod, not its node: the node is the synced pod's.
        on_node = Pod.objects.filter(
            cluster_id=OuterRef("cluster_id"),
            namespace=OuterRef("pod_namespace"),
            name=OuterRef("pod_name"),
            node_name=value.strip(),
        )
        return qs.filter(Exists(on_node))


class InterfaceFilter(filters.FilterSet):
    """Pod interfaces (network-status entries) by node and pod."""

    node = filters.CharFilter(field_name="pod__node_name", label="Node")
    pod = filters.CharFilter(label="Pod (namespace/name, or name)", method="filter_pod")

    class Meta:
        model = PodInterface
        fields: list[str] = []

    def filter_pod(
        self, qs: QuerySet[PodInterface], name: str, value: str
    ) -> QuerySet[PodInterface]:
        namespace, _, pod = value.strip().rpartition("/")
        qs = qs.filter(pod__name=pod)
        return qs.filter(pod__namespace=namespace) if namespace else qs
