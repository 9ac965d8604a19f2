"""The full sync: list everything, then write it all in one transaction.

Order of work, and why:

0. Ask which cluster answers (the kube-system namespace's uid and the current
   resourceVersion). A cluster rebuilt under the same name (kind/k3d re-create, etcd
   restore) serves the same resourceVersions for new objects: if the uid changed or the
   resourceVersion went backwards, nothing stored can be trusted to be unchanged, so the
   sync re-reads and replaces everything and says so on the cluster (`sync_notice`).
1. Snapshot what the database holds for the cluster: (namespace, name) -> (id,
   resourceVersion, uid) per kind. Objects whose uid and resourceVersion have not moved
   are not parsed or written again; a resync of an idle cluster writes almost nothing.
2. List every kind, page by page, turning each page into rows right away (the raw JSON of a
   big cluster is hundreds of MB; the rows are a fraction of that). If any list fails or
   is cut short, the sync stops here and nothing is written or deleted: the database keeps
   the last good data, and the cluster shows the error and that data's age.
3. In one transaction: upsert what changed, delete what the snapshot had and the lists no
   longer have (rows the watcher added meanwhile are not in the snapshot, so they stay),
   repair links by name, recompute pool usage, expire old events, record the outcome.

Every written row is stamped with this sync's generation (`Cluster.sync_generation`).
"""

from __future__ import annotations

import functools
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from ippam import models as m
from ippam.kube.client import KubeError, api_client_for
from ippam.kube.resources import (
    BY_KIND,
    MAX_LIST_RESTARTS,
    RESOURCES,
    ClusterIdentity,
    Resource,
    cluster_identity,
    objects_list,
)
from ippam.signals import sync_finished
from ippam.sync import store
from ippam.sync.nodeslice import node_slices_refresh
from ippam.sync.records.common import object_key, resource_version
from ippam.sync.records.events import event_record
from ippam.sync.records.nads import NadRecord, nad_record
from ippam.sync.records.nodes import node_record
from ippam.sync.records.nodeslices import nodeslicepool_record
from ippam.sync.records.packing import (
    Packed,
    pack_pod,
    pack_reservation,
    unpack_pod,
    unpack_reservation,
)
from ippam.sync.records.pods import pod_record
from ippam.sync.records.pools import pool_record
from ippam.sync.records.reservations import reservation_record

logger = logging.getLogger(__name__)


MODELS: dict[str, type[Any]] = {
    "nads": m.NetworkAttachmentDefinition,
    "ippools": m.IPPool,
    "reservations": m.OverlappingRangeIPReservation,
    "nodeslicepools": m.NodeSlicePool,
    "nodes": m.Node,
    "pods": m.Pod,
    "events": m.PodEvent,
}

# Bump when records.py parses differently: unchanged objects are then parsed again.
PARSER_VERSION = "2"

Progress = Callable[[str, str, int], None]  # (kind, phase, count)


# Objects parsed before their rows are written (PostgreSQL streams; see `_stream_sync`).
# 10,000 beat 2,000 at scale (36-37 s against 40 s): fewer, bigger COPYs; ~320 MB peak.
# An IPPool counts as its allocations: at scale 2,000 pools hold 150k of them, which as one
# batch were written only after the last pool was listed, with nothing to overlap.
WRITE_BATCH = 10000


@dataclass
class Fetched:
    resource: Resource
    listed: int = 0
    records: list[Any] = field(default_factory=list)
    seen: set[tuple[str, str]] = field(default_factory=set)
    resource_version: str = ""
    absent: bool = False
    requests: int = 0


class ListRestarted(Exception):
    """A list restarted (expired continue token) after some of it was written: start over."""


def _build(kind: str, obj: dict[str, Any], network_names: list[str]) -> Any:
    if kind == "nads":
        return nad_record(obj)
    if kind == "ippools":
        return pool_record(obj)
    if kind == "reservations":
        return reservation_record(obj, network_names)
    if kind == "nodeslicepools":
        return nodeslicepool_record(obj)
    if kind == "nodes":
        return node_record(obj)
    if kind == "pods":
        return pod_record(obj)
    raise ValueError(kind)


def record_for(kind: str, obj: dict[str, Any], network_names: list[str] | None = None) -> Any:
    """Rows for one object; malformed objects become rows with problems, never errors."""
    try:
        return _build(kind, obj, network_names or [])
    except Exception:  # noqa: BLE001 - one odd object must not stop a sync
        logger.exception("%s %s: could not be read; skipped", kind, object_key(obj))
        return None


Sink = Callable[[list[Any]], None]


def _fetch(
    api: Any,
    resource: Resource,
    known: store.KeyMap,
    network_names: list[str],
    *,
    force: bool,
    progress: Progress | None,
    sink: Sink | None = None,
) -> Fetched:
    """List one kind and turn its objects into records.

    Without `sink` the records are kept (packed) in the returned Fetched until the whole
    cluster is listed. With `sink` they are handed over WRITE_BATCH at a time as the list
    goes, and a list that restarts raises ListRestarted (what was handed over is stale).
    """
    kind = resource.kind
    fetched = Fetched(resource)
    packed: Packed | None = None
    if sink is None and kind == "pods":
        packed = fetched.records = Packed(unpack_pod)  # type: ignore[assignment]
    elif sink is None and kind == "reservations":
        packed = fetched.records = Packed(unpack_reservation)  # type: ignore[assignment]
    batch: list[Any] = fetched.records if sink is None else []
    batch_rows = 0
    listing = objects_list(api, resource, page_size=settings.IPPAM_LIST_PAGE_SIZE)
    cutoff = store.events_retained_since()
    # Enough pages in flight that listing goes on while a batch is written.
    depth = 2 if sink is None else min(8, 2 + WRITE_BATCH // max(1, settings.IPPAM_LIST_PAGE_SIZE))
    for page in listing.pages_prefetched(depth=depth):
        if page.restarted:
            if sink is not None and fetched.listed:
                raise ListRestarted(listing.restart_reason)
            fetched.records.clear()
            fetched.seen.clear()
            fetched.listed = 0
        for obj in page.items:
            if not isinstance(obj, dict):
                continue
            fetched.listed += 1
            if kind == "events":
                try:
                    event = event_record(obj, not_before=cutoff)
                except Exception:  # noqa: BLE001 - one odd event must not stop a sync
                    logger.exception("event %s: could not be read; skipped", object_key(obj))
                    continue
                if event is not None:
                    batch.append(event)
                continue
            key, uid, version = _identity(obj, resource.namespaced)
            if key in fetched.seen:  # an API server lists each object once; never twice
                logger.warning("%s %s/%s: listed twice; the first kept", kind, *key)
                continue
            fetched.seen.add(key)
            if not force and kind != "nads" and store.unchanged(known.get(key), uid, version):
                continue  # the same object, unchanged since we last wrote it
            record = record_for(kind, obj, network_names)
            if record is None:
                continue
            if packed is None:
                batch.append(record)
                if kind == "ippools" and sink is not None:
                    batch_rows += len(record.allocations)
                    if batch_rows >= WRITE_BATCH:
                        sink(batch)
                        batch, batch_rows = [], 0
            elif kind == "pods":
                packed.append(pack_pod(record))
                packed.interfaces += len(record.interfaces)
            else:
                packed.append(pack_reservation(record))
        if sink is not None and len(batch) >= WRITE_BATCH:
            sink(batch)
            batch, batch_rows = [], 0
        if progress:
            progress(kind, "listing", fetched.listed)
    if sink is not None:
        sink(batch)  # the last batch, empty or not: the writer sees every kind once at least
    fetched.resource_version = listing.resource_version
    fetched.absent = listing.absent
    fetched.requests = listing.requests
    return fetched


def _identity(obj: dict[str, Any], namespaced: bool) -> tuple[tuple[str, str], str, str]:
    """(key, uid, resourceVersion) of a listed object, its metadata read once: on a resync
    this is all the work most objects get, 300k times at scale. Odd metadata takes the
    careful readers (the same values, slower)."""
    meta = obj.get("metadata")
    if type(meta) is dict:
        namespace = meta.get("namespace") if namespaced else ""
        name, uid, version = meta.get("name"), meta.get("uid"), meta.get("resourceVersion")
        if type(namespace) is type(name) is type(uid) is type(version) is str:
            return (namespace, name), uid, version
    return object_key(obj, namespaced), store.object_uid(obj), resource_version(obj)


def network_names_of(nad_records: list[NadRecord]) -> list[str]:
    names = {rng.network_name for rec in nad_records for rng in rec.ranges if rng.network_name}
    return sorted(names, key=lambda n: (-len(n), n))


def _as_int(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def rebuilt_reason(
    known_uid: str, known_versions: dict[str, Any], identity: ClusterIdentity
) -> str:
    """Why the cluster answering now is not the one the database holds ("" if it is).

    resourceVersions are opaque to clients, but in practice they are etcd revisions and
    only grow within one etcd. Events are left out: big clusters keep them in a separate
    etcd (--etcd-servers-overrides), whose revisions are another sequence.
    """
    if known_uid and identity.uid and identity.uid != known_uid:
        return f"the kube-system namespace has a new uid ({known_uid} before, {identity.uid} now)"
    now = _as_int(identity.resource_version)
    seen = [
        v
        for kind, value in (known_versions or {}).items()
        if kind != "events" and not kind.startswith("_") and (v := _as_int(value)) is not None
    ]
    if now is not None and seen and now < max(seen):
        return f"resourceVersions went backwards (last seen {max(seen)}, now {now})"
    return ""


def sync_finished_send(cluster: m.Cluster) -> None:
    """Tell listeners (leak detection) that the cluster's data is fresh; a failing listener
    is logged, never fails the sync."""
    for receiver, result in sync_finished.send_robust(sender=cluster_sync_full, cluster=cluster):
        if isinstance(result, Exception):
            logger.error(
                "cluster %s: after-sync receiver %r failed",
                cluster.name,
                receiver,
                exc_info=(type(result), result, result.__traceback__),
            )


def cluster_sync_full(
    *,
    cluster: m.Cluster,
    progress: Progress | None = None,
    force: bool = False,
    run_hooks: bool = True,
) -> m.SyncRun:
    """List every kind from the cluster and make the database match it.

    Returns the SyncRun. Raises KubeError (after recording it on the SyncRun and the
    Cluster) when the cluster could not be read; the database then keeps its last good data.
    """
    started = timezone.now()
    t0 = time.monotonic()
    # Millions of short-lived tuples and no reference cycles: the cyclic collector would
    # walk them over and over for nothing (seconds per sync). Restored below.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    run = m.SyncRun.objects.create(cluster=cluster)
    m.Cluster.objects.filter(pk=cluster.pk).update(
        sync_state=m.Cluster.SyncState.SYNCING, last_sync_started=started
    )
    try:
        force = force or cluster.resource_versions.get("_parser") != PARSER_VERSION
        snapshot = {
            res.kind: store.key_map(MODELS[res.kind], cluster.pk, res.namespaced)
            for res in RESOURCES
            if res.kind != "events"
        }
        api = api_client_for(cluster)
        fetched: dict[str, Fetched] = {}
        steps: dict[str, float] = {}
        try:
            identity = cluster_identity(api)
            rebuilt = rebuilt_reason(cluster.identity, cluster.resource_versions, identity)
            if rebuilt:
                logger.warning(
                    "cluster %s was rebuilt: %s; re-reading and replacing everything",
                    cluster.name,
                    rebuilt,
                )
                force = True
            if connection.vendor == "postgresql":
                written, deleted, fetch_seconds = _stream_sync(
                    cluster, api, snapshot, fetched, force=force, progress=progress,
                    steps=steps, identity=identity, rebuilt=rebuilt, t0=t0,
                )  # fmt: skip
            else:
                network_names: list[str] = []
                for res in RESOURCES:
                    fetched[res.kind] = _fetch(
                        api,
                        res,
                        snapshot.get(res.kind, {}),
                        network_names,
                        force=force,
                        progress=progress,
                    )
                    if res.kind == "nads":
                        network_names = network_names_of(fetched["nads"].records)
                api.close()
                fetch_seconds = time.monotonic() - t0
                if progress:
                    progress("all", "writing", 0)
                written, deleted = _write(
                    cluster, fetched, snapshot, force=force, steps=steps, identity=identity,
                    rebuilt=rebuilt,
                )  # fmt: skip
        finally:
            api.close()
        write_seconds = time.monotonic() - t0 - fetch_seconds
    except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised
        _record_failure(cluster, run, exc)
        raise
    finally:
        if gc_was_enabled:
            gc.enable()
    counts: dict[str, Any] = {kind: f.listed for kind, f in fetched.items()}
    counts["written"] = written
    counts["deleted"] = deleted
    counts["absent"] = [kind for kind, f in fetched.items() if f.absent]
    counts["requests"] = sum(f.requests for f in fetched.values()) + 2  # + cluster_identity
    if rebuilt:
        counts["rebuilt"] = rebuilt
    counts["seconds"] = {
        "fetch": round(fetch_seconds, 3),
        "write": round(write_seconds, 3),
        "write_steps": steps,
    }
    finished = timezone.now()
    run.finished_at = finished
    run.outcome = m.SyncRun.Outcome.OK
    run.counts = counts
    run.save(update_fields=["finished_at", "outcome", "counts"])
    cluster.refresh_from_db()
    if run_hooks:
        sync_finished_send(cluster)
    logger.info("cluster %s: synced in %.1fs %s", cluster.name, time.monotonic() - t0, counts)
    return run


class _Writer:
    """The writes of one full sync, inside its transaction, kind by kind.

    `fresh`: kinds the cluster has no rows of yet (a first sync). The transaction holds
    the cluster row, which every other writer (the watcher) locks first, so nothing else
    can add rows of the cluster meanwhile: those rows are COPYed straight into the table,
    with ids handed out here, instead of going through a staging table and ON CONFLICT.
    """

    KINDS_WRITERS: dict[str, Callable[..., None]] = {
        "ippools": store.pools_write,
        "reservations": store.reservations_write,
        "nodeslicepools": store.nodeslicepools_write,
        "nodes": store.nodes_write,
    }

    def __init__(
        self,
        cluster: m.Cluster,
        snapshot: dict[str, store.KeyMap],
        *,
        force: bool,
        steps: dict[str, float],
    ) -> None:
        self.cluster = cluster
        self.cid = cluster.pk
        self.snapshot = snapshot
        self.force = force
        self.steps = steps
        self.now = timezone.now()
        self.written: dict[str, int] = {}
        self.deleted: dict[str, int] = {}
        self.mark = time.monotonic()
        self.nad_ids: dict[tuple[str, str], int] | None = None
        store.constraints_immediate()
        cid = self.cid
        m.Cluster.objects.filter(pk=cid).update(sync_generation=F("sync_generation") + 1)
        self.generation = m.Cluster.objects.values_list("sync_generation", flat=True).get(pk=cid)
        self.fresh = store.kinds_without_rows(cid, [MODELS[k] for k in MODELS if k != "events"])

    def step(self, name: str) -> None:
        now = time.monotonic()
        self.steps[name] = round(self.steps.get(name, 0.0) + now - self.mark, 3)
        self.mark = now

    def gone(self, kind: str, seen: set[tuple[str, str]]) -> list[int]:
        known = self.snapshot[kind]
        return [known[key][0] for key in known.keys() - seen]  # a set difference, in C

    def nads(self, records: list[NadRecord], seen: set[tuple[str, str]]) -> None:
        known = self.snapshot["nads"]
        changed = [
            rec
            for rec in records
            if self.force
            or not store.unchanged(
                known.get((rec.row.namespace, rec.row.name)), rec.row.uid, rec.row.resource_version
            )
        ]
        store.nads_write(self.cid, self.generation, changed, self.now)
        self.written["nads"] = len(changed)
        self.deleted["nads"] = store.objects_delete("nads", self.gone("nads", seen))
        self.nad_ids = {
            k: v[0] for k, v in store.key_map(m.NetworkAttachmentDefinition, self.cid).items()
        }
        self.step("nads")

    def delete_gone(self, kind: str, seen: set[tuple[str, str]]) -> None:
        self.deleted[kind] = store.objects_delete(kind, self.gone(kind, seen))

    def rows(self, kind: str, records: Any) -> None:
        """Write a batch (or all) of one kind's records."""
        fresh = MODELS[kind] in self.fresh
        if kind == "pods":
            store.pods_write(
                self.cid, self.generation, records, self.now, nad_ids=self.nad_ids, fresh=fresh
            )
        else:
            self.KINDS_WRITERS[kind](self.cid, self.generation, records, self.now, fresh=fresh)
        self.written[kind] = self.written.get(kind, 0) + len(records)

    def finish(
        self,
        fetched: dict[str, Fetched],
        identity: ClusterIdentity,
        rebuilt: str,
    ) -> None:
        cid, now = self.cid, self.now
        store.links_refresh(cid)
        node_slices_refresh(cid)
        store.pools_refresh_usage(cid)
        self.step("links and pool usage")
        store.events_write(cid, self.generation, fetched["events"].records)
        self.written["events"] = len(fetched["events"].records)
        self.deleted["events"] = store.events_expire(cid, settings.IPPAM_EVENT_RETENTION_SECONDS)
        versions = {kind: f.resource_version for kind, f in fetched.items() if f.resource_version}
        versions["_parser"] = PARSER_VERSION
        status: dict[str, Any] = {}
        if identity.uid:
            status["identity"] = identity.uid
        if rebuilt:
            status["rebuilt_at"] = now
            status["sync_notice"] = (
                f"Cluster rebuilt under the same name ({rebuilt}), seen at "
                f"{now:%Y-%m-%d %H:%M} UTC: every object was read again and replaced."
            )
        m.Cluster.objects.filter(pk=cid).update(
            sync_state=m.Cluster.SyncState.OK,
            sync_error="",
            last_sync_finished=timezone.now(),
            last_good_sync=timezone.now(),
            resource_versions=versions,
            **status,
        )
        self.step("events")


def _write(
    cluster: m.Cluster,
    fetched: dict[str, Fetched],
    snapshot: dict[str, store.KeyMap],
    *,
    force: bool,
    steps: dict[str, float],
    identity: ClusterIdentity,
    rebuilt: str,
) -> tuple[dict[str, int], dict[str, int]]:
    """Write what was listed, all at once (SQLite: a write transaction locks the whole
    file, so it must not stay open while the cluster is listed)."""
    with transaction.atomic():
        writer = _Writer(cluster, snapshot, force=force, steps=steps)
        writer.nads(fetched["nads"].records, fetched["nads"].seen)
        # NADs first (pod interfaces point at them); each kind's rows are dropped from
        # memory once written, so the biggest (pods) is written with the others gone.
        for kind in ("ippools", "reservations", "nodeslicepools", "nodes", "pods"):
            writer.delete_gone(kind, fetched[kind].seen)
            writer.rows(kind, fetched[kind].records)
            fetched[kind].records.clear()
            writer.step(kind)
        writer.finish(fetched, identity, rebuilt)
    writer.step("commit")
    return writer.written, writer.deleted


class _BackgroundWriter:
    """Runs database work on a thread of its own, in order, on the sync's own connection and
    transaction.

    While PostgreSQL takes in one batch (index upkeep: most of a first sync's database
    time, in the server's process), this thread waits on the socket without the GIL, and
    the caller parses the next batch. One writer serves every kind, so the last batches of
    one kind are written while the next kind is listed. The caller must not touch the
    database between the first `put()` and `close()`: it is the same connection, so every
    step of the transaction (savepoints included) goes through `put()`.
    """

    def __init__(self) -> None:
        self.main = connections[DEFAULT_DB_ALIAS]  # the object, not the thread-local proxy
        self.tasks: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.abandoned = False
        self.main.inc_thread_sharing()
        self.thread = threading.Thread(target=self._run, name="sync-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        connections[DEFAULT_DB_ALIAS] = self.main  # the transaction is on this connection
        while (task := self.tasks.get()) is not None:
            if self.error is None and not self.abandoned:
                try:
                    task()
                except BaseException as exc:  # noqa: BLE001 - raised in the caller
                    self.error = exc

    def put(self, task: Callable[[], Any]) -> None:
        if self.error is not None:
            self.close()
        self.tasks.put(task)

    def close(self) -> None:
        """Wait until every task has run; raise what failed."""
        self._join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Skip what is still queued and stop (the caller failed: its transaction rolls
        back, so writing the rest would be wasted)."""
        self.abandoned = True
        self._join()

    def _join(self) -> None:
        if self.thread.is_alive():
            while True:  # make room for the stop mark even if the queue is full
                try:
                    self.tasks.put(None, timeout=0.1)
                    break
                except queue.Full:
                    if not self.thread.is_alive():
                        break
            self.thread.join()
            self.main.dec_thread_sharing()


class _KindSavepoint:
    """One kind's writes inside a savepoint, run by the writer thread: a list that starts
    over (expired continue token) rolls back what that kind had written."""

    def __init__(self, writer: _Writer, kind: str) -> None:
        self.writer, self.kind = writer, kind
        self.sid = ""

    def begin(self) -> None:
        self.writer.written.pop(self.kind, None)
        self.sid = transaction.savepoint()

    def rollback(self) -> None:
        transaction.savepoint_rollback(self.sid)

    def end(self, seen: set[tuple[str, str]]) -> None:
        self.writer.delete_gone(self.kind, seen)
        self.writer.written.setdefault(self.kind, 0)
        transaction.savepoint_commit(self.sid)
        self.writer.step(self.kind)


def _stream_sync(
    cluster: m.Cluster,
    api: Any,
    snapshot: dict[str, store.KeyMap],
    fetched: dict[str, Fetched],
    *,
    force: bool,
    progress: Progress | None,
    steps: dict[str, float],
    identity: ClusterIdentity,
    rebuilt: str,
    t0: float,
) -> tuple[dict[str, int], dict[str, int], float]:
    """List and write at once (PostgreSQL): each batch of records is written while the
    next pages are fetched and decoded (`Listing.pages_prefetched`) and PostgreSQL, a
    process of its own, takes in the rows meanwhile; no kind is held whole in memory.

    Still all or nothing: it is one transaction, and a list that fails rolls it back, so
    the database keeps the last good data. Each kind is written inside a savepoint: a list
    whose continue token expires midway starts over from a clean slate.
    Returns (written, deleted, seconds until the last list ended).
    """
    with transaction.atomic():
        writer = _Writer(cluster, snapshot, force=force, steps=steps)
        # NADs first and whole: pod interfaces point at their rows, and reservations are
        # read in the light of their network names. They are few; events are listed last.
        nads = _fetch_kind(api, BY_KIND["nads"], snapshot, [], force=force, progress=progress)
        writer.nads(nads.records, nads.seen)
        fetched["nads"] = nads
        network_names = network_names_of(nads.records)
        background = _BackgroundWriter()
        try:
            for res in RESOURCES:
                if res.kind in ("nads", "events"):
                    continue
                fetched[res.kind] = _fetch_streamed(
                    api, res, snapshot, network_names, writer, background,
                    force=force, progress=progress,
                )  # fmt: skip
        except BaseException:
            background.abandon()
            raise
        background.close()
        fetched["events"] = _fetch_kind(
            api, BY_KIND["events"], snapshot, network_names, force=force, progress=progress
        )
        writer.step("events")
        api.close()
        fetch_seconds = time.monotonic() - t0
        if progress:
            progress("all", "writing", 0)
        writer.finish(fetched, identity, rebuilt)
    writer.step("commit")
    return writer.written, writer.deleted, fetch_seconds


def _fetch_kind(
    api: Any,
    res: Resource,
    snapshot: dict[str, store.KeyMap],
    network_names: list[str],
    *,
    force: bool,
    progress: Progress | None,
) -> Fetched:
    """List a small kind whole (its records kept), starting over if its list restarts."""
    for attempt in range(MAX_LIST_RESTARTS + 1):
        held: list[Any] = []
        try:
            listed = _fetch(
                api, res, snapshot.get(res.kind, {}), network_names,
                force=force, progress=progress, sink=held.extend,
            )  # fmt: skip
        except ListRestarted as restarted:
            _restart_or_give_up(res, restarted, attempt)
            continue
        listed.records = held
        return listed
    raise AssertionError("unreachable")  # _restart_or_give_up raises on the last attempt


def _fetch_streamed(
    api: Any,
    res: Resource,
    snapshot: dict[str, store.KeyMap],
    network_names: list[str],
    writer: _Writer,
    background: _BackgroundWriter,
    *,
    force: bool,
    progress: Progress | None,
) -> Fetched:
    """List one kind, its batches written by `background` in the kind's savepoint."""
    for attempt in range(MAX_LIST_RESTARTS + 1):
        savepoint = _KindSavepoint(writer, res.kind)
        background.put(savepoint.begin)
        try:
            listed = _fetch(
                api, res, snapshot.get(res.kind, {}), network_names, force=force,
                progress=progress,
                sink=lambda batch: background.put(functools.partial(writer.rows, res.kind, batch)),
            )  # fmt: skip
        except ListRestarted as restarted:
            background.put(savepoint.rollback)
            _restart_or_give_up(res, restarted, attempt)
            continue
        background.put(functools.partial(savepoint.end, listed.seen))
        return listed
    raise AssertionError("unreachable")  # _restart_or_give_up raises on the last attempt


def _restart_or_give_up(res: Resource, restarted: ListRestarted, attempt: int) -> None:
    if attempt == MAX_LIST_RESTARTS:
        raise KubeError(
            f"{restarted}; the list started over {MAX_LIST_RESTARTS} times "
            "and its continue token expired again: try again later",
            status=410,
            reason="Expired",
        ) from None
    logger.info("%s: list restarted; writing it again", res.full_name)


def _record_failure(cluster: m.Cluster, run: m.SyncRun, exc: BaseException) -> None:
    if isinstance(exc, KubeError):
        # No answer at all (status 0), or a gateway/availability error: unreachable.
        unreachable = exc.status in (0, 502, 503, 504)
        state = m.Cluster.SyncState.UNREACHABLE if unreachable else m.Cluster.SyncState.FAILED
        message = str(exc)
    else:
        state = m.Cluster.SyncState.FAILED
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    try:
        m.Cluster.objects.filter(pk=cluster.pk).update(
            sync_state=state, sync_error=message, last_sync_finished=timezone.now()
        )
        m.SyncRun.objects.filter(pk=run.pk).update(
            outcome=m.SyncRun.Outcome.FAILED, error=message, finished_at=timezone.now()
        )
    except Exception:  # noqa: BLE001 - the database itself may be what failed
        logger.exception("cluster %s: could not record the failed sync", cluster.name)
    logger.warning("cluster %s: sync failed: %s", cluster.name, message)
