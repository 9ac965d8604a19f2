"""/api/v1/: the router's ViewSets, the OpenAPI document and its docs page.

The API authenticates with DRF (token or session) inside the view; DRF marks its views
login_not_required, so Django's LoginRequiredMiddleware (sessions only) does not turn a token
request away first, and the API's permission class (dashboard.api.permissions) answers an
anonymous request with 401. The docs page is for browsers: it sends them to log in.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from dashboard.views import api as views

router = DefaultRouter()
router.register("clusters", views.ClusterViewSet, basename="cluster")
router.register("pools", views.PoolViewSet, basename="pool")
router.register("allocations", views.AllocationViewSet, basename="allocation")
router.register("nads", views.NADViewSet, basename="nad")
router.register("interfaces", views.InterfaceViewSet, basename="interface")
router.register("findings", views.FindingViewSet, basename="finding")
router.register("alerts", views.AlertViewSet, basename="alert")


app_name = "api"
urlpatterns = [
    *router.urls,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", login_required(views.DocsView.as_view(url_name="api:schema")), name="docs"),
]
