"""Data every page's layout shows: the cluster switcher, each cluster's sync state, banners.

Read-only and lazy: the queries run only when a template uses `layout` (the admin's pages
never do), and the session is written by `views.common.selected_cluster`, never while a
template renders.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject


def _layout(request: HttpRequest) -> dict[str, Any]:
    from dashboard.views.common import remembered_cluster
    from ippam.selectors.clusters import cluster_health_list

    clusters, selected = remembered_cluster(request)
    health = cluster_health_list(clusters=clusters)
    shown = [h for h in health if selected is None or h.cluster.pk == selected.pk]
    return {
        "clusters": clusters,
        "selected": selected,
        "health": shown,
        "stale": [h for h in shown if h.is_stale],
        # The page's data looks stale when everything it shows is: one cluster, or all of them.
        "all_stale": bool(shown) and all(h.is_stale for h in shown),
        "simulated": [h.cluster for h in shown if h.cluster.simulated],
    }


def layout(request: HttpRequest) -> dict[str, Any]:
    """`layout` for base.html; empty for anonymous visitors (the login page)."""
    user = getattr(request, "user", None)
    if not getattr(user, "is_authenticated", False):
        return {"layout": {}}
    return {"layout": SimpleLazyObject(lambda: _layout(request))}
