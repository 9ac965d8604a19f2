"""The dashboard's web layer: thin function views, one module per area.

Each view reads through ippam.selectors, writes through one service, and answers through
common.render_page: the full page, or a named template partial when htmx asks for a
fragment. Mutations answer with the changed fragment plus an htmx event
(django_htmx.http.trigger_client_event) that other regions listen for.
"""

from __future__ import annotations

from dashboard.views.alerts import alert_acknowledge, alert_assign, alert_list, alert_snooze
from dashboard.views.audit import audit_list
from dashboard.views.health import healthz, metrics, readyz
from dashboard.views.leaks import leak_list
from dashboard.views.nad_create import nad_fieldset, nad_new, nad_preview
from dashboard.views.nads import nad_detail, nad_list
from dashboard.views.nodes import node_detail, node_list
from dashboard.views.overview import overview
from dashboard.views.pools import pool_detail, pool_list
from dashboard.views.reclaim import reclaim_execute_view, reclaim_plan_view, reclaim_progress
from dashboard.views.search import search

__all__ = [
    "alert_acknowledge",
    "alert_assign",
    "alert_list",
    "alert_snooze",
    "audit_list",
    "healthz",
    "leak_list",
    "metrics",
    "nad_detail",
    "nad_fieldset",
    "nad_list",
    "nad_new",
    "nad_preview",
    "node_detail",
    "node_list",
    "overview",
    "pool_detail",
    "pool_list",
    "reclaim_execute_view",
    "reclaim_plan_view",
    "reclaim_progress",
    "readyz",
    "search",
]
