"""The REST API's views, NetBox style: one short read-only ViewSet per model (a selector's
queryset, a serializer, the page's FilterSet), the computed list of a pool's next free
addresses, and acknowledging an alert through the same service as the alerts page. Routes,
serializers, the permission class and the CSV renderer live in dashboard/api/."""

from __future__ import annotations

import re
from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend  # type: ignore[import-untyped]
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import ReadOnlyModelViewSet

from dashboard.api import serializers as s
from dashboard.api.permissions import RolePermission
from ippam import filters
from ippam.leaks import AlertError
from ippam.models import Cluster, IPPool
from ippam.selectors.alerts import alert_list
from ippam.selectors.findings import finding_list
from ippam.selectors.free_addresses import MAX_FREE_COUNT, pool_free_addresses
from ippam.selectors.history import pool_history, pools_attach_days_to_exhaustion
from ippam.selectors.listings import allocation_list, interface_list
from ippam.selectors.nads import nad_list
from ippam.selectors.pools import pool_list_with_usage
from ippam.selectors.shared import scoped
from ippam.services.alerts import alerts_acknowledge
from ippam.services.sync import cluster_sync_request

CLUSTER_NAME_MAX = Cluster._meta.get_field("name").max_length or 63
CLUSTER_NAME_RE = re.compile(r"[-a-zA-Z0-9_]+")


class Paging(LimitOffsetPagination):
    default_limit = 50
    max_limit = 1000


class FilterBackend(DjangoFilterBackend):
    """The pages' FilterSets, minus `cluster`: the API scopes by cluster name itself
    (`?cluster=NAME`, as the page's cluster switcher does), whatever a FilterSet means by it."""

    def get_filterset_kwargs(self, request: Request, queryset: QuerySet, view: Any) -> Any:
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        data = kwargs["data"].copy()
        data.pop("cluster", None)
        kwargs["data"] = data
        return kwargs


class ApiViewSet(ReadOnlyModelViewSet):
    permission_classes = [RolePermission]
    filter_backends = [FilterBackend]
    pagination_class = Paging
    required_permissions: dict[str, str] = {}

    def cluster(self) -> Cluster | None:
        name = self.request.query_params.get("cluster", "").strip()
        if not name or self.detail:
            return None
        # A cluster name is a slug of at most 63 characters; anything else names none (and
        # PostgreSQL refuses a NUL byte in a query, which would be a 500).
        if len(name) > CLUSTER_NAME_MAX or not CLUSTER_NAME_RE.fullmatch(name):
            raise ValidationError(
                {"cluster": "a cluster name is letters, digits, - and _ (at most 63)"}
            )
        cluster = Cluster.objects.filter(name=name).first()
        if cluster is None:
            raise ValidationError(
                {"cluster": f"no cluster named {name!r}; GET /api/v1/clusters/ lists them"}
            )
        return cluster

    def paginate_queryset(self, queryset: Any) -> Any:
        # ?format=csv is an export: every matching row, not one page of them.
        renderer = getattr(self.request, "accepted_renderer", None)
        if renderer is not None and renderer.format == "csv":
            return None
        return super().paginate_queryset(queryset)


class ClusterViewSet(ApiViewSet):
    serializer_class = s.ClusterSerializer
    required_permissions = {"sync": "ippam.request_sync"}

    @extend_schema(
        request=None, responses={202: s.SyncRequestSerializer, 409: s.SyncRequestSerializer}
    )
    @action(detail=True, methods=["post"], renderer_classes=[JSONRenderer], filter_backends=[])
    def sync(self, request: Request, pk: str | None = None) -> Response:
        """Queue a full sync of this cluster now (operators and admins): 202, or 409 naming
        when the sync that is already running started."""
        asked = cluster_sync_request(cluster=self.get_object(), actor=request.user)
        body = s.SyncRequestSerializer(
            {
                "queued": asked.queued,
                "running_since": asked.running_since,
                "detail": asked.message,
            }
        ).data
        return Response(
            body, status=status.HTTP_202_ACCEPTED if asked.queued else status.HTTP_409_CONFLICT
        )

    def get_queryset(self) -> QuerySet:
        cluster = self.cluster()
        clusters = Cluster.objects.order_by("name")
        return clusters if cluster is None else clusters.filter(pk=cluster.pk)


class PoolViewSet(ApiViewSet):
    serializer_class = s.PoolSerializer
    filterset_class = filters.PoolFilter

    def get_queryset(self) -> QuerySet:
        sort = self.request.query_params.get("sort")
        return pool_list_with_usage(cluster=self.cluster(), sort=sort)[0]

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        # days_to_exhaustion comes from the pools' history: one query for the page (or pool).
        if args and isinstance(args[0], IPPool):
            pools_attach_days_to_exhaustion([args[0]])
        elif args and kwargs.get("many"):
            args = (pools_attach_days_to_exhaustion(args[0]), *args[1:])
        return super().get_serializer(*args, **kwargs)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "count",
                OpenApiTypes.INT,
                description=f"how many addresses (default 10, at most {MAX_FREE_COUNT})",
            )
        ],
        responses=s.FreeAddressesSerializer,
    )
    @action(detail=True, renderer_classes=[JSONRenderer], filter_backends=[])
    def free(self, request: Request, pk: str | None = None) -> Response:
        """The next addresses whereabouts would hand out from this pool, in its order."""
        raw = request.query_params.get("count", "10")
        try:
            count = int(raw)
        except ValueError:
            raise ValidationError({"count": f"{raw!r} is not a whole number"}) from None
        if count < 1:
            raise ValidationError({"count": "ask for at least 1 address"})
        free = pool_free_addresses(pool=self.get_object(), count=min(count, MAX_FREE_COUNT))
        return Response(s.FreeAddressesSerializer(free).data)

    @extend_schema(responses=s.PoolHistorySerializer)
    @action(detail=True, renderer_classes=[JSONRenderer], filter_backends=[])
    def history(self, request: Request, pk: str | None = None) -> Response:
        """The pool's last 30 days of samples (allocated, usable) and its forecast."""
        pool = self.get_object()
        found = pool_history(pool=pool)
        body = {
            "pool": pool.pk,
            "start": found["start"],
            "end": found["end"],
            "samples": [
                {"at": at, "allocated": allocated, "usable": usable}
                for at, allocated, usable in found["series"]
            ],
            "forecast": found["forecast"],
            "days_to_exhaustion": found["days_to_exhaustion"],
        }
        return Response(s.PoolHistorySerializer(body).data)


class AllocationViewSet(ApiViewSet):
    serializer_class = s.AllocationSerializer
    filterset_class = filters.AllocationFilter

    def get_queryset(self) -> QuerySet:
        return allocation_list(cluster=self.cluster())


class NADViewSet(ApiViewSet):
    serializer_class = s.NADSerializer
    filterset_class = filters.NADFilter

    def get_queryset(self) -> QuerySet:
        return nad_list(cluster=self.cluster(), sort=self.request.query_params.get("sort"))[0]


class InterfaceViewSet(ApiViewSet):
    serializer_class = s.InterfaceSerializer
    filterset_class = filters.InterfaceFilter

    def get_queryset(self) -> QuerySet:
        return interface_list(cluster=self.cluster())


class FindingViewSet(ApiViewSet):
    serializer_class = s.FindingSerializer
    filterset_class = filters.FindingFilter

    def get_queryset(self) -> QuerySet:
        return finding_list(cluster=self.cluster())


class AlertViewSet(ApiViewSet):
    serializer_class = s.AlertSerializer
    filterset_class = filters.AlertFilter
    required_permissions = {"acknowledge": "ippam.acknowledge_alert"}

    def get_queryset(self) -> QuerySet:
        return scoped(alert_list(), self.cluster())

    @extend_schema(request=s.AcknowledgeSerializer, responses=s.AlertSerializer)
    @action(
        detail=True,
        methods=["post"],
        renderer_classes=[JSONRenderer],
        filter_backends=[],
    )
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Acknowledge an open alert with an optional note (operators and admins)."""
        body = s.AcknowledgeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alert = self.get_object()
        try:
            (changed,) = alerts_acknowledge(
                alerts=[alert], user=request.user, note=body.validated_data["note"]
            )
        except AlertError as exc:
            return Response(
                {"detail": f"Not acknowledged: {exc}. GET the alert again to see its state."},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(s.AlertSerializer(changed).data)


class DocsView(SpectacularSwaggerSplitView):
    # drf-spectacular's template carries an inline <style>; this one links a stylesheet, and
    # the split view serves the init script as a file: nothing inline for the strict CSP.
    template_name = "api/swagger_ui.html"
