"""Leak findings: the filtered list, counts per kind and state, and the alert, pod and node
each finding of a page shows.
"""

from __future__ import annotations

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from ippam.findingkinds import MISSING_RESERVATION, RECLAIMABLE, finding_remedy, finding_section
from ippam.ipparse import input_ip
from ippam.models import Alert, Cluster, Finding, Pod
from ippam.selectors.shared import nodes_named, pods_by_ref, scoped
from ippam.userinput import clean_query


def finding_list(
    *,
    cluster: Cluster | None = None,
    kind: str = "",
    state: str = "",
    q: str = "",
    pool_id: int | None = None,
) -> QuerySet[Finding]:
    qs = scoped(Finding.objects.all(), cluster)
    if pool_id is not None:
        qs = qs.filter(pool_id=pool_id)
    if kind in Finding.Kind.values:
        qs = qs.filter(kind=kind)
    if state in Finding.State.values:
        qs = qs.filter(state=state)
    qs = findings_matching(qs, q)
    return qs.select_related("cluster", "pool", "nad", "reservation").order_by("kind", "ip", "pk")


def findings_reclaimable_first(qs: QuerySet[Finding]) -> QuerySet[Finding]:
    """The leaks page's order: reclaimable leaks, then hazards; each by kind and address."""
    missing_reservation = Q(kind=Finding.Kind.ORPHANED_RESERVATION, reservation__isnull=True)
    section = Case(
        When(Q(kind__in=RECLAIMABLE) & ~missing_reservation, then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )
    return qs.order_by(section, "kind", "ip", "pk")


def attach_finding_sections(findings: list[Finding]) -> None:
    """Give each finding `.section` (reclaimable or hazard), `.group` (its kind's label, a
    missing reservation told apart) and `.remedy` (ippam.findingkinds)."""
    for f in findings:
        has_reservation = f.reservation_id is not None
        f.section = finding_section(f.kind, has_reservation=has_reservation)  # type: ignore[attr-defined]
        f.remedy = finding_remedy(f.kind, has_reservation=has_reservation)  # type: ignore[attr-defined]
        missing = f.kind == Finding.Kind.ORPHANED_RESERVATION and not has_reservation
        f.group = MISSING_RESERVATION if missing else f.get_kind_display()  # type: ignore[attr-defined]


def findings_matching(qs: QuerySet[Finding], q: str) -> QuerySet[Finding]:
    """Findings of an IP, or whose podref, node or reason contains the text."""
    q = clean_query(q)
    if not q:
        return qs
    ip = input_ip(q)
    if ip is not None:
        return qs.filter(ip=ip)
    return qs.filter(Q(podref__icontains=q) | Q(node_name__icontains=q) | Q(reason__icontains=q))


def finding_counts(*, cluster: Cluster | None = None) -> list[tuple[str, str, int, int]]:
    """(kind, label, leaked, suspect) for every kind that has findings."""
    labels = dict(Finding.Kind.choices)
    counts: dict[str, list[int]] = {}
    for kind, state, c in (
        scoped(Finding.objects.all(), cluster)
        .order_by()
        .values("kind", "state")
        .annotate(c=Count("pk"))
        .values_list("kind", "state", "c")
    ):
        slot = counts.setdefault(kind, [0, 0])
        slot[0 if state == Finding.State.LEAKED else 1] += c
    return [(k, labels.get(k, k), v[0], v[1]) for k, v in sorted(counts.items())]


def attach_finding_context(findings: list[Finding]) -> None:
    """Give each finding of a page `.alert`, `.pod` and `.node`: three queries for the page."""
    if not findings:
        return
    alert_q = Q()
    for f in findings:
        alert_q |= Q(cluster_id=f.cluster_id, identity=f.identity)
    alerts = {
        (a.cluster_id, a.identity): a
        for a in Alert.objects.filter(alert_q).select_related("acknowledged_by")
    }
    pods: dict[tuple[int, str, str], Pod] = {}
    by_cluster: dict[int, set[tuple[str, str]]] = {}
    for f in findings:
        if "/" in f.podref:
            ns, name = f.podref.split("/", 1)
            by_cluster.setdefault(f.cluster_id, set()).add((ns, name))
    for cid, refs in by_cluster.items():
        pods.update({(cid, *k): v for k, v in pods_by_ref(cid, refs).items()})
    node_names: dict[int, set[str]] = {}
    for f in findings:
        pod = None
        if "/" in f.podref:
            ns, name = f.podref.split("/", 1)
            pod = pods.get((f.cluster_id, ns, name))
        f.pod = pod
        name = f.node_name or (pod.node_name if pod else "")
        if name:
            node_names.setdefault(f.cluster_id, set()).add(name)
    nodes = nodes_named(node_names)
    for f in findings:
        f.alert = alerts.get((f.cluster_id, f.identity))
        name = f.node_name or (f.pod.node_name if f.pod else "")
        f.node = nodes.get((f.cluster_id, name)) if name else None


def finding_get(*, finding_id: int) -> Finding:
    """One finding with the context its leaks-page row shows (alert, pod, node).

    Raises Finding.DoesNotExist. Four queries, whatever the finding: the row re-rendered
    after its alert was acknowledged.
    """
    finding = Finding.objects.select_related("cluster", "pool", "nad").get(pk=finding_id)
    attach_finding_context([finding])
    attach_finding_sections([finding])
    return finding
