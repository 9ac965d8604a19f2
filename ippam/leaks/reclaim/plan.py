"""Step 1 of reclamation, plan: a dry run stored as a ReclaimRun with one
ReclaimItem per chosen finding, recording the pod uid the plan believed in."""

from __future__ import annotations

from django.db import transaction

from ippam.audit import Actor, acting_user, actor_name
from ippam.leaks.reclaim.common import ALLOCATION_KINDS, Outcome, ReclaimError
from ippam.leaks.rules.registry import RECLAIMABLE_KINDS
from ippam.models import (
    Cluster,
    Finding,
    IPPool,
    OverlappingRangeIPReservation,
    Pod,
    ReclaimItem,
    ReclaimRun,
)
from ippam.naming import split_podref


def _resolve_pool(cluster: Cluster, pool: IPPool | str) -> IPPool:
    if isinstance(pool, IPPool):
        return pool
    namespace, sep, name = pool.partition("/")
    if not sep:
        raise ReclaimError(f"pool {pool!r} must be NAMESPACE/NAME, e.g. kube-system/10.0.0.0-24")
    try:
        return IPPool.objects.get(cluster=cluster, namespace=namespace, name=name)
    except IPPool.DoesNotExist:
        raise ReclaimError(
            f"cluster {cluster.name} has no IPPool {pool}; list pools in the dashboard or sync first"
        ) from None


def reclaim_plan(
    *,
    cluster: Cluster,
    finding_ids: list[int] | None = None,
    pool: IPPool | str | None = None,
    include_suspect: bool = False,
    actor: Actor,
) -> ReclaimRun:
    """A dry run: one item per chosen finding (pool, key, IP, podref, why). Nothing is
    written to Kubernetes. Findings that cannot be reclaimed are kept as skipped items with
    the reason, so the person sees why they were left out."""
    findings = Finding.objects.filter(cluster=cluster).select_related("pool", "reservation")
    if finding_ids:
        wanted = {int(i) for i in finding_ids}
        findings = findings.filter(pk__in=wanted)
        missing = wanted - set(findings.values_list("pk", flat=True))
        if missing:
            raise ReclaimError(
                f"no finding {', '.join(map(str, sorted(missing)))} in cluster {cluster.name}; "
                "findings change with every sync: list them again with `manage.py leaks`"
            )
    else:
        findings = findings.filter(kind__in=RECLAIMABLE_KINDS)
    if pool is not None:
        findings = findings.filter(pool=_resolve_pool(cluster, pool))
    user = acting_user(actor)
    with transaction.atomic():
        run = ReclaimRun.objects.create(
            cluster=cluster,
            requested_by=user,
            actor=actor_name(actor),
            include_suspect=include_suspect,
        )
        items = [
            _plan_item(run, f, include_suspect)
            for f in findings.order_by("kind", "ip", "identity")
            if finding_ids or not _is_missing_reservation(f)
        ]
        _believed_pod_uids(cluster, items)
        ReclaimItem.objects.bulk_create(items)
    return run


def _believed_pod_uids(cluster: Cluster, items: list[ReclaimItem]) -> None:
    """Record the uid of each podref's pod as synced ("" when there was none): at execution
    a pod under that name with another uid is another pod."""
    names = {split_podref(i.podref) for i in items if i.podref}
    if not names:
        return
    uids = {
        (ns, name): uid
        for ns, name, uid in Pod.objects.filter(
            cluster=cluster,
            namespace__in={ns for ns, _ in names},
            name__in={name for _, name in names},
        ).values_list("namespace", "name", "uid")
    }
    for item in items:
        item.pod_uid = uids.get(split_podref(item.podref), "") if item.podref else ""


def finding_reclaim_offered(finding: Finding) -> bool:
    """Whether a finding on its own is offered for reclaiming: a leaked finding of a kind
    reclaiming frees, whose object exists. Not a suspect (its pool's "include suspects"
    reclaims it, after the person checked the pod), nor a finding whose remedy is
    restarting the pod (untracked, duplicate, a missing reservation): a plan of it would
    only skip it."""
    return (
        finding.kind in RECLAIMABLE_KINDS
        and finding.state == Finding.State.LEAKED
        and not _is_missing_reservation(finding)
    )


def _is_missing_reservation(finding: Finding) -> bool:
    return finding.kind == Finding.Kind.ORPHANED_RESERVATION and finding.reservation_id is None


def _plan_item(run: ReclaimRun, finding: Finding, include_suspect: bool) -> ReclaimItem:
    item = ReclaimItem(
        run=run,
        finding_identity=finding.identity,
        kind=finding.kind,
        ip=finding.ip,
        podref=finding.podref,
        why=finding.reason,
        allocation_key=finding.allocation_key,
    )
    if finding.pool is not None:
        item.pool_namespace, item.pool_name = finding.pool.namespace, finding.pool.name
    if finding.kind in ALLOCATION_KINDS:
        orip = (
            OverlappingRangeIPReservation.objects.filter(
                cluster=run.cluster_id, ip=finding.ip, podref=finding.podref
            )
            .values_list("namespace", "name")
            .first()
        )
        if orip:
            item.reservation_namespace, item.reservation_name = orip
    elif finding.reservation is not None:
        item.reservation_namespace = finding.reservation.namespace
        item.reservation_name = finding.reservation.name

    if finding.kind not in RECLAIMABLE_KINDS:
        item.outcome = Outcome.SKIPPED
        item.message = (
            f"{finding.get_kind_display()} findings are not reclaimed: {_advice(finding)}"
        )
    elif _is_missing_reservation(finding):
        item.outcome = Outcome.SKIPPED
        item.message = "the reservation is missing, there is nothing to delete: restart the pod to re-reserve it"
    elif finding.kind in ALLOCATION_KINDS and (finding.pool is None or not finding.allocation_key):
        item.outcome = Outcome.SKIPPED
        item.message = "the finding names no IPPool allocation any more; sync and plan again"
    elif finding.state == Finding.State.SUSPECT and not include_suspect:
        item.outcome = Outcome.SKIPPED
        item.message = "suspect, not leaked; reclaim it only with --include-suspect once you have checked the pod"
    return item


def _advice(finding: Finding) -> str:
    if finding.kind == Finding.Kind.DUPLICATE_ADDRESS:
        return "restart all but one of the pods that share the address"
    if finding.kind == Finding.Kind.UNTRACKED_ADDRESS:
        return "restart the pod so whereabouts allocates it a tracked address"
    return "fix the NAD ranges or network_name"
