"""Applying watch events: the same rows as a full sync, a few objects at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import OperationalError, connection, transaction

from ippam import models as m
from ippam.kube.resources import BY_KIND
from ippam.sync import store
from ippam.sync.full import MODELS, record_for
from ippam.sync.nodeslice import node_slices_refresh
from ippam.sync.records.common import object_key
from ippam.sync.records.common import resource_version as object_resource_version
from ippam.sync.records.events import event_record

logger = logging.getLogger(__name__)


class ClusterBusy(Exception):
    """Another transaction (a full sync) holds the cluster row: apply this later."""


def _cluster_locked(cluster_id: int, *, wait: bool) -> m.Cluster:
    """The cluster row, locked for this transaction: every writer of a cluster's rows takes
    it first. `wait=False` (PostgreSQL): raise ClusterBusy instead of waiting, so a watcher
    serving many clusters is not stalled for all of them while one is fully synced."""
    nowait = not wait and connection.vendor == "postgresql"
    try:
        return (
            m.Cluster.objects.select_for_update(nowait=nowait)
            .only("id", "sync_generation", "resource_versions")
            .get(pk=cluster_id)
        )
    except OperationalError as exc:
        if nowait and getattr(exc.__cause__, "sqlstate", None) == "55P03":  # lock_not_available
            raise ClusterBusy(f"cluster {cluster_id} is being written by a full sync") from exc
        raise


def network_names_for(cluster_id: int) -> list[str]:
    names = set(
        m.NADRange.objects.filter(cluster_id=cluster_id)
        .exclude(network_name="")
        .values_list("network_name", flat=True)
    )
    return sorted(names, key=lambda n: (-len(n), n))


def objects_apply(
    *,
    cluster_id: int,
    kind: str,
    events: Iterable[tuple[str, dict[str, Any]]],
    resource_version: str = "",
    wait: bool = True,
) -> dict[str, int]:
    """Apply (type, object) watch events of one kind, in order; the last event per object wins.

    `type` is ADDED, MODIFIED or DELETED. When `resource_version` is given it is stored as
    where the watch of this kind resumes, in the same transaction as the rows.
    Returns {"upserted": n, "deleted": n}.
    """
    resource = BY_KIND[kind]
    latest: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    for event_type, obj in events:
        if kind == "events":
            latest[("", str((obj.get("metadata") or {}).get("uid") or ""))] = (event_type, obj)
        else:
            latest[object_key(obj, resource.namespaced)] = (event_type, obj)
    with transaction.atomic():
        store.constraints_immediate()
        cluster = _cluster_locked(cluster_id, wait=wait)
        generation = cluster.sync_generation
        upserts = [obj for event_type, obj in latest.values() if event_type != "DELETED"]
        removed = [key for key, (event_type, _obj) in latest.items() if event_type == "DELETED"]
        result = {"upserted": 0, "deleted": 0}
        if kind == "events":
            cutoff = store.events_retained_since()
            rows = [
                rec for obj in upserts if (rec := event_record(obj, not_before=cutoff)) is not None
            ]
            store.events_write(cluster_id, generation, rows)
            result["upserted"] = len(rows)
        else:
            network_names = network_names_for(cluster_id) if kind == "reservations" else []
            records = [
                rec for rec in (record_for(kind, obj, network_names) for obj in upserts) if rec
            ]
            known = store.key_map(MODELS[kind], cluster_id, resource.namespaced, keys=latest)
            gone_ids = [known[key][0] for key in removed if key in known]
            if kind == "nads":
                store.nads_write(cluster_id, generation, records)
            elif kind == "ippools":
                store.pools_write(cluster_id, generation, records)
            elif kind == "pods":
                store.pods_write(cluster_id, generation, records)
            else:
                writers: dict[str, Callable[..., None]] = {
                    "reservations": store.reservations_write,
                    "nodeslicepools": store.nodeslicepools_write,
                    "nodes": store.nodes_write,
                }
                writers[kind](cluster_id, generation, records)
            result["deleted"] = store.objects_delete(kind, gone_ids)
            result["upserted"] = len(records)
            if kind in ("nads", "ippools"):
                store.links_refresh(cluster_id)
            if kind in ("nads", "ippools", "nodeslicepools"):
                node_slices_refresh(cluster_id)
            if kind == "nads":
                store.pools_refresh_usage(cluster_id)
            elif kind == "ippools" and records:
                names = [rec.row.name for rec in records]
                store.pools_refresh_usage(cluster_id, store.pool_ids_by_name(cluster_id, names))
        if resource_version:
            versions = dict(cluster.resource_versions or {})
            versions[kind] = resource_version
            m.Cluster.objects.filter(pk=cluster_id).update(resource_versions=versions)
    return result


def kind_replace(
    *,
    cluster_id: int,
    kind: str,
    objects: list[dict[str, Any]],
    resource_version: str = "",
    wait: bool = True,
) -> dict[str, int]:
    """Make the rows of one kind match a complete list of it (the watcher's re-list on 410).

    Like a full sync restricted to one kind: upsert what changed, delete what is gone.
    Events are only added (they leave by age, not by absence from the API).
    """
    resource = BY_KIND[kind]
    with transaction.atomic():
        store.constraints_immediate()
        cluster = _cluster_locked(cluster_id, wait=wait)
        result = {"upserted": 0, "deleted": 0}
        if kind == "events":
            cutoff = store.events_retained_since()
            rows = [
                rec for obj in objects if (rec := event_record(obj, not_before=cutoff)) is not None
            ]
            store.events_write(cluster_id, cluster.sync_generation, rows)
            result["upserted"] = len(rows)
        else:
            known = store.key_map(MODELS[kind], cluster_id, resource.namespaced)
            listed = {
                object_key(obj, resource.namespaced): obj
                for obj in objects
                if isinstance(obj, dict)
            }
            changed = [
                obj
                for key, obj in listed.items()
                if not store.unchanged(
                    known.get(key), store.object_uid(obj), object_resource_version(obj)
                )
            ]
            gone = [key for key in known if key not in listed]
        if kind != "events":
            result = objects_apply(
                cluster_id=cluster_id,
                kind=kind,
                events=[("MODIFIED", obj) for obj in changed]
                + [("DELETED", _stub(key)) for key in gone],
            )
        if resource_version:
            versions = dict(cluster.resource_versions or {})
            versions[kind] = resource_version
            m.Cluster.objects.filter(pk=cluster_id).update(resource_versions=versions)
    return result


def _stub(key: tuple[str, str]) -> dict[str, Any]:
    return {"metadata": {"namespace": key[0], "name": key[1]}}
