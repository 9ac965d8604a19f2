"""The watcher: keeps the database current between full syncs.

Why a long-running process (`manage.py watch`) and not Celery tasks:
a watch is an HTTP response that stays open for minutes and delivers events as they
happen. A Celery task holding it would pin a worker slot for its whole life (one per
cluster and kind: seven per cluster), hide the stream from the broker's retry and
acknowledgement model (acks_late redelivers a task that never finishes), and a
"self-renewing" task would drop events in the gaps between renewals and pay a re-list of
150k pods each time. A dedicated process with one thread per (cluster, kind) holds the
streams, and one writer thread applies what arrived every ~300 ms in a small transaction.
Celery beat's periodic full sync repairs whatever the watcher missed (a crash, a bug), so
the watcher may be restarted at any time: it resumes from the resourceVersions the last
sync or batch stored in `Cluster.resource_versions`, and re-lists a kind when that version
is too old (410 Gone).

A cluster rebuilt under the same name (kind/k3d re-create, etcd restore) serves the same
resourceVersions for new objects, so resuming from a stored version could silently skip
or misapply events. Whenever a watch ends early or fails, the thread asks which cluster
answers (kube-system uid, current resourceVersion) before resuming; if it is another one,
the cluster's watches stop, one full sync replaces everything (and says so on the
cluster), and the watches start again from that sync's versions. Batches from the old
watches still queued are dropped (each batch carries its watch session).

Sharding: several watch processes may run; each follows only the clusters whose
lease it holds (ippam.watch_lease): it claims free or expired leases up to its fair share,
renews them every few seconds, gives them back on a clean stop, and takes over a dead
watcher's clusters once their lease expires. Every batch is applied behind the lease's
fence (holder + generation re-checked in the batch's transaction), and the resourceVersion
a batch reached is stored in that same transaction, so the next holder resumes exactly
after the last batch applied: nothing is applied twice or missed.

Threads, not asyncio: the official client is synchronous, and the work per event is tiny
next to the database write, which is batched.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)

from ippam.clusters import cluster_waiting_for_server
from ippam.kube.client import KubeError, api_client_for
from ippam.kube.resources import (
    RESOURCES,
    Resource,
    WatchExpired,
    cluster_identity,
    objects_list,
    objects_watch,
)
from ippam.models import Cluster
from ippam.sync.apply import ClusterBusy
from ippam.watch_lease import (
    LEASE_SECONDS,
    RENEW_SECONDS,
    LeaseLost,
    fair_share,
    lease_claim,
    lease_fence,
    lease_release,
    leases_ensure,
    leases_renew,
    leases_report_retrying,
    watcher_gone,
    watcher_heartbeat,
    watcher_identity,
)

logger = logging.getLogger(__name__)

BATCH_SECONDS = 0.3
# Writer threads, each with its own connection and a fixed share of the clusters (so one
# cluster's batches stay in order). A batch is a dozen short queries, mostly round trips:
# with one writer, twenty busy clusters queued behind each other (p95 1.6 s at 200 events/s).
WRITERS = 4
WATCH_TIMEOUT_SECONDS = 60  # the server ends each watch after this; we resume at once
CLUSTER_POLL_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0
ABSENT_RETRY_SECONDS = 60.0
APPLY_ATTEMPTS = 5
# A batch that still cannot be written after APPLY_ATTEMPTS quick tries (the database is
# away, a lock is held) waits and is tried again, 1 s, 2 s, 4 s ... at most this far apart,
# until it lands; the cluster's later batches wait behind it, so events stay in order.
RETRY_MAX_SECONDS = 30.0


class BatchNotWritten(Exception):
    """A batch the database would not take now; it is tried again later, never dropped."""


@dataclass
class Retrying:
    """A cluster whose batches wait for the database: shown on the sync bar and in /metrics."""

    since: float  # time.time() of the first failure
    attempts: int
    next_at: float  # time.monotonic() of the next try
    error: str
    events: int = 0


@dataclass
class Batch:
    cluster_id: int
    kind: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    resource_version: str = ""
    relist: list[dict[str, Any]] | None = None  # a full list of the kind, replacing the rows
    session: int = 0  # the watch session that produced it; older sessions' batches are dropped


class KindWatch(threading.Thread):
    """Streams one kind of one cluster into the shared queue; re-lists when it must."""

    def __init__(
        self,
        cluster: Cluster,
        resource: Resource,
        out: queue.Queue[Batch],
        stop: threading.Event,
        *,
        session: int = 0,
        on_rebuilt: Any = None,
    ):
        super().__init__(name=f"watch-{cluster.name}-{resource.kind}", daemon=True)
        self.cluster = cluster
        self.resource = resource
        self.out = out
        self.stop = stop
        self.session = session
        self.on_rebuilt = on_rebuilt
        self.rebuilt = ""  # why the cluster answering is not the one the database holds
        self.response: Any = None
        self.resource_version = str((cluster.resource_versions or {}).get(resource.kind) or "")

    def _put(self, events: list[tuple[str, dict[str, Any]]], rv: str, relist: Any = None) -> None:
        self.out.put(Batch(self.cluster.pk, self.resource.kind, events, rv, relist, self.session))

    def _same_cluster(self, api: Any) -> bool:
        """False (and `rebuilt` set) when the API server is another incarnation of the cluster."""
        from ippam.sync.full import rebuilt_reason

        identity = cluster_identity(api)
        # Compare with the versions this thread has seen too: they are newer than the
        # database's when the watch ran ahead of the last sync.
        known = dict(self.cluster.resource_versions or {})
        known[self.resource.kind] = self.resource_version or known.get(self.resource.kind, "")
        reason = rebuilt_reason(self.cluster.identity, known, identity)
        if reason:
            self.rebuilt = reason
            logger.warning(
                "%s: the cluster was rebuilt (%s); a full sync follows", self.name, reason
            )
            if self.on_rebuilt is not None:
                self.on_rebuilt()
        return not reason

    def halt(self) -> None:
        self.stop.set()
        response = self.response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()

    def _remember(self, response: Any) -> None:
        self.response = response

    def run(self) -> None:
        backoff = 1.0
        api = None
        suspect = False  # the last watch ended early or failed: is it still the same cluster?
        while not self.stop.is_set():
            try:
                if api is None:
                    api = api_client_for(self.cluster)
                if suspect and not self._same_cluster(api):
                    break
                suspect = False
                if not self.resource_version and not self._relist(api):
                    self.stop.wait(ABSENT_RETRY_SECONDS)
                    continue
                started = time.monotonic()
                for event in objects_watch(
                    api,
                    self.resource,
                    resource_version=self.resource_version,
                    timeout_seconds=WATCH_TIMEOUT_SECONDS,
                    on_response=self._remember,
                ):
                    if self.stop.is_set():
                        break
                    rv = event.resource_version
                    if event.type == "BOOKMARK":
                        if rv:
                            self.resource_version = rv
                            self._put([], rv)
                        continue
                    if rv:
                        self.resource_version = rv
                    self._put([(event.type, event.object)], rv)
                # The server ends a watch after timeout_seconds; sooner means it dropped it
                # (restarted, or a rebuilt cluster behind the same address).
                suspect = time.monotonic() - started < WATCH_TIMEOUT_SECONDS - 1
                backoff = 1.0
            except WatchExpired:
                logger.info("%s: resourceVersion expired, listing again", self.name)
                self.resource_version = ""
                suspect = True
            except KubeError as exc:
                suspect = True
                if self.stop.is_set():
                    break
                logger.warning("%s: %s; retrying in %.0fs", self.name, exc, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                if exc.status == 404 and self.resource.optional:
                    self.resource_version = ""
            except Exception:  # noqa: BLE001 - keep the thread alive; the next sync repairs
                logger.exception("%s: unexpected error; retrying in %.0fs", self.name, backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            finally:
                self.response = None
        if api is not None:
            api.close()

    def _relist(self, api: Any) -> bool:
        """List the kind and hand the whole list to the writer. False if the kind is absent."""
        listing = objects_list(api, self.resource)
        items = listing.all()
        if listing.absent:
            return False
        self._put([], listing.resource_version, relist=items)
        self.resource_version = listing.resource_version
        return True


def _size(batch: Batch) -> int:
    return len(batch.events) + len(batch.relist or [])


def _connection_reset() -> None:
    """Drop a connection the database closed (it restarted): the next query opens a new
    one. close_old_connections keeps a connection it cannot tell is broken."""
    close_old_connections()
    if connection.connection is not None and not connection.is_usable():
        connection.close()


def _commit_without_flush_wait() -> None:
    """Let this transaction's COMMIT return before its WAL reaches the disk (PostgreSQL).

    A watcher commits once per cluster and kind every window; waiting for each flush
    (10-20 ms on a small VM's disk) is most of a busy watcher's latency. A crash of the
    database server loses at most its last few hundred milliseconds of commits, each whole:
    never half a batch, never rows without the resume point stored with them. A watch
    that resumes from the stored versions reads them again; otherwise the next full sync
    repairs them, as it does any batch the watcher could not apply. Nothing is inconsistent.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


class Watcher:
    """All clusters' watches plus the writer; `run()` blocks until `stop()`."""

    def __init__(
        self,
        *,
        kinds: list[str] | None = None,
        batch_seconds: float = BATCH_SECONDS,
        identity: str | None = None,
        lease_seconds: float = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        writers: int = WRITERS,
    ):
        self.kinds = kinds
        self.batch_seconds = batch_seconds
        self.identity = identity or watcher_identity()
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.held: dict[int, int] = {}  # cluster id -> lease generation (the fencing token)
        self.release_on_stop = True
        if connection.vendor == "sqlite":
            writers = 1  # one write transaction at a time: more writers would wait in turn
        self.queues: list[queue.Queue[Batch]] = [queue.Queue() for _ in range(max(1, writers))]
        # Per writer: batches of clusters a full sync was writing, tried again next window
        # before anything newer of theirs (a writer's only state besides its queue).
        self.deferred_by_writer: list[list[Batch]] = [[] for _ in self.queues]
        self._applied_lock = threading.Lock()
        self.stopping = threading.Event()
        self.wake = threading.Event()  # look at the clusters now, not at the next poll
        self.watches: dict[int, list[KindWatch]] = {}
        self.cluster_stops: dict[int, threading.Event] = {}
        self.sessions: dict[int, int] = {}  # cluster id -> its current watch session
        # cluster id -> its rebuilt_at when its watches started (a later one: start over)
        self.rebuilt_seen: dict[int, Any] = {}
        self.resync: set[int] = set()  # rebuilt clusters waiting for their full sync
        self._session_ids = iter(range(1, 1 << 62))
        self.applied = 0
        self.retrying: dict[int, Retrying] = {}  # cluster id -> its batches' retry state

    def stop(self, *, release: bool = True) -> None:
        """Stop; `release=False` leaves the leases to expire as a crashed process would."""
        self.release_on_stop = release
        self.stopping.set()
        self.wake.set()

    @property
    def deferred(self) -> list[Batch]:
        return [batch for batches in self.deferred_by_writer for batch in batches]

    def queue_for(self, cluster_id: int) -> queue.Queue[Batch]:
        return self.queues[cluster_id % len(self.queues)]

    def run(self) -> None:
        writers = [
            threading.Thread(target=self._write_loop, args=(i,), name=f"watch-writer-{i}")
            for i in range(len(self.queues))
        ]
        for writer in writers:
            writer.daemon = True
            writer.start()
        renewer = threading.Thread(target=self._renew_loop, name="watch-leases", daemon=True)
        renewer.start()
        try:
            while not self.stopping.is_set():
                try:
                    self._reconcile_clusters()
                except Exception:  # noqa: BLE001
                    logger.exception("watcher: could not read the clusters")
                finally:
                    close_old_connections()
                self.wake.wait(min(CLUSTER_POLL_SECONDS, self.renew_seconds))
                self.wake.clear()
        finally:
            for cluster_id in list(self.watches):
                self._stop_cluster(cluster_id)
            for writer in writers:
                writer.join(timeout=5)
            renewer.join(timeout=5)
            if self.release_on_stop:
                # After the writer finished: nothing of ours is written after the release.
                with contextlib.suppress(Exception):
                    for cluster_id, generation in list(self.held.items()):
                        lease_release(
                            cluster_id=cluster_id, identity=self.identity, generation=generation
                        )
                    watcher_gone(identity=self.identity)
            self.held.clear()
            connection.close()

    def _give_back(self, cluster_id: int) -> None:
        """Stop the cluster's watches, then release its lease (later batches are fenced off)."""
        self._stop_cluster(cluster_id)
        generation = self.held.pop(cluster_id, None)
        if generation is not None:
            lease_release(cluster_id=cluster_id, identity=self.identity, generation=generation)

    def _renew_loop(self) -> None:
        """Keep the leases alive on a clock of their own: a first full sync of a big cluster
        in the main loop must not let the other clusters' leases lapse."""
        try:
            while not self.stopping.wait(self.renew_seconds):
                try:
                    watcher_heartbeat(identity=self.identity, lease_seconds=self.lease_seconds)
                    held = dict(self.held)
                    lost = leases_renew(
                        identity=self.identity, held=held, lease_seconds=self.lease_seconds
                    )
                    for cluster_id in lost:
                        if self.held.get(cluster_id) == held[cluster_id]:
                            self.held.pop(cluster_id, None)
                            self.sessions.pop(cluster_id, None)
                    if lost:
                        self.wake.set()  # the main loop stops their watches
                    leases_report_retrying(
                        identity=self.identity,
                        retrying={
                            pk: (state.since, state.events, state.error)
                            for pk, state in dict(self.retrying).items()
                        },
                    )
                except Exception:  # noqa: BLE001 - the database is back at the next beat
                    logger.exception("watcher %s: could not renew the leases", self.identity)
                finally:
                    close_old_connections()
        finally:
            connection.close()

    def _leases(self, wanted: dict[int, Cluster]) -> None:
        """Renew what we hold, drop what we lost, give back the surplus, claim up to our share."""
        live = watcher_heartbeat(identity=self.identity, lease_seconds=self.lease_seconds)
        for cluster_id in leases_renew(
            identity=self.identity, held=dict(self.held), lease_seconds=self.lease_seconds
        ):
            logger.warning(
                "watcher %s: lost the lease of cluster %s (expired, or taken over); "
                "stopping its watches",
                self.identity,
                cluster_id,
            )
            self.held.pop(cluster_id, None)
            self._stop_cluster(cluster_id)
        for cluster_id in [pk for pk in list(self.held) if pk not in wanted]:
            self._give_back(cluster_id)
        share = fair_share(clusters=len(wanted), watchers=live)
        for cluster_id in sorted(self.held, reverse=True)[: max(0, len(self.held) - share)]:
            # Another watcher joined: give it clusters (it claims them at its next round).
            logger.info("watcher %s: handing cluster %s over", self.identity, cluster_id)
            self._give_back(cluster_id)
        if len(self.held) >= share:
            return
        leases_ensure(wanted)
        for cluster_id in sorted(wanted):
            if len(self.held) >= share:
                break
            if cluster_id in self.held:
                continue
            generation = lease_claim(
                cluster_id=cluster_id, identity=self.identity, lease_seconds=self.lease_seconds
            )
            if generation is not None:
                logger.info(
                    "watcher %s: took cluster %s (lease generation %s)",
                    self.identity,
                    cluster_id,
                    generation,
                )
                self.held[cluster_id] = generation

    def _reconcile_clusters(self) -> None:
        wanted = {c.pk: c for c in Cluster.objects.filter(enabled=True)}
        self._leases(wanted)
        resync = self.resync
        for cluster_id in list(self.watches):
            if cluster_id not in wanted or cluster_id not in self.held:
                logger.info(
                    "watcher: cluster %s removed or disabled; stopping its watches", cluster_id
                )
                self._stop_cluster(cluster_id)
            elif any(t.rebuilt for t in self.watches[cluster_id]):
                # Its watches met another incarnation of the cluster: one full sync
                # replaces everything (and says so), then the watches start over from it.
                self._stop_cluster(cluster_id)
                resync.add(cluster_id)
            elif wanted[cluster_id].rebuilt_at != self.rebuilt_seen.get(cluster_id):
                # A full sync elsewhere found the cluster rebuilt: its versions are new.
                logger.info("watcher: cluster %s was rebuilt; restarting its watches", cluster_id)
                self._stop_cluster(cluster_id)
        for cluster_id, cluster in wanted.items():
            if cluster_id not in self.held:
                continue
            if cluster_id in self.watches or cluster_waiting_for_server(cluster):
                continue
            # Read after the lease was claimed, so after the last batch the previous holder
            # applied: its resourceVersions are where this tenure resumes.
            cluster.refresh_from_db()
            if cluster_id in resync or not (cluster.resource_versions or {}).get("pods"):
                # Never synced (or rebuilt): one full sync first, so the kinds that depend
                # on each other (reservation names on NAD network names) are read together.
                if not self._first_sync(cluster) and cluster_id in resync:
                    continue  # not synced yet (locked or failed): the next round tries again
                resync.discard(cluster_id)
                cluster.refresh_from_db()
            logger.info("watcher: watching cluster %s", cluster.name)
            stop = threading.Event()
            self.cluster_stops[cluster_id] = stop
            session = next(self._session_ids)
            self.sessions[cluster_id] = session
            self.rebuilt_seen[cluster_id] = cluster.rebuilt_at
            threads = [
                KindWatch(
                    cluster,
                    res,
                    self.queue_for(cluster_id),
                    stop,
                    session=session,
                    on_rebuilt=self.wake.set,
                )
                for res in RESOURCES
                if self.kinds is None or res.kind in self.kinds
            ]
            self.watches[cluster_id] = threads
            for thread in threads:
                thread.start()

    def _first_sync(self, cluster: Cluster) -> bool:
        """One full sync now; False when it did not happen (another holds the lock) or failed."""
        from ippam.locks import cluster_sync_lock
        from ippam.sync import cluster_sync_full

        with cluster_sync_lock(cluster) as held:
            if not held:
                return False
            try:
                cluster_sync_full(cluster=cluster)
            except KubeError as exc:
                logger.warning("watcher: full sync of %s failed: %s", cluster.name, exc)
                return False
        return True

    def _stop_cluster(self, cluster_id: int) -> None:
        self.sessions.pop(cluster_id, None)
        stop = self.cluster_stops.pop(cluster_id, None)
        if stop is not None:
            stop.set()
        for thread in self.watches.pop(cluster_id, []):
            thread.halt()

    def _write_loop(self, index: int) -> None:
        """Drain writer `index`'s queue every batch_seconds and apply per (cluster, kind),
        in order."""
        tasks, deferred = self.queues[index], self.deferred_by_writer[index]
        try:
            while not (self.stopping.is_set() and tasks.empty()):
                try:
                    first = tasks.get(timeout=self.batch_seconds if deferred else 0.5)
                    batches = [first]
                except queue.Empty:
                    if not deferred:
                        continue
                    batches = []
                deadline = time.monotonic() + self.batch_seconds
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        batches.append(tasks.get(timeout=remaining))
                    except queue.Empty:
                        break
                batches = deferred + batches
                deferred.clear()
                self._apply(batches, deferred)
        finally:
            connection.close()

    def _apply(self, batches: list[Batch], deferred: list[Batch]) -> None:
        close_old_connections()
        # Per (cluster, kind), consecutive events become one transaction; a re-list stays
        # in its place in the order. Different kinds are independent of each other.
        groups: dict[tuple[int, str], list[Batch]] = {}
        for batch in batches:
            segments = groups.setdefault((batch.cluster_id, batch.kind), [])
            last = segments[-1] if segments else None
            if (
                last is not None
                and last.relist is None
                and batch.relist is None
                and last.session == batch.session
            ):
                last.events.extend(batch.events)
                last.resource_version = batch.resource_version or last.resource_version
            else:
                segments.append(
                    Batch(
                        batch.cluster_id,
                        batch.kind,
                        list(batch.events),
                        batch.resource_version,
                        batch.relist,
                        batch.session,
                    )
                )
        merged = [batch for segments in groups.values() for batch in segments]
        # Clusters a full sync is writing, or whose earlier batch waits to be retried: their
        # batches wait too, in order.
        busy: set[int] = {
            pk for pk, state in self.retrying.items() if state.next_at > time.monotonic()
        }
        waiting: dict[int, int] = {}  # events of each cluster's batches held back by a retry
        for batch in merged:
            if self.sessions.get(batch.cluster_id) != batch.session:
                continue  # its cluster stopped being watched, or restarted its watches since
            generation = self.held.get(batch.cluster_id)
            if generation is None:
                continue  # the lease is gone: the next holder resumes from the stored versions
            if batch.cluster_id in busy:
                deferred.append(batch)
                waiting[batch.cluster_id] = waiting.get(batch.cluster_id, 0) + _size(batch)
                continue
            try:
                self._apply_one(batch, generation)
            except ClusterBusy:
                busy.add(batch.cluster_id)
                deferred.append(batch)
            except BatchNotWritten as exc:
                busy.add(batch.cluster_id)
                deferred.append(batch)
                waiting[batch.cluster_id] = waiting.get(batch.cluster_id, 0) + _size(batch)
                self._retry_later(batch, str(exc))
            except LeaseLost as exc:
                logger.warning("watcher %s: %s", self.identity, exc)
                if self.held.get(batch.cluster_id) == generation:
                    self.held.pop(batch.cluster_id, None)
                    self.sessions.pop(batch.cluster_id, None)
                    self.wake.set()  # the main loop stops its watches
            else:
                self._landed(batch.cluster_id)

        for cluster_id, state in list(self.retrying.items()):
            if cluster_id in waiting:
                state.events = waiting[cluster_id]
            elif cluster_id not in self.held:
                self.retrying.pop(cluster_id, None)  # lease gone: the next holder re-reads

    def _retry_later(self, batch: Batch, error: str) -> None:
        state = self.retrying.get(batch.cluster_id)
        if state is None:
            state = self.retrying[batch.cluster_id] = Retrying(
                since=time.time(), attempts=0, next_at=0.0, error=error
            )
        state.attempts += 1
        state.error = error
        wait = min(RETRY_MAX_SECONDS, 2.0 ** (state.attempts - 1))
        state.next_at = time.monotonic() + wait
        logger.warning(
            "watcher: cluster %s: %d %s events not written (%s); try %d in %.0fs, later "
            "batches wait behind them",
            batch.cluster_id,
            _size(batch),
            batch.kind,
            error,
            state.attempts + 1,
            wait,
        )

    def _landed(self, cluster_id: int) -> None:
        state = self.retrying.pop(cluster_id, None)
        if state is not None:
            logger.warning(
                "watcher: cluster %s: the waiting batches are written, after %d tries over %.0fs",
                cluster_id,
                state.attempts + 1,
                time.time() - state.since,
            )

    def _apply_one(self, batch: Batch, generation: int) -> None:
        from ippam.metrics import watch_events_add
        from ippam.sync.apply import kind_replace, objects_apply

        last: Exception = OperationalError("not tried")
        for attempt in range(APPLY_ATTEMPTS):
            try:
                if batch.relist is not None:
                    with transaction.atomic():
                        _commit_without_flush_wait()
                        self._fence(batch.cluster_id, generation)
                        kind_replace(
                            cluster_id=batch.cluster_id,
                            kind=batch.kind,
                            objects=batch.relist,
                            resource_version=batch.resource_version,
                            wait=False,
                        )
                else:
                    # One transaction with the counter, so a batch retried below counts once.
                    with transaction.atomic():
                        _commit_without_flush_wait()
                        self._fence(batch.cluster_id, generation)
                        objects_apply(
                            cluster_id=batch.cluster_id,
                            kind=batch.kind,
                            events=batch.events,
                            resource_version=batch.resource_version,
                            wait=False,
                        )
                        watch_events_add(
                            cluster_id=batch.cluster_id, kind=batch.kind, count=len(batch.events)
                        )
                with self._applied_lock:
                    self.applied += len(batch.events) + len(batch.relist or [])
                return
            except (LeaseLost, ClusterBusy):
                raise
            except (OperationalError, InterfaceError, IntegrityError) as exc:
                # A lock held by a full sync (SQLite: the whole file), a row the sync inserted
                # first, or the database away: wait a little and apply the batch again.
                logger.info("watcher: %s batch busy (%s); retrying", batch.kind, exc)
                last = exc
                _connection_reset()
                time.sleep(0.2 * (attempt + 1))
            except Exception:  # noqa: BLE001 - the next full sync repairs what this misses
                logger.exception(
                    "watcher: could not apply %d %s events", len(batch.events), batch.kind
                )
                return
        # Not dropped: its resourceVersion was not stored, and the cluster's later batches
        # would store a newer one over the gap. The caller keeps it and tries again.
        raise BatchNotWritten((str(last).strip().splitlines() or [type(last).__name__])[0])

    def _fence(self, cluster_id: int, generation: int) -> None:
        lease_fence(cluster_id=cluster_id, identity=self.identity, generation=generation)
