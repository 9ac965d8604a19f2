from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import views
from dashboard.views.assets import favicon
from dashboard.views.deliveries import delivery_list_view
from dashboard.views.exports import export_findings, export_pool_allocations, export_pools
from dashboard.views.login import login_view
from dashboard.views.sync import cluster_sync_now

urlpatterns = [
    path("", views.overview, name="overview"),
    # Browsers ask for /favicon.ico on their own (a bookmark, a page without <link rel=icon>).
    path("favicon.ico", favicon),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("login/", login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # What the synced clusters hold.
    path("pools/", views.pool_list, name="pool_list"),
    path("pools/<int:pool_id>/", views.pool_detail, name="pool_detail"),
    path("nads/", views.nad_list, name="nad_list"),
    path("nads/<int:nad_id>/", views.nad_detail, name="nad_detail"),
    path("nodes/", views.node_list, name="node_list"),
    path("nodes/<int:node_id>/", views.node_detail, name="node_detail"),
    path("leaks/", views.leak_list, name="leak_list"),
    path("search/", views.search, name="search"),
    # Exports of what a list shows, with its filters (the API serves the same rows).
    path("pools/export.<str:fmt>", export_pools, name="pool_export"),
    path("leaks/export.<str:fmt>", export_findings, name="finding_export"),
    path(
        "pools/<int:pool_id>/allocations.<str:fmt>",
        export_pool_allocations,
        name="allocation_export",
    ),
    path("api/v1/", include("dashboard.api.urls")),
    # Acting on them: each view checks its permission on the server.
    path("nads/new/", views.nad_new, name="nad_create"),
    path("nads/new/preview/", views.nad_preview, name="nad_preview"),
    path("nads/new/fieldset/", views.nad_fieldset, name="nad_fieldset"),
    path("alerts/", views.alert_list, name="alert_list"),
    path("alerts/acknowledge/", views.alert_acknowledge, name="alert_acknowledge"),
    path("alerts/<int:alert_id>/snooze/", views.alert_snooze, name="alert_snooze"),
    path("alerts/<int:alert_id>/assign/", views.alert_assign, name="alert_assign"),
    path("alerts/notifications/", delivery_list_view, name="delivery_list"),
    path("reclaim/plan/", views.reclaim_plan_view, name="reclaim_plan"),
    path("reclaim/<int:run_id>/", views.reclaim_progress, name="reclaim_progress"),
    path("reclaim/<int:run_id>/execute/", views.reclaim_execute_view, name="reclaim_execute"),
    path("audit/", views.audit_list, name="audit"),
    path("clusters/<int:cluster_id>/sync/", cluster_sync_now, name="cluster_sync"),
]
