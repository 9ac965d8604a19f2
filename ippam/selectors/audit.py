"""The audit log: entries newest first, and the user names the actor filter suggests."""

from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from ippam.models import AuditEntry

ACTOR_SUGGESTIONS = 200


def audit_entry_list() -> QuerySet[AuditEntry]:
    """Every entry, newest first (ippam.filters.AuditFilter narrows)."""
    return AuditEntry.objects.select_related("cluster", "actor").order_by("-at", "-id")


def attach_audit_json(entries: list[AuditEntry]) -> None:
    """Give each entry of a page `before_json` and `after_json`, pretty-printed for display."""
    for entry in entries:
        entry.before_json = json.dumps(entry.before, indent=2, sort_keys=True, default=str)  # type: ignore[attr-defined]
        entry.after_json = json.dumps(entry.after, indent=2, sort_keys=True, default=str)  # type: ignore[attr-defined]


def audit_actor_names() -> list[str]:
    return list(
        get_user_model()
        .objects.order_by("username")
        .values_list("username", flat=True)[:ACTOR_SUGGESTIONS]
    )
