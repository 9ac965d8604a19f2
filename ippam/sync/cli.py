"""Shared bits of the operator commands (sync, pools, nads, interfaces, cluster)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.core.management.base import CommandError

from ippam.clusters import ClusterError, cluster_get
from ippam.models import Cluster


def clusters_selected(name: str | None) -> list[Cluster]:
    """The cluster named `name`, or every cluster; errors say what exists and what to do."""
    if name:
        try:
            return [cluster_get(name=name)]
        except ClusterError as exc:
            raise CommandError(str(exc)) from exc
    clusters = list(Cluster.objects.order_by("name"))
    if not clusters:
        raise CommandError(
            "no cluster is registered. Add one with: manage.py cluster add NAME --kubeconfig PATH "
            "[--context CONTEXT] (or --in-cluster)"
        )
    return clusters


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: columns padded to their widest cell."""
    cells = [[str(h) for h in headers]] + [
        ["" if c is None else str(c) for c in row] for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=False)
