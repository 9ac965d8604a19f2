"""What the API (and the dashboard's exports) show of each model: flat rows of plain
values, so a CSV column is a field and a JSON export is the same list."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from ippam.models import (
    Alert,
    Allocation,
    Cluster,
    Finding,
    IPPool,
    NADRange,
    NetworkAttachmentDefinition,
    PodInterface,
)
from ippam.poolnumbers import PoolNumbers


class IPField(serializers.CharField):
    """An ippam IPAddressField (a netaddr.IPAddress) as its text."""

    def to_representation(self, value: Any) -> str:
        return str(value)


class ClusterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cluster
        fields = [
            "id",
            "name",
            "enabled",
            "simulated",
            "in_cluster",
            "sync_state",
            "sync_error",
            "sync_notice",
            "last_sync_started",
            "last_sync_finished",
            "last_good_sync",
        ]


class PoolSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    # Exact integers from the pool's one set of numbers (ippam.poolnumbers): a /64's
    # usable is 2**63 - 1, which a float would round up past it.
    usable = serializers.IntegerField(source="numbers.usable")
    allocated = serializers.IntegerField(source="numbers.allocated")
    free = serializers.IntegerField(source="numbers.free")
    utilization = serializers.FloatField(source="numbers.utilization")
    leak_count = serializers.IntegerField(default=None)
    days_to_exhaustion = serializers.SerializerMethodField()
    days_to_exhaustion_range = serializers.SerializerMethodField()
    nads = serializers.SerializerMethodField()

    class Meta:
        model = IPPool
        fields = [
            "id",
            "cluster",
            "namespace",
            "name",
            "range",
            "network_name",
            "node_name",
            "usable",
            "allocated",
            "free",
            "utilization",
            "leak_count",
            "days_to_exhaustion",
            "days_to_exhaustion_range",
            "nads",
            "problems",
        ]

    def get_days_to_exhaustion(self, pool: IPPool) -> float | None:
        # Set by the history/forecast selector (an annotation or attribute) when it knows.
        value = getattr(pool, "days_to_exhaustion", None)
        return None if value is None else float(value)

    def get_days_to_exhaustion_range(self, pool: IPPool) -> list[float] | None:
        # [earliest, latest]: the days at the ends of the fitted slope's 95 % interval.
        found = getattr(pool, "forecast", None)
        if found is None or found.full:
            return None
        return [found.earliest, found.latest]

    def get_nads(self, pool: IPPool) -> list[str]:
        # The selectors prefetch nad_ranges with their NAD: no query per pool.
        return sorted({f"{r.nad.namespace}/{r.nad.name}" for r in pool.nad_ranges.all()})


class AllocationSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    pool_name = serializers.SerializerMethodField()
    ip = IPField()

    class Meta:
        model = Allocation
        fields = [
            "id",
            "cluster",
            "pool",
            "pool_name",
            "key",
            "ip",
            "podref",
            "pod_namespace",
            "pod_name",
            "ifname",
            "container_id",
            "first_seen",
        ]

    def get_pool_name(self, allocation: Allocation) -> str:
        return f"{allocation.pool.namespace}/{allocation.pool.name}"


class UsableCountField(serializers.IntegerField):
    """A stored usable count, exact: read through PoolNumbers, which undoes SQLite's float."""

    def to_representation(self, value: Any) -> int:
        return PoolNumbers.of(value, 0).usable


class NADRangeSerializer(serializers.ModelSerializer):
    range_start = IPField(allow_null=True)
    range_end = IPField(allow_null=True)
    gateway = IPField(allow_null=True)
    usable = UsableCountField()

    class Meta:
        model = NADRange
        fields = [
            "position",
            "range",
            "range_start",
            "range_end",
            "exclude",
            "gateway",
            "network_name",
            "enable_overlapping_ranges",
            "node_slice_size",
            "usable",
            "pool_name",
            "pool",
        ]


class NADSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    pods_attached = serializers.IntegerField(default=None)
    ranges = NADRangeSerializer(many=True)

    class Meta:
        model = NetworkAttachmentDefinition
        fields = [
            "id",
            "cluster",
            "namespace",
            "name",
            "cni_type",
            "ipam_type",
            "master",
            "mode",
            "resource_name",
            "node_selector",
            "config_on_node",
            "pods_attached",
            "ranges",
            "problems",
        ]


class InterfaceSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    pod = serializers.CharField(source="pod.podref")
    node = serializers.CharField(source="pod.node_name")

    class Meta:
        model = PodInterface
        fields = [
            "id",
            "cluster",
            "pod",
            "node",
            "network_name",
            "nad",
            "interface",
            "ips",
            "mac",
            "default",
            "mtu",
        ]


class FindingSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    ip = IPField(allow_null=True)
    pool_name = serializers.SerializerMethodField()

    class Meta:
        model = Finding
        fields = [
            "id",
            "cluster",
            "kind",
            "state",
            "identity",
            "ip",
            "pool",
            "pool_name",
            "allocation_key",
            "reservation",
            "nad",
            "podref",
            "node_name",
            "reason",
            "details",
            "first_seen",
            "last_seen",
        ]

    def get_pool_name(self, finding: Finding) -> str:
        pool = finding.pool
        return f"{pool.namespace}/{pool.name}" if pool is not None else ""


class AlertSerializer(serializers.ModelSerializer):
    cluster = serializers.CharField(source="cluster.name")
    # A pool alert's text from the pool's numbers now, as the pages show it (Alert.text).
    message = serializers.CharField(source="text", read_only=True)
    acknowledged_by = serializers.SerializerMethodField()

    class Meta:
        model = Alert
        fields = [
            "id",
            "cluster",
            "identity",
            "kind",
            "state",
            "finding",
            "pool",
            "message",
            "opened_at",
            "acknowledged_by",
            "acknowledged_at",
            "note",
            "resolved_at",
            "times_opened",
        ]

    def get_acknowledged_by(self, alert: Alert) -> str:
        user = alert.acknowledged_by
        return user.get_username() if user is not None else ""


class AcknowledgeSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class FreeRangeSerializer(serializers.Serializer):
    nad = serializers.CharField()
    position = serializers.IntegerField()
    range_start = serializers.CharField()
    range_end = serializers.CharField()
    exclude = serializers.ListField(child=serializers.CharField())
    addresses = serializers.ListField(child=IPField())
    error = serializers.CharField()
    held_by = serializers.DictField(
        child=serializers.CharField(),
        help_text="next addresses a live pod lists on this network with no allocation "
        "tracking them: whereabouts hands them out anyway (address -> namespace/pod)",
    )


class PoolSampleSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    allocated = serializers.FloatField()
    usable = serializers.FloatField()


class ForecastSerializer(serializers.Serializer):
    full = serializers.BooleanField(help_text="every usable address is allocated now")
    days = serializers.FloatField(help_text="days until full at the fitted 7-day trend")
    earliest = serializers.FloatField(help_text="days, at the fastest rate the 95 % band allows")
    latest = serializers.FloatField(help_text="days, at the slowest rate the 95 % band allows")


class PoolHistorySerializer(serializers.Serializer):
    pool = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    samples = PoolSampleSerializer(many=True)
    forecast = ForecastSerializer(
        allow_null=True,
        help_text="null while the history cannot honestly say: under 12 samples or a day, "
        "no rise the trend tells from noise, or not within a year",
    )
    days_to_exhaustion = serializers.FloatField(allow_null=True)


class FreeAddressesSerializer(serializers.Serializer):
    pool = serializers.IntegerField(source="pool.id")
    range = serializers.CharField(source="pool.range")
    count = serializers.IntegerField()
    addresses = serializers.ListField(child=IPField())
    reason = serializers.CharField()
    ranges = FreeRangeSerializer(many=True)
    held_by = serializers.DictField(
        child=serializers.CharField(),
        help_text="of `addresses` and the ranges' addresses, those a live pod lists on this "
        "pool's network with no allocation tracking them: whereabouts hands them out next "
        "anyway, a duplicate address (address -> namespace/pod)",
    )


class SyncRequestSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
    running_since = serializers.DateTimeField(allow_null=True)
    detail = serializers.CharField()
