"""NAD creation (a write service) and the overlap look-up the NAD form warns with."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from netaddr import IPAddress, IPNetwork

from ippam.audit import audit_record
from ippam.fields import ip_to_key
from ippam.kube.client import KubeError
from ippam.kube.nads import WriteOutcomeUnknown, create_nad, get_nad
from ippam.models import AuditEntry, Cluster, IPPool, NADRange, NetworkAttachmentDefinition
from ippam.naming import pool_name
from ippam.overlaps import OverlapSide, OverlapVerdict, overlap_verdict

__all__ = [
    "NADCreateError",
    "RangeOverlap",
    "nad_create",
    "nad_create_settle",
    "nad_range_overlaps",
    "overlap_messages",
]

log = logging.getLogger(__name__)

# The re-read that settles a timed-out create: one small GET, so a short wait is plenty, and
# the web request stays well inside gunicorn's 30 s worker timeout (write + re-read).
SETTLE_READ_TIMEOUT = 3.0
# When the re-read fails too, a Celery task tries again this much later (then with backoff).
SETTLE_LATER_COUNTDOWN = 30.0
SETTLE_TASK = "ippam.tasks.settle_nad_create"

OUTCOME_CREATED = "created"
OUTCOME_REFUSED = "refused"
OUTCOME_FAILED = "failed"
OUTCOME_NOT_CREATED = "not created"
OUTCOME_UNKNOWN = "unknown"


class NADCreateError(Exception):
    """The NAD was not created, or may not have been; ``sentence`` says so for the form.

    ``outcome`` is the audit's word: refused (the API said no), failed (nothing reached the
    API), not created (no answer, and a re-read shows no such NAD), unknown (no answer, and
    the re-read failed too).
    """

    def __init__(
        self, message: str, *, status: int = 0, reason: str = "", outcome: str = OUTCOME_REFUSED
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.outcome = outcome

    @property
    def name_taken(self) -> bool:
        return self.status == 409

    @property
    def sentence(self) -> str:
        if self.outcome == OUTCOME_REFUSED:
            return f"The cluster refused the NAD: {self.message}"
        if self.outcome == OUTCOME_FAILED:
            return f"The NAD was not created: {self.message}"
        return self.message


def _audit(
    *, actor, cluster: Cluster, target: str, after: Any, outcome: str, message: str
) -> AuditEntry:
    return audit_record(
        actor=actor,
        action=AuditEntry.Action.NAD_CREATE,
        cluster=cluster,
        target=target,
        before=None,
        after=after,
        outcome=outcome,
        message=message,
    )


def _write_timeout() -> float:
    return float(getattr(settings, "IPPAM_KUBE_WRITE_TIMEOUT", 8.0))


def _is_ours(obj: dict[str, Any], manifest: dict[str, Any]) -> bool:
    """Whether the stored object carries what we sent (the apiserver adds uid, timestamps and
    the like, and may default fields, but keeps the spec and our labels and annotations)."""
    if obj.get("spec") != manifest.get("spec"):
        return False
    sent = manifest.get("metadata") or {}
    have = obj.get("metadata") or {}
    return all(
        ((have.get(key) or {}).get(k) == v for k, v in (sent.get(key) or {}).items())
        for key in ("labels", "annotations")
    )


def _settle_read(cluster: Cluster, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Re-read the NAD named by ``manifest``; None when it does not exist. KubeError when the
    apiserver cannot say."""
    metadata = manifest.get("metadata") or {}
    return get_nad(
        cluster,
        metadata.get("namespace") or "default",
        metadata.get("name", ""),
        timeout=SETTLE_READ_TIMEOUT,
    )


def _enqueue_settle(entry_id: int) -> None:
    # Queued by name: ippam.tasks imports this module to run the settle.
    try:
        current_app.send_task(
            SETTLE_TASK, args=[entry_id], countdown=SETTLE_LATER_COUNTDOWN, retry=False
        )
    except Exception as exc:  # any broker failure: the entry stays "unknown", and says how to check
        log.warning("audit entry %s: the settle task could not be queued: %s", entry_id, exc)


def nad_create(*, cluster: Cluster, manifest: dict[str, Any], actor) -> NetworkAttachmentDefinition:
    """Create the NAD through the API, record it in the audit log, and sync it into the DB.

    A refusal (409 name taken, 422 invalid) or an unreachable API is audited too and raised
    as NADCreateError with the API server's own message. When the create was sent but no
    answer came within IPPAM_KUBE_WRITE_TIMEOUT, the NAD may exist: one GET settles it
    (created, or not created); if that GET fails as well the audit says "unknown" and a
    Celery task settles it later.
    """
    metadata = manifest.get("metadata") or {}
    namespace = metadata.get("namespace") or "default"
    name = metadata.get("name", "")
    target = f"{namespace}/{name}"
    write_timeout = _write_timeout()
    audit = partial(_audit, actor=actor, cluster=cluster, target=target, after=manifest)
    try:
        created = create_nad(cluster, manifest, timeout=write_timeout)
    except WriteOutcomeUnknown as exc:
        return _nad_create_settle_now(
            cluster=cluster, manifest=manifest, target=target, error=exc, audit=audit
        )
    except KubeError as exc:
        outcome = OUTCOME_REFUSED if exc.status else OUTCOME_FAILED
        audit(outcome=outcome, message=exc.message)
        raise NADCreateError(
            exc.message, status=exc.status, reason=exc.reason, outcome=outcome
        ) from exc
    # The audit entry first, on its own: the NAD exists in the cluster from here on, even if
    # writing its row fails (the next sync or watch event would then bring it in).
    audit(
        outcome=OUTCOME_CREATED,
        message=f"uid {(created.get('metadata') or {}).get('uid', '?')}",
    )
    nad = _nad_sync_one(cluster, created)
    return nad


def _nad_create_settle_now(
    *,
    cluster: Cluster,
    manifest: dict[str, Any],
    target: str,
    error: WriteOutcomeUnknown,
    audit: partial[AuditEntry],
) -> NetworkAttachmentDefinition:
    """The create got no answer: re-read the NAD once and say what really happened."""
    namespace, _, name = target.partition("/")
    try:
        obj = _settle_read(cluster, manifest)
    except KubeError as read_error:
        entry = audit(
            outcome=OUTCOME_UNKNOWN,
            message=f"{error.message}; the re-read failed too ({read_error.message}). "
            "ippam re-reads it later and records the outcome here.",
        )
        # After commit: the task must find the entry it is to settle.
        transaction.on_commit(partial(_enqueue_settle, entry.pk))
        raise NADCreateError(
            f"The API server did not answer within {_write_timeout():g} s, and re-reading "
            f"{target} failed too: whether the NAD was created is unknown. Check with "
            f"`kubectl get network-attachment-definitions -n {namespace} {name}`; ippam "
            "re-checks in the background and records the outcome in the audit log. Submitting "
            "again is safe: if it was created, the cluster answers that the name is taken.",
            outcome=OUTCOME_UNKNOWN,
        ) from error
    if obj is None:
        audit(
            outcome=OUTCOME_NOT_CREATED,
            message=f"{error.message}; a re-read shows it does not exist.",
        )
        raise NADCreateError(
            f"The API server did not answer within {_write_timeout():g} s, and a re-read "
            f"shows {target} does not exist: the NAD was not created. You may submit again "
            "(should the server still finish the late request, the new attempt says the name "
            "is taken).",
            outcome=OUTCOME_NOT_CREATED,
        ) from error
    if not _is_ours(obj, manifest):
        audit(
            outcome=OUTCOME_NOT_CREATED,
            message=f"{error.message}; a re-read found {target} with a different spec: "
            "another one by that name, not the one submitted.",
        )
        raise NADCreateError(
            f"The API server did not answer in time, and {target} now exists with a different "
            "config: it is not the one submitted. Choose another name, or look at the "
            "existing NAD.",
            status=409,
            outcome=OUTCOME_NOT_CREATED,
        ) from error
    uid = (obj.get("metadata") or {}).get("uid", "?")
    audit(
        outcome=OUTCOME_CREATED,
        message=f"created (settled after timeout): {error.message}; a re-read found it with "
        f"the content sent, uid {uid}.",
    )
    return _nad_sync_one(cluster, obj)


def nad_create_settle(*, entry_id: int) -> str:
    """Settle a NAD create whose audit entry says "unknown": re-read the NAD and record
    whether it exists with the content sent. Returns the entry's outcome (unchanged when it
    was already settled); raises KubeError when the apiserver still cannot say."""
    entry = AuditEntry.objects.select_related("cluster").get(pk=entry_id)
    if entry.outcome != OUTCOME_UNKNOWN or entry.action != AuditEntry.Action.NAD_CREATE:
        return entry.outcome
    manifest = entry.after if isinstance(entry.after, dict) else {}
    if entry.cluster is None:
        return entry.outcome  # the cluster was removed: nothing left to ask
    obj = _settle_read(entry.cluster, manifest)
    when = timezone.now().strftime("%Y-%m-%d %H:%M:%S %Z")
    if obj is not None and _is_ours(obj, manifest):
        outcome = OUTCOME_CREATED
        uid = (obj.get("metadata") or {}).get("uid", "?")
        message = (
            f"created (settled later, {when}): a re-read found it with the content sent, uid {uid}."
        )
    elif obj is not None:
        outcome = OUTCOME_NOT_CREATED
        message = (
            f"not created (settled later, {when}): {entry.target} exists with a different spec."
        )
    else:
        outcome = OUTCOME_NOT_CREATED
        message = (
            f"not created (settled later, {when}): a re-read shows {entry.target} does not exist."
        )
    # Conditional: two settles racing record one outcome, the first.
    settled = AuditEntry.objects.filter(pk=entry.pk, outcome=OUTCOME_UNKNOWN).update(
        outcome=outcome, message=f"{message} First: {entry.message}"
    )
    if settled and obj is not None and outcome == OUTCOME_CREATED:
        _nad_sync_one(entry.cluster, obj)
    return outcome if settled else AuditEntry.objects.get(pk=entry.pk).outcome


def _nad_sync_one(cluster: Cluster, obj: dict[str, Any]) -> NetworkAttachmentDefinition:
    """Upsert the one NAD the API just returned, as a watch event would, so that its page
    exists now rather than after the next sync (the watch applies the same event again,
    harmlessly)."""
    from ippam.sync import objects_apply

    objects_apply(cluster_id=cluster.pk, kind="nads", events=[("ADDED", obj)])
    meta = obj.get("metadata") or {}
    return NetworkAttachmentDefinition.objects.get(
        cluster=cluster, namespace=meta.get("namespace", "default"), name=meta.get("name", "")
    )


# --- reads for the form -------------------------------------------------------------------


@dataclass(frozen=True)
class RangeOverlap:
    """An existing NAD range or IPPool whose addresses intersect a proposed range, and the
    verdict on the pair (ippam.overlaps: the same one the leak rule gives)."""

    what: str  # "NAD default/foo" or "IPPool kube-system/10.0.0.0-24"
    range: str
    network_name: str
    verdict: OverlapVerdict
    # The verdict with OTHER in place of the other range's label: overlaps with the same
    # cause share it, so a wide range says each cause once (see `overlap_messages`).
    cause: str = ""

    @property
    def hazard(self) -> bool:
        return self.verdict.hazard

    @property
    def message(self) -> str:
        prefix = "" if self.verdict.hazard else "Note: "
        return prefix + self.verdict.sentence[:1].upper() + self.verdict.sentence[1:] + "."


OTHER = "\x00other\x00"  # no label contains it


def overlap_messages(overlaps: list[RangeOverlap]) -> list[str]:
    """One warning per cause: the overlaps whose verdict is the same but for the other
    range's name are said in one sentence naming them all (a /8 overlapping six NADs the
    same way is one warning, not six near-identical ones). Hazards first."""
    groups: dict[str, list[RangeOverlap]] = {}
    for overlap in overlaps:
        groups.setdefault(overlap.cause or overlap.message, []).append(overlap)
    ordered = sorted(groups.values(), key=lambda group: not group[0].hazard)
    messages: list[str] = []
    for group in ordered:
        if len(group) == 1 or not group[0].cause:
            messages.extend(overlap.message for overlap in group)
            continue
        labels = [f"{o.what} ({o.range})" for o in group]
        named = f"{', '.join(labels[:-1])} and {labels[-1]}"
        prefix = "" if group[0].hazard else "Note: "
        text = group[0].cause.replace(OTHER, named)
        messages.append(prefix + text[:1].upper() + text[1:] + ".")
    return messages


# The IPv4 keys (ippam.fields: mapped into ::ffff:0:0/96). An IPv6 range such as ::/64
# spans them as keys, but never shares an address with an IPv4 range.
_V4_KEYS = (ip_to_key(IPAddress(0, 4)), ip_to_key(IPAddress(2**32 - 1, 4)))
LIMIT = 20


def nad_range_overlaps(
    *,
    cluster: Cluster,
    range_cidr: str,
    network_name: str,
    enable_overlapping_ranges: bool = True,
) -> list[RangeOverlap]:
    """NAD ranges and IPPools of ``cluster`` that intersect ``range_cidr`` in its IP family,
    each with its verdict (one query each; at most LIMIT of each)."""
    net = IPNetwork(range_cidr).cidr
    first = IPAddress(net.first, net.version)
    last = IPAddress(net.last, net.version)
    wanted_pool = pool_name(str(net), network_name)
    proposed = OverlapSide(
        f"this range ({net})", network_name, enable_overlapping_ranges, wanted_pool
    )
    found: list[RangeOverlap] = []
    seen_pools: set[str] = set()
    ranges = NADRange.objects.filter(cluster=cluster, first_ip__lte=last, last_ip__gte=first)
    pools = IPPool.objects.filter(cluster=cluster, first_ip__lte=last, last_ip__gte=first)
    if net.version == 6:
        ranges = ranges.exclude(first_ip__range=_V4_KEYS)
        pools = pools.exclude(first_ip__range=_V4_KEYS)
    for r in ranges.select_related("nad").order_by("nad__namespace", "nad__name", "position")[
        :LIMIT
    ]:
        seen_pools.add(r.pool_name)
        label = f"NAD {r.nad.namespace}/{r.nad.name} ({r.range})"
        found.append(
            _overlap(
                proposed,
                f"NAD {r.nad.namespace}/{r.nad.name}",
                r.range,
                OverlapSide(label, r.network_name, r.enable_overlapping_ranges, r.pool_name),
            )
        )
    for p in pools.exclude(name__in=seen_pools).order_by("namespace", "name")[:LIMIT]:
        # No NAD we know of feeds this pool (its config lives elsewhere, e.g. a flat file on
        # the nodes): assume whereabouts' default, reservations on.
        label = f"IPPool {p.namespace}/{p.name} ({p.range})"
        found.append(
            _overlap(
                proposed,
                f"IPPool {p.namespace}/{p.name}",
                p.range,
                OverlapSide(label, p.network_name, True, p.name),
            )
        )
    return found


def _overlap(proposed: OverlapSide, what: str, cidr: str, other: OverlapSide) -> RangeOverlap:
    anonymous = OverlapSide(OTHER, other.network_name, other.reservations, other.pool_name)
    return RangeOverlap(
        what=what,
        range=cidr,
        network_name=other.network_name,
        verdict=overlap_verdict(proposed, other),
        cause=overlap_verdict(proposed, anonymous).sentence,
    )
