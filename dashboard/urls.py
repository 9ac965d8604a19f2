from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # The read-only dashboard (issue 6).
    path("pools/", views.pool_list, name="pool_list"),
    path("pools/<int:pool_id>/", views.pool_detail, name="pool_detail"),
    path("nads/", views.nad_list, name="nad_list"),
    path("nads/<int:nad_id>/", views.nad_detail, name="nad_detail"),
    path("nodes/", views.node_list, name="node_list"),
    path("nodes/<int:node_id>/", views.node_detail, name="node_detail"),
    path("leaks/", views.leak_list, name="leak_list"),
    path("search/", views.search, name="search"),
    # Actions (NAD creation, alerts, reclaim, audit): dashboard/action_urls.py (issue 7).
    path("", include("dashboard.action_urls")),
]
