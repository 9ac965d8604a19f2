"""Django admin: every model browsable; the audit log read-only (it is evidence)."""

from __future__ import annotations

from typing import ClassVar

from django.contrib import admin
from django.http import HttpRequest

from ippam import models


@admin.register(models.Cluster)
class ClusterAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "simulated", "sync_state", "last_good_sync")
    list_filter = ("enabled", "simulated", "sync_state")
    search_fields = ("name",)
    readonly_fields = (
        "sync_state",
        "sync_error",
        "last_sync_started",
        "last_sync_finished",
        "last_good_sync",
        "sync_generation",
        "resource_versions",
        "created_at",
    )


class SyncedAdmin(admin.ModelAdmin):
    """Synced rows mirror the cluster: edits would be overwritten by the next sync."""

    list_select_related: ClassVar[tuple[str, ...]] = ("cluster",)
    list_filter: ClassVar[tuple[str, ...]] = ("cluster",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(models.SyncRun)
class SyncRunAdmin(SyncedAdmin):
    list_display = ("cluster", "started_at", "finished_at", "outcome")
    list_filter = ("cluster", "outcome")


@admin.register(models.Node)
class NodeAdmin(SyncedAdmin):
    list_display = ("name", "cluster", "ready")
    search_fields = ("name",)


@admin.register(models.Pod)
class PodAdmin(SyncedAdmin):
    list_display = ("namespace", "name", "cluster", "node_name", "phase")
    list_filter = ("cluster", "phase")
    search_fields = ("namespace", "name", "node_name")


@admin.register(models.NetworkAttachmentDefinition)
class NADAdmin(SyncedAdmin):
    list_display = ("namespace", "name", "cluster", "cni_type", "ipam_type", "is_valid")
    list_filter = ("cluster", "cni_type", "ipam_type")
    search_fields = ("namespace", "name")

    @admin.display(boolean=True)
    def is_valid(self, obj: models.NetworkAttachmentDefinition) -> bool:
        return obj.is_valid


@admin.register(models.IPPool)
class IPPoolAdmin(SyncedAdmin):
    list_display = (
        "namespace",
        "name",
        "cluster",
        "range",
        "network_name",
        "allocated",
        "usable",
        "utilization",
    )
    search_fields = ("namespace", "name", "range", "network_name")


@admin.register(models.NADRange)
class NADRangeAdmin(SyncedAdmin):
    list_display = ("nad", "position", "range", "network_name", "pool_name")
    list_select_related = ("cluster", "nad")
    search_fields = ("range", "network_name", "pool_name")


@admin.register(models.Allocation)
class AllocationAdmin(SyncedAdmin):
    list_display = ("ip", "pool", "podref", "ifname", "key")
    list_select_related = ("cluster", "pool")
    search_fields = ("podref", "pool__name")
    show_full_result_count = False


@admin.register(models.OverlappingRangeIPReservation)
class ReservationAdmin(SyncedAdmin):
    list_display = ("namespace", "name", "cluster", "ip", "podref")
    search_fields = ("name", "podref")


@admin.register(models.NodeSlicePool)
class NodeSlicePoolAdmin(SyncedAdmin):
    list_display = ("namespace", "name", "cluster", "range", "slice_size")


@admin.register(models.PodInterface)
class PodInterfaceAdmin(SyncedAdmin):
    list_display = ("pod", "interface", "network_name", "mac", "default")
    list_select_related = ("cluster", "pod")
    search_fields = ("network_name", "mac", "pod__name")
    show_full_result_count = False


@admin.register(models.InterfaceAddress)
class InterfaceAddressAdmin(SyncedAdmin):
    list_display = ("ip", "interface")
    list_select_related = ("cluster", "interface", "interface__pod")
    show_full_result_count = False


@admin.register(models.PodEvent)
class PodEventAdmin(SyncedAdmin):
    list_display = ("last_seen", "reason", "pod_namespace", "pod_name", "cluster", "message")
    list_filter = ("cluster", "reason")
    search_fields = ("pod_name", "message")


@admin.register(models.Finding)
class FindingAdmin(SyncedAdmin):
    list_display = ("kind", "state", "ip", "podref", "cluster", "last_seen")
    list_filter = ("cluster", "kind", "state")
    search_fields = ("identity", "podref", "reason")


@admin.register(models.Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alerts are opened and resolved by leak detection; acknowledge them in the dashboard."""

    list_display = ("kind", "state", "cluster", "opened_at", "acknowledged_by", "acknowledged_at")
    list_filter = ("cluster", "kind", "state")
    list_select_related = ("cluster", "acknowledged_by")
    search_fields = ("identity", "message", "note")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReclaimItemInline(admin.TabularInline):
    model = models.ReclaimItem
    extra = 0
    can_delete = False
    fields = (
        "pool_namespace",
        "pool_name",
        "allocation_key",
        "ip",
        "podref",
        "outcome",
        "message",
        "attempts",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(models.ReclaimRun)
class ReclaimRunAdmin(admin.ModelAdmin):
    list_display = ("id", "cluster", "actor", "state", "created_at", "finished_at")
    list_filter = ("cluster", "state")
    list_select_related = ("cluster",)
    inlines = [ReclaimItemInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(models.ReclaimItem)
class ReclaimItemAdmin(admin.ModelAdmin):
    list_display = ("run", "pool_name", "ip", "podref", "outcome", "attempts")
    list_filter = ("outcome", "kind")
    list_select_related = ("run",)
    search_fields = ("podref", "pool_name", "message")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(models.AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_name", "action", "cluster", "target", "outcome")
    list_filter = ("action", "outcome", "cluster")
    list_select_related = ("cluster",)
    search_fields = ("actor_name", "target", "message")
    date_hierarchy = "at"
    readonly_fields = (
        "at",
        "actor",
        "actor_name",
        "action",
        "cluster",
        "target",
        "before",
        "after",
        "outcome",
        "message",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows ippam keeps for itself (counters, leases, history, deliveries): shown, never
    edited by hand, since the processes that own them would overwrite or trip over edits."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(models.WatchEventCount)
class WatchEventCountAdmin(ReadOnlyAdmin):
    list_display = ("cluster", "kind", "total")
    list_filter = ("cluster",)


@admin.register(models.WatcherLease)
class WatcherLeaseAdmin(ReadOnlyAdmin):
    list_display = ("cluster", "holder", "generation", "heartbeat_at", "expires_at")


@admin.register(models.WatcherProcess)
class WatcherProcessAdmin(ReadOnlyAdmin):
    list_display = ("identity", "heartbeat_at", "expires_at")


@admin.register(models.PoolSample)
class PoolSampleAdmin(ReadOnlyAdmin):
    list_display = ("pool", "at", "resolution", "allocated", "usable")
    list_filter = ("resolution",)
    list_select_related = ("pool",)


@admin.register(models.AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("alert", "transition", "channel", "status", "attempts", "sent_at")
    list_filter = ("status", "channel")
    list_select_related = ("alert",)


@admin.register(models.Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ("name", "expires_at")


@admin.register(models.FreedAddress)
class FreedAddressAdmin(ReadOnlyAdmin):
    list_display = ("ip", "pool_namespace", "pool_name", "podref", "freed_at")
    list_filter = ("cluster",)


@admin.register(models.PoolBlock)
class PoolBlockAdmin(ReadOnlyAdmin):
    list_display = ("pool", "first_ip", "allocated")
    list_filter = ("cluster",)
    list_select_related = ("pool",)
