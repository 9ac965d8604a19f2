"""The domain model: what ippam knows about each cluster.

Every synced row belongs to a Cluster and is keyed by the Kubernetes identity of its object
(namespace + name, or name for cluster-scoped objects); `uid` and `resource_version` are kept
so that watches and reclamation can tell one incarnation of an object from the next.
A full sync finds the objects that are gone by comparing the keys the database held with
the keys *every* list returned, so a failed or partial list deletes nothing; rows it writes
are stamped with the cluster's new `sync_generation`, unchanged rows (same resourceVersion)
are left as they are rather than rewritten (see ippam.sync.full).
Addresses are IPAddressField: sortable and comparable in the database (ippam.fields).
"""

from __future__ import annotations

from typing import TypedDict

from django.conf import settings
from django.db import models
from django.db.models import Q

from ippam.fields import IPAddressField
from ippam.poolnumbers import PoolNumbers, pool_alert_text


class _DecimalSpec(TypedDict):
    max_digits: int
    decimal_places: int


BIG_COUNT: _DecimalSpec = {
    "max_digits": 40,
    "decimal_places": 0,
}  # an IPv6 /64 holds 2**64 addresses


class Cluster(models.Model):
    class SyncState(models.TextChoices):
        NEVER = "never", "never synced"
        SYNCING = "syncing", "syncing"
        OK = "ok", "in sync"
        FAILED = "failed", "sync failed"
        UNREACHABLE = "unreachable", "unreachable"

    name = models.SlugField(max_length=63, unique=True)
    kubeconfig = models.CharField(max_length=500, blank=True, help_text="Path to a kubeconfig file")
    context = models.CharField(max_length=253, blank=True)
    in_cluster = models.BooleanField(default=False, help_text="Use the pod's service account")
    simulated = models.BooleanField(default=False, help_text="Served by simcluster")
    enabled = models.BooleanField(default=True)
    sync_state = models.CharField(max_length=16, choices=SyncState.choices, default=SyncState.NEVER)
    sync_error = models.TextField(blank=True)
    last_sync_started = models.DateTimeField(null=True, blank=True)
    last_sync_finished = models.DateTimeField(null=True, blank=True)
    last_good_sync = models.DateTimeField(null=True, blank=True)
    sync_generation = models.PositiveBigIntegerField(default=0)
    # resourceVersion per resource kind at the end of the last list, where watches resume.
    resource_versions = models.JSONField(default=dict, blank=True)
    # The uid of the cluster's kube-system namespace: it changes when the cluster is
    # rebuilt under the same name (resourceVersions then repeat; see ippam.sync.full).
    identity = models.CharField(max_length=64, blank=True)
    rebuilt_at = models.DateTimeField(null=True, blank=True)
    # Something the sync wants a person to know that is not an error (a rebuild it answered).
    sync_notice = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [("request_sync", "Can ask for a full sync of a cluster now")]
        constraints = [
            models.CheckConstraint(
                condition=Q(in_cluster=True) | ~Q(kubeconfig=""),
                name="cluster_has_a_way_to_connect",
            )
        ]

    def __str__(self) -> str:
        return self.name


class SyncRun(models.Model):
    class Outcome(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        FAILED = "failed"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="sync_runs")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["cluster", "-started_at"])]

    def __str__(self) -> str:
        return f"sync #{self.pk} ({self.outcome})"


class WatchEventCount(models.Model):
    """Watch events the watcher applied, per cluster and kind: ippam_watch_events_total.

    No other table remembers them (a batch keeps only the last event per object), so the
    watcher adds each batch's size here (ippam.metrics.watch_events_add, one UPDATE a batch).
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)
    total = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cluster", "kind"], name="watcheventcount_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.total}"


class WatcherLease(models.Model):
    """Which `manage.py watch` process follows a cluster: one row per cluster.

    A watcher claims a cluster with a conditional UPDATE (the lease has expired or was
    released), renews it every few seconds, and applies a batch only in a transaction that
    re-checks holder and generation on this row first. `generation` grows on every claim: it
    is the fencing token, so a watcher that stalled past its lease cannot write after the
    next holder took over (ippam.watch_lease).
    """

    cluster = models.OneToOneField(
        Cluster, on_delete=models.CASCADE, primary_key=True, related_name="watcher_lease"
    )
    holder = models.CharField(max_length=255, blank=True)
    generation = models.PositiveBigIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Set while the holder's batches for this cluster wait to be written (the database
    # refused them): since when, how many events, and why. Cleared when they land.
    retrying_since = models.DateTimeField(null=True, blank=True)
    retrying_events = models.PositiveIntegerField(default=0)
    retrying_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.cluster_id}: {self.holder or 'free'} (gen {self.generation})"


class WatcherProcess(models.Model):
    """A live `manage.py watch` process, also while it holds no cluster: the fair share
    (clusters / live watchers) must count a watcher that just started."""

    identity = models.CharField(max_length=255, primary_key=True)
    heartbeat_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.identity


class Lease(models.Model):
    """A named lock held without Redis (ippam.locks): the row exists while someone holds it,
    and `expires_at` lets the next caller take it over from a process that died holding it."""

    name = models.CharField(max_length=200, primary_key=True)
    token = models.CharField(max_length=64)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} (until {self.expires_at:%Y-%m-%d %H:%M:%S})"


class KubeObject(models.Model):
    """Fields every synced Kubernetes object has."""

    # No index of its own: every subclass has a unique constraint that starts with
    # cluster, which serves the same lookups (one index less to fill on a full sync).
    # No database constraint either: rows are written only under the cluster row's lock
    # (the sync's transaction and the watcher's batches take it first), and the cluster is
    # removed only under that lock too (ippam.clusters.cluster_remove), so a row can't
    # outlive its cluster; checking it per row cost seconds on a first sync.
    # ippam.sync.verify.rows_orphaned() checks this invariant; the ORM's CASCADE still applies.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    name = models.CharField(max_length=253)
    uid = models.CharField(max_length=64)
    resource_version = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    sync_generation = models.PositiveBigIntegerField(default=0)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Node(KubeObject):
    labels = models.JSONField(default=dict, blank=True)
    ready = models.BooleanField(default=False)
    addresses = models.JSONField(default=list, blank=True)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="node_unique")]

    def __str__(self) -> str:
        return self.name


class Pod(KubeObject):
    namespace = models.CharField(max_length=63)
    node_name = models.CharField(max_length=253, blank=True)
    phase = models.CharField(max_length=16, blank=True)
    deletion_timestamp = models.DateTimeField(null=True, blank=True)
    disruption_target = models.BooleanField(default=False)
    # The raw annotations, kept so a person can see exactly what Multus wrote.
    networks_annotation = models.TextField(blank=True)
    network_status_annotation = models.TextField(blank=True)
    requested_networks = models.JSONField(default=list, blank=True)
    annotation_problems = models.JSONField(default=list, blank=True)
    # Not stored: set for display by ippam.selectors (attach_missing_attachments, search).
    missing_networks: list[str]
    node: Node | None

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="pod_unique")
        ]
        # No index on uid: nothing looks a pod up by uid alone, and random uuids made it
        # the costliest index to fill on a first sync.
        indexes = [models.Index(fields=["cluster", "node_name"])]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def podref(self) -> str:
        return f"{self.namespace}/{self.name}"


class NetworkAttachmentDefinition(KubeObject):
    namespace = models.CharField(max_length=63)
    annotations = models.JSONField(default=dict, blank=True)
    config_raw = models.TextField(blank=True)
    config = models.JSONField(
        null=True, blank=True, help_text="spec.config parsed; null if invalid"
    )
    config_on_node = models.BooleanField(default=False, help_text="spec.config empty")
    is_conflist = models.BooleanField(default=False)
    cni_version = models.CharField(max_length=16, blank=True)
    cni_type = models.CharField(max_length=64, blank=True)
    ipam_type = models.CharField(max_length=64, blank=True)
    master = models.CharField(max_length=64, blank=True)
    mode = models.CharField(max_length=32, blank=True)
    resource_name = models.CharField(max_length=253, blank=True)
    node_selector = models.CharField(max_length=253, blank=True)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["namespace", "name"]
        verbose_name = "NetworkAttachmentDefinition"
        permissions = [("create_nad", "Can create NetworkAttachmentDefinitions in a cluster")]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="nad_unique")
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_valid(self) -> bool:
        return not self.problems


class IPPool(KubeObject):
    namespace = models.CharField(max_length=63)
    range = models.CharField(max_length=64)
    first_ip = IPAddressField(null=True, blank=True, help_text="network address of spec.range")
    last_ip = IPAddressField(null=True, blank=True, help_text="last address of spec.range")
    network_name = models.CharField(max_length=253, blank=True)
    node_name = models.CharField(max_length=253, blank=True, help_text="node-slice pools only")
    # db_default: the sync's bulk upserts (ippam.sync.store) name their columns and leave
    # this one out; ippam.sync.nodeslice sets it after each write.
    slice_range = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text="node-slice pools only: the node's slice",
    )
    usable = models.DecimalField(**BIG_COUNT, default=0)
    allocated = models.PositiveIntegerField(default=0)
    utilization = models.FloatField(default=0.0, help_text="allocated / usable, 0..1")
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["namespace", "name"]
        verbose_name = "IPPool"
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="ippool_unique"),
            models.CheckConstraint(
                condition=Q(utilization__gte=0), name="ippool_utilization_positive"
            ),
        ]
        indexes = [models.Index(fields=["cluster", "-utilization"])]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def numbers(self) -> PoolNumbers:
        """Usable, allocated, free and utilization, as every surface shows them."""
        return PoolNumbers.of(self.usable, self.allocated)

    @property
    def free(self) -> int:
        return self.numbers.free


class NADRange(models.Model):
    """One whereabouts range a NAD declares (a NAD with ipRanges declares several)."""

    nad = models.ForeignKey(
        NetworkAttachmentDefinition, on_delete=models.CASCADE, related_name="ranges"
    )
    # Redundant with the nad FK (whose row belongs to the cluster), so no database
    # constraint: checking it per row cost seconds on a full sync. The ORM's
    # CASCADE still applies; the index is the composite one below that starts with cluster.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    position = models.PositiveSmallIntegerField(default=0)
    range = models.CharField(max_length=64)
    range_start = IPAddressField(null=True, blank=True)
    range_end = IPAddressField(null=True, blank=True)
    first_ip = IPAddressField(null=True, blank=True)
    last_ip = IPAddressField(null=True, blank=True)
    exclude = models.JSONField(default=list, blank=True)
    gateway = IPAddressField(null=True, blank=True)
    network_name = models.CharField(max_length=253, blank=True)
    enable_overlapping_ranges = models.BooleanField(default=True)
    node_slice_size = models.CharField(max_length=8, blank=True)
    usable = models.DecimalField(**BIG_COUNT, default=0)
    # Why whereabouts fails every allocation from this range ("" when it hands addresses
    # out): a config it rejects, an exclude entry it cannot parse. Read with the config as
    # a whole, which the other columns alone cannot show (ippam.whereabouts).
    verdict = models.TextField(blank=True, default="")
    pool_name = models.CharField(max_length=253, help_text="the IPPool whereabouts keeps for it")
    pool = models.ForeignKey(
        IPPool, null=True, blank=True, on_delete=models.SET_NULL, related_name="nad_ranges"
    )

    class Meta:
        ordering = ["nad", "position"]
        constraints = [models.UniqueConstraint(fields=["nad", "position"], name="nadrange_unique")]
        indexes = [models.Index(fields=["cluster", "pool_name"])]

    def __str__(self) -> str:
        return f"{self.range} ({self.pool_name})"


class Allocation(models.Model):
    # No index of its own: allocation_unique (pool, key) starts with pool. No database
    # constraint: a pool's allocations are written only right after the pool row, in the
    # same transaction, and deleted before it (ippam.sync.store); the per-row check cost
    # seconds on a first sync. ippam.sync.verify.rows_orphaned() checks the invariant.
    pool = models.ForeignKey(
        IPPool,
        on_delete=models.CASCADE,
        related_name="allocations",
        db_index=False,
        db_constraint=False,
    )
    # Redundant with the pool FK (whose row belongs to the cluster), so no database
    # constraint: checking it per row cost seconds on a full sync. The ORM's
    # CASCADE still applies; the index is the composite one below that starts with cluster.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    key = models.CharField(max_length=40, help_text="offset from the network address, decimal")
    ip = IPAddressField()
    container_id = models.CharField(max_length=128, blank=True)
    podref = models.CharField(max_length=317, blank=True)
    pod_namespace = models.CharField(max_length=63, blank=True)
    pod_name = models.CharField(max_length=253, blank=True)
    ifname = models.CharField(max_length=32, blank=True)
    # When ippam first saw this allocation (pool, key, podref), kept across syncs. An
    # allocation carries no timestamp of its own; the leak grace falls back to this when
    # nothing else (reservation, pod, event) dates it. Null: written before this existed.
    first_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pool", "ip"]
        constraints = [models.UniqueConstraint(fields=["pool", "key"], name="allocation_unique")]
        indexes = [
            models.Index(fields=["pool", "ip"]),  # the pool page: one pool's allocations by address
            models.Index(fields=["cluster", "ip"]),
            models.Index(fields=["cluster", "pod_namespace", "pod_name"]),
        ]

    def __str__(self) -> str:
        return f"{self.ip} -> {self.podref}"


class FreedAddress(models.Model):
    """An address an IPPool stopped allocating to a pod, kept for a bounded window.

    Whereabouts hands a freed address out again at once (it scans from the range start), so
    an address "held by" one pod a minute ago may already be another pod's: users chasing a
    stale ARP/neighbour entry need both. Written when an allocation (key, podref) disappears
    from a pool's rows (ippam.sync.freed); pruned after IPPAM_FREED_RETENTION_SECONDS. The pool
    is named, not a foreign key: a pool deleted and re-created keeps its history.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    pool_namespace = models.CharField(max_length=63)
    pool_name = models.CharField(max_length=253)
    key = models.CharField(max_length=40, help_text="offset from the network address, decimal")
    ip = IPAddressField()
    podref = models.CharField(max_length=317, blank=True)
    ifname = models.CharField(max_length=32, blank=True)
    freed_at = models.DateTimeField()

    class Meta:
        ordering = ["-freed_at"]
        indexes = [
            models.Index(fields=["cluster", "ip"]),  # search by address
            models.Index(fields=["cluster", "pool_namespace", "pool_name", "ip"]),  # pool map
            models.Index(fields=["cluster", "freed_at"]),  # pruning the window
        ]

    def __str__(self) -> str:
        return f"{self.ip} freed from {self.podref} at {self.freed_at:%Y-%m-%d %H:%M:%S}"


class OverlappingRangeIPReservation(KubeObject):
    namespace = models.CharField(max_length=63)
    ip = IPAddressField(
        null=True, blank=True, help_text="parsed from the name; null if it is not an address"
    )
    network_name = models.CharField(max_length=253, blank=True)
    podref = models.CharField(max_length=317, blank=True)
    pod_namespace = models.CharField(max_length=63, blank=True)
    pod_name = models.CharField(max_length=253, blank=True)
    ifname = models.CharField(max_length=32, blank=True)
    container_id = models.CharField(max_length=128, blank=True)
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["namespace", "name"]
        verbose_name = "OverlappingRangeIPReservation"
        constraints = [
            models.UniqueConstraint(fields=["cluster", "namespace", "name"], name="orip_unique")
        ]
        indexes = [models.Index(fields=["cluster", "ip"])]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class NodeSlicePool(KubeObject):
    namespace = models.CharField(max_length=63)
    range = models.CharField(max_length=64)
    slice_size = models.CharField(max_length=8, blank=True)
    allocations = models.JSONField(default=list, blank=True, help_text="[{nodeName, sliceRange}]")
    problems = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["namespace", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "namespace", "name"], name="nodeslicepool_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class PodInterface(models.Model):
    """One entry of a pod's network-status annotation."""

    # No index of its own: podinterface_unique (pod, network_name, interface) starts with pod.
    # No database constraint on pod or nad: interfaces are written only with their pod, in
    # the same transaction, cleared before it is deleted, and nad_id is nulled before a NAD
    # row goes (ippam.sync.store); the per-row checks cost seconds on a first sync.
    # ippam.sync.verify.rows_orphaned() checks the invariant.
    pod = models.ForeignKey(
        Pod,
        on_delete=models.CASCADE,
        related_name="interfaces",
        db_index=False,
        db_constraint=False,
    )
    # Redundant with the pod FK (whose row belongs to the cluster), so no database
    # constraint: checking it per row cost seconds on a full sync. The ORM's
    # CASCADE still applies; the index is the composite one below that starts with cluster.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    network_name = models.CharField(
        max_length=317, blank=True, help_text="ns/nad, or the default network"
    )
    nad_namespace = models.CharField(max_length=63, blank=True)
    nad_name = models.CharField(max_length=253, blank=True)
    nad = models.ForeignKey(
        NetworkAttachmentDefinition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="interfaces",
        db_constraint=False,
    )
    interface = models.CharField(max_length=32, blank=True)
    ips = models.JSONField(default=list, blank=True)
    mac = models.CharField(max_length=32, blank=True)
    default = models.BooleanField(default=False)
    mtu = models.PositiveIntegerField(null=True, blank=True)
    device_info = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["pod", "interface"]
        constraints = [
            models.UniqueConstraint(
                fields=["pod", "network_name", "interface"], name="podinterface_unique"
            )
        ]
        indexes = [models.Index(fields=["cluster", "mac"])]

    def __str__(self) -> str:
        return f"{self.interface} ({self.network_name})"


class InterfaceAddress(models.Model):
    """One IP of a PodInterface, a row each so the database can join it with allocations."""

    # No index of its own: interfaceaddress_unique (interface, ip) starts with interface.
    # No database constraint, as for PodInterface.pod: written with its interface, cleared
    # before it (ippam.sync.store); ippam.sync.verify.rows_orphaned() checks the invariant.
    interface = models.ForeignKey(
        PodInterface,
        on_delete=models.CASCADE,
        related_name="addresses",
        db_index=False,
        db_constraint=False,
    )
    # Redundant with the interface FK (whose row belongs to the cluster), so no database
    # constraint: checking it per row cost seconds on a full sync. The ORM's
    # CASCADE still applies; the index is the composite one below that starts with cluster.
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    ip = IPAddressField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["interface", "ip"], name="interfaceaddress_unique")
        ]
        indexes = [models.Index(fields=["cluster", "ip"])]

    def __str__(self) -> str:
        return str(self.ip)


class PodEvent(models.Model):
    """A Multus or Whereabouts event about a pod's attachments (kept for a bounded window)."""

    class Reason(models.TextChoices):
        ADDED_INTERFACE = "AddedInterface"
        FAILED_SANDBOX = "FailedCreatePodSandBox"
        GC = "IPAddressGarbageCollected"
        GC_FAILED = "IPAddressGarbageCollectionFailed"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+")
    uid = models.CharField(max_length=64)
    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=253)
    pod_namespace = models.CharField(max_length=63)
    pod_name = models.CharField(max_length=253)
    pod_uid = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=64, choices=Reason.choices)
    type = models.CharField(max_length=16, blank=True)
    message = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=1)
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    interface = models.CharField(max_length=32, blank=True)
    ip = IPAddressField(null=True, blank=True)
    nad = models.ForeignKey(
        NetworkAttachmentDefinition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    pool = models.ForeignKey(
        IPPool, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    sync_generation = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [models.UniqueConstraint(fields=["cluster", "uid"], name="podevent_unique")]
        indexes = [models.Index(fields=["cluster", "pod_namespace", "pod_name"])]

    def __str__(self) -> str:
        return f"{self.reason} {self.pod_namespace}/{self.pod_name}"


class Finding(models.Model):
    """A leak (or a suspicion of one), recomputed after every sync by ippam.leaks."""

    class Kind(models.TextChoices):
        ORPHANED_ALLOCATION = "orphaned_allocation", "orphaned allocation"
        STALE_ALLOCATION = "stale_allocation", "stale allocation"
        UNTRACKED_ADDRESS = "untracked_address", "untracked address"
        DUPLICATE_ADDRESS = "duplicate_address", "duplicate address"
        ORPHANED_RESERVATION = "orphaned_reservation", "orphaned reservation"
        OVERLAPPING_RANGE = "overlapping_range", "overlapping range"
        SLICE_STRANDED = "slice_stranded", "node slice of a gone node"
        NODE_WITHOUT_SLICE = "node_without_slice", "node without a slice"
        SLICES_EXHAUSTED = "slices_exhausted", "node slices all taken"

    class State(models.TextChoices):
        LEAKED = "leaked"
        SUSPECT = "suspect"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    identity = models.CharField(max_length=512, help_text="stable across syncs, e.g. kind:pool:key")
    state = models.CharField(max_length=8, choices=State.choices, default=State.LEAKED)
    ip = IPAddressField(null=True, blank=True)
    pool = models.ForeignKey(
        IPPool, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings"
    )
    allocation_key = models.CharField(max_length=40, blank=True)
    reservation = models.ForeignKey(
        OverlappingRangeIPReservation,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="findings",
    )
    nad = models.ForeignKey(
        NetworkAttachmentDefinition,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="findings",
    )
    podref = models.CharField(max_length=317, blank=True)
    node_name = models.CharField(max_length=253, blank=True)
    reason = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # Not stored: set for display by ippam.selectors.attach_finding_context.
    alert: Alert | None
    pod: Pod | None
    node: Node | None

    class Meta:
        ordering = ["kind", "ip"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "identity"], name="finding_unique")
        ]

    def __str__(self) -> str:
        return self.reason


class Alert(models.Model):
    class Kind(models.TextChoices):
        ORPHANED_ALLOCATION = "orphaned_allocation", "orphaned allocation"
        STALE_ALLOCATION = "stale_allocation", "stale allocation"
        UNTRACKED_ADDRESS = "untracked_address", "untracked address"
        DUPLICATE_ADDRESS = "duplicate_address", "duplicate address"
        ORPHANED_RESERVATION = "orphaned_reservation", "orphaned reservation"
        OVERLAPPING_RANGE = "overlapping_range", "overlapping range"
        SLICE_STRANDED = "slice_stranded", "node slice of a gone node"
        NODE_WITHOUT_SLICE = "node_without_slice", "node without a slice"
        SLICES_EXHAUSTED = "slices_exhausted", "node slices all taken"
        POOL_THRESHOLD = "pool_threshold", "pool above threshold"
        POOL_EXHAUSTED = "pool_exhausted", "pool exhausted"

    class State(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="alerts")
    identity = models.CharField(max_length=512)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    finding = models.ForeignKey(
        Finding, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    pool = models.ForeignKey(
        IPPool, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    message = models.TextField()
    opened_at = models.DateTimeField()
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    times_opened = models.PositiveIntegerField(default=1)
    # No notifications until then (ippam.notify); the page shows it.
    snoozed_until = models.DateTimeField(null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-opened_at"]
        permissions = [("acknowledge_alert", "Can acknowledge leak and pool alerts")]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "identity"], name="alert_unique"),
            models.CheckConstraint(
                condition=~Q(state="acknowledged") | Q(acknowledged_at__isnull=False),
                name="alert_acknowledged_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(state="resolved") | Q(resolved_at__isnull=False),
                name="alert_resolved_has_time",
            ),
        ]
        indexes = [models.Index(fields=["cluster", "state"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.state}"

    @property
    def text(self) -> str:
        """What the alert says now. A pool alert that is still active is rendered from its
        pool's numbers at display time (the pool loaded with select_related: no query), so it
        never says "90% full (82 of 91)" beside a row that reads 84 of 91; the stored
        message is the text as of the last detection (what notifications carried)."""
        live = (
            self.kind in (self.Kind.POOL_THRESHOLD, self.Kind.POOL_EXHAUSTED)
            and self.state != self.State.RESOLVED
            and self.pool_id is not None
            and Alert.pool.field.is_cached(self)
        )
        if not live or self.pool is None:
            return self.message
        threshold = float(getattr(settings, "IPPAM_POOL_ALERT_THRESHOLD", 0.9))
        label = f"{self.pool.namespace}/{self.pool.name}"
        return pool_alert_text(self.kind, label, self.pool.numbers, threshold)

    @property
    def is_snoozed(self) -> bool:
        from django.utils import timezone

        return self.snoozed_until is not None and self.snoozed_until > timezone.now()


class ReclaimRun(models.Model):
    class State(models.TextChoices):
        PLANNED = "planned"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="reclaim_runs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=150, help_text="who asked: a user name, or cli:<user>")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PLANNED)
    include_suspect = models.BooleanField(default=False)
    # Set by the worker after every item: a RUNNING run silent for longer than
    # IPPAM_RECLAIM_DEADLINE_SECONDS lost its worker and is marked failed when read.
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("reclaim_allocation", "Can reclaim leaked addresses from IPPools")]

    def __str__(self) -> str:
        return f"reclamation #{self.pk} ({self.state})"


class ReclaimItem(models.Model):
    class Outcome(models.TextChoices):
        PENDING = "pending"
        RECLAIMED = "reclaimed"
        SKIPPED = "skipped"
        FAILED = "failed"
        NOOP = "noop", "already gone"

    run = models.ForeignKey(ReclaimRun, on_delete=models.CASCADE, related_name="items")
    finding_identity = models.CharField(max_length=512)
    kind = models.CharField(max_length=32)
    pool_namespace = models.CharField(max_length=63, blank=True)
    pool_name = models.CharField(max_length=253, blank=True)
    allocation_key = models.CharField(max_length=40, blank=True)
    reservation_namespace = models.CharField(max_length=63, blank=True)
    reservation_name = models.CharField(max_length=253, blank=True)
    ip = IPAddressField(null=True, blank=True)
    podref = models.CharField(max_length=317, blank=True)
    # The uid of the podref's pod when planned ("" if there was none): a pod found under the
    # same name with another uid is another pod (a StatefulSet re-created it).
    pod_uid = models.CharField(max_length=64, blank=True)
    why = models.TextField(blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.PENDING)
    message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"{self.ip} {self.podref} ({self.outcome})"


class AuditEntry(models.Model):
    class Action(models.TextChoices):
        NAD_CREATE = "nad_create", "NAD created"
        ALERT_ACKNOWLEDGE = "alert_acknowledge", "alert acknowledged"
        ALLOCATION_RECLAIM = "allocation_reclaim", "allocation reclaimed"
        RESERVATION_DELETE = "reservation_delete", "reservation deleted"
        SYNC_REQUEST = "sync_request", "sync requested"

    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    action = models.CharField(max_length=32, choices=Action.choices)
    cluster = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.CharField(max_length=512)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    outcome = models.CharField(max_length=32)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["action", "-at"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.target} by {self.actor_name}"


class PoolSample(models.Model):
    """A pool's allocated and usable count at one time, for its history chart and forecast.

    One raw sample per pool per full sync; ippam.history downsamples them (raw for 48 hours,
    hourly for 30 days, daily for a year). Floats: a downsampled row holds an average, and
    the chart and the trend need no exact IPv6 counts (IPPool keeps those).
    """

    class Resolution(models.TextChoices):
        RAW = "raw"
        HOUR = "hour"
        DAY = "day"

    # No index of its own: the unique constraint starts with the pool.
    pool = models.ForeignKey(
        IPPool, on_delete=models.CASCADE, related_name="samples", db_index=False
    )
    at = models.DateTimeField()
    resolution = models.CharField(max_length=4, choices=Resolution.choices, default=Resolution.RAW)
    allocated = models.FloatField()
    usable = models.FloatField()

    class Meta:
        constraints = [
            # (pool, at) first: the chart and the forecast read one pool's recent samples.
            models.UniqueConstraint(fields=["pool", "at", "resolution"], name="poolsample_unique")
        ]
        indexes = [models.Index(fields=["resolution", "at"])]

    def __str__(self) -> str:
        return f"{self.pool_id} {self.at:%Y-%m-%d %H:%M} {self.resolution}"


class AlertDelivery(models.Model):
    """One notification of one alert state change on one channel (ippam.notify).

    The unique constraint is the "never twice" guarantee: a state change gets its rows once,
    and a worker claims a row (pending/failed -> sending) atomically before it sends.
    """

    class Transition(models.TextChoices):
        OPENED = "opened"
        REOPENED = "reopened"
        RESOLVED = "resolved"

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        EMAIL = "email"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SUPPRESSED = "suppressed", "suppressed (snoozed)"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    transition = models.CharField(max_length=8, choices=Transition.choices)
    # Which opening of the alert this change belongs to (Alert.times_opened then): an alert
    # re-opened twice has two "reopened" changes, each notified once.
    occurrence = models.PositiveIntegerField(default=1)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # The alert as it was at the change, so a later change cannot alter what this one says.
    payload = models.JSONField(default=dict)
    # The notification group (ippam.notify.group_key): one POST carries a group's changes.
    group_key = models.CharField(max_length=300, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "transition", "occurrence", "channel"], name="alertdelivery_unique"
            )
        ]
        indexes = [
            models.Index(fields=["status", "channel", "group_key"], name="alertdelivery_due"),
        ]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.transition}#{self.occurrence} {self.channel}: {self.status}"


class PoolBlock(models.Model):
    """How many of a pool's allocations fall in each block of 256 addresses (an IPv4 /24,
    an IPv6 /120): the pool page's heat map sums these instead of counting the allocations
    (60k in a /16) on every view. Kept by ippam.pool_blocks wherever a pool's allocations
    are written (sync and watch through store.pools_refresh_usage, reclaim); a block no
    allocation falls in has no row.
    """

    # No database constraint, as for Allocation.pool: store.objects_delete clears a pool's
    # blocks before the pool row; ippam.sync.verify.rows_orphaned() checks the invariant.
    pool = models.ForeignKey(
        IPPool, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    first_ip = IPAddressField(help_text="first address of the block")
    allocated = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "first_ip"], name="poolblock_unique")
        ]

    def __str__(self) -> str:
        return f"{self.pool_id} {self.first_ip}: {self.allocated}"
