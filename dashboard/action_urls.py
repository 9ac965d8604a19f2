"""Routes for the mutating views (NAD creation, acknowledgement, reclamation, audit log)."""

from django.urls import path

from dashboard import action_views as views

urlpatterns = [
    path("nads/new/", views.nad_new, name="nad_create"),
    path("nads/new/preview/", views.nad_preview, name="nad_preview"),
    path("nads/new/fieldset/", views.nad_fieldset, name="nad_fieldset"),
    path("alerts/", views.alert_list, name="alert_list"),
    path("alerts/acknowledge/", views.alert_acknowledge_view, name="alert_acknowledge"),
    path("reclaim/plan/", views.reclaim_plan_view, name="reclaim_plan"),
    path("reclaim/<int:run_id>/", views.reclaim_progress, name="reclaim_progress"),
    path("reclaim/<int:run_id>/execute/", views.reclaim_execute_view, name="reclaim_execute"),
    path("audit/", views.audit_list, name="audit"),
]
