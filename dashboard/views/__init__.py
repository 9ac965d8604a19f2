"""The dashboard's web layer: thin function views, one module per area.

Each view reads through ippam.selectors and renders one URL two ways: the full page, or a
named template partial when htmx asks for a fragment (see common.render_page).
"""

from __future__ import annotations

from dashboard.views.health import healthz
from dashboard.views.leaks import leak_list
from dashboard.views.nads import nad_detail, nad_list
from dashboard.views.nodes import node_detail, node_list
from dashboard.views.overview import overview
from dashboard.views.pools import pool_detail, pool_list
from dashboard.views.search import search

__all__ = [
    "healthz",
    "leak_list",
    "nad_detail",
    "nad_list",
    "node_detail",
    "node_list",
    "overview",
    "pool_detail",
    "pool_list",
    "search",
]
