"""The whole-cluster check `manage.py report --json` prints (in the spirit of `calicoctl ipam
check`), and reading such a report back as reclaim candidates.

The shape is stable and versioned (REPORT_VERSION); a change that removes or renames a field
bumps it:

    {"version": 1, "generated_at": ISO-8601,
     "clusters": [{
        "name", "sync_state", "last_good_sync", "sync_error",
        "summary": {"pools", "usable", "allocated", "free", "pools_full",
                    "findings", "leaked", "suspect", "problems"},
        "pools": [{"id", "namespace", "name", "range", "network_name", "node_name",
                   "usable", "allocated", "free", "utilization", "leaks", "problems"}],
        "findings": {KIND: [{"id", "identity", "state", "ip", "pool", "allocation_key",
                             "reservation", "podref", "node", "reason", "details",
                             "first_seen", "last_seen"}]},
        "problems": [{"object", "name", "problem"}]}]}

`pools_full`: pools with no free address. `problems`: what ippam could not read as
whereabouts and multus write it (a NAD config, an IPPool, a reservation, a node-slice pool,
a node, a pod's annotations) and a failed sync: the leak rules never act on these.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from ippam.models import (
    Cluster,
    Finding,
    IPPool,
    NetworkAttachmentDefinition,
    Node,
    NodeSlicePool,
    OverlappingRangeIPReservation,
    Pod,
)

REPORT_VERSION = 1


class ReportError(ValueError):
    """A report file that cannot be read as candidates; the message says what to do."""


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _problems(cluster: Cluster) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if cluster.sync_error:
        out.append({"object": "Cluster", "name": cluster.name, "problem": cluster.sync_error})
    kinds: Iterable[tuple[str, Any, str]] = (
        ("NetworkAttachmentDefinition", NetworkAttachmentDefinition, "problems"),
        ("IPPool", IPPool, "problems"),
        ("OverlappingRangeIPReservation", OverlappingRangeIPReservation, "problems"),
        ("NodeSlicePool", NodeSlicePool, "problems"),
        ("Node", Node, "problems"),
        ("Pod", Pod, "annotation_problems"),
    )
    for label, model, field in kinds:
        namespaced = label != "Node"
        rows = (
            model.objects.filter(cluster=cluster)
            .exclude(**{field: []})
            .order_by(*(["namespace", "name"] if namespaced else ["name"]))
            .values_list("namespace" if namespaced else "name", "name", field)
        )
        for namespace, name, problems in rows:
            ref = f"{namespace}/{name}" if namespaced else name
            out.extend({"object": label, "name": ref, "problem": str(p)} for p in problems)
    return out


def cluster_report(cluster: Cluster) -> dict[str, Any]:
    """One cluster's part of the report: pools with usage, findings by kind, problems."""
    pools = list(
        IPPool.objects.filter(cluster=cluster)
        .annotate(leaks=Count("findings", filter=Q(findings__state=Finding.State.LEAKED)))
        .order_by("namespace", "name")
    )
    pool_names = {p.pk: f"{p.namespace}/{p.name}" for p in pools}
    findings: dict[str, list[dict[str, Any]]] = {}
    for f in (
        Finding.objects.filter(cluster=cluster)
        .select_related("reservation")
        .order_by("kind", "ip", "identity")
    ):
        findings.setdefault(f.kind, []).append(
            {
                "id": f.pk,
                "identity": f.identity,
                "state": f.state,
                "ip": str(f.ip) if f.ip is not None else None,
                "pool": pool_names.get(f.pool_id) if f.pool_id else None,
                "allocation_key": f.allocation_key,
                "reservation": (
                    f"{f.reservation.namespace}/{f.reservation.name}" if f.reservation else None
                ),
                "podref": f.podref,
                "node": f.node_name,
                "reason": f.reason,
                "details": f.details,
                "first_seen": _iso(f.first_seen),
                "last_seen": _iso(f.last_seen),
            }
        )
    problems = _problems(cluster)
    every = [f for kind in findings.values() for f in kind]
    return {
        "name": cluster.name,
        "sync_state": cluster.sync_state,
        "last_good_sync": _iso(cluster.last_good_sync),
        "sync_error": cluster.sync_error,
        "summary": {
            "pools": len(pools),
            "usable": sum(p.numbers.usable for p in pools),
            "allocated": sum(p.numbers.allocated for p in pools),
            "free": sum(p.numbers.free for p in pools),
            "pools_full": sum(1 for p in pools if p.numbers.exhausted),
            "findings": len(every),
            "leaked": sum(1 for f in every if f["state"] == Finding.State.LEAKED),
            "suspect": sum(1 for f in every if f["state"] == Finding.State.SUSPECT),
            "problems": len(problems),
        },
        "pools": [
            {
                "id": p.pk,
                "namespace": p.namespace,
                "name": p.name,
                "range": p.range,
                "network_name": p.network_name,
                "node_name": p.node_name,
                "usable": p.numbers.usable,
                "allocated": p.numbers.allocated,
                "free": p.numbers.free,
                "utilization": p.numbers.utilization,
                "leaks": p.leaks,  # the annotation above
                "problems": p.problems,
            }
            for p in pools
        ],
        "findings": findings,
        "problems": problems,
    }


def report(clusters: Iterable[Cluster]) -> dict[str, Any]:
    return {
        "version": REPORT_VERSION,
        "generated_at": timezone.now().isoformat(),
        "clusters": [cluster_report(c) for c in clusters],
    }


def report_cluster_names(data: Any) -> list[str]:
    _check(data)
    return [c["name"] for c in data["clusters"]]


def _check(data: Any) -> None:
    """The report's shape, down to each finding's identity and ip: a hand-edited or tampered
    file is refused with the place that is wrong, before anything is looked up."""
    if not isinstance(data, dict) or not isinstance(data.get("clusters"), list):
        raise ReportError(
            "this is not an ippam report (no 'clusters' list); make one with "
            "`manage.py report --json > report.json`"
        )
    if data.get("version") != REPORT_VERSION:
        raise ReportError(
            f"report version {data.get('version')!r} is not {REPORT_VERSION}; make a new one "
            "with this ippam's `manage.py report --json`"
        )
    for n, entry in enumerate(data["clusters"]):
        where = f"clusters[{n}]"
        if not isinstance(entry, dict) or not _is_text(entry.get("name")):
            raise ReportError(f"{where} must be an object with a 'name' (text)")
        by_kind = entry.get("findings", {})
        if not isinstance(by_kind, dict):
            raise ReportError(f"{where}.findings must map a kind to a list of findings")
        for kind, items in by_kind.items():
            if not isinstance(items, list):
                raise ReportError(f"{where}.findings.{kind} must be a list of findings")
            for i, item in enumerate(items):
                if (
                    not isinstance(item, dict)
                    or not _is_text(item.get("identity"))
                    or not (item.get("ip") is None or _is_text(item.get("ip")))
                ):
                    raise ReportError(
                        f"{where}.findings.{kind}[{i}] must be an object with an 'identity' "
                        "(text) and an 'ip' (text or null)"
                    )


def _is_text(value: Any) -> bool:
    # PostgreSQL refuses NUL in a query: such text names no finding, and must not be a 500.
    return isinstance(value, str) and "\x00" not in value and len(value) <= 1000


def report_candidates(
    data: Any, *, cluster: Cluster
) -> tuple[list[int], list[tuple[str, str, str]]]:
    """The report's findings for `cluster` matched against the findings the database holds
    now: (ids of current findings to plan, [(identity, ip, why skipped)]).

    The report is only a list of candidates: a candidate counts only while a current finding
    has the same identity and address, and even then the reclaim plan and its live re-check
    decide (ippam.leaks.reclaim re-reads the cluster before any write): whereabouts may have
    handed the address to a new pod since the file was written. Nothing in the file is
    trusted beyond naming what to look at."""
    _check(data)
    entries = [c for c in data["clusters"] if isinstance(c, dict) and c.get("name") == cluster.name]
    if not entries:
        raise ReportError(
            f"the report has no cluster named {cluster.name!r} "
            f"(it has: {', '.join(report_cluster_names(data)) or 'none'})"
        )
    candidates: list[dict[str, Any]] = []
    for entry in entries:
        for items in entry.get("findings", {}).values():
            candidates.extend(items)
    identities = {c["identity"] for c in candidates}
    current = {
        f.identity: f for f in Finding.objects.filter(cluster=cluster, identity__in=identities)
    }
    chosen: list[int] = []
    skipped: list[tuple[str, str, str]] = []
    for c in candidates:
        identity, ip = c["identity"], c.get("ip") or ""
        finding = current.get(identity)
        if finding is None:
            skipped.append((identity, ip, "no current finding: fixed or freed since the report"))
        elif str(finding.ip or "") != ip:
            skipped.append((identity, ip, f"the current finding names {finding.ip}, not {ip}"))
        elif finding.pk not in chosen:
            chosen.append(finding.pk)
    return chosen, skipped
