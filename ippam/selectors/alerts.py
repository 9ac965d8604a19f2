"""Alerts: the list the alerts page filters, and the rows an acknowledgement changed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from ippam.models import Alert


def alert_list() -> QuerySet[Alert]:
    """Every alert, newest first, with what each row shows (ippam.filters.AlertFilter narrows)."""
    return Alert.objects.select_related(
        "cluster", "acknowledged_by", "assignee", "finding", "pool"
    ).order_by("-opened_at", "-id")


def alerts_by_ids(ids: Iterable[int]) -> list[Alert]:
    return list(alert_list().filter(pk__in=list(ids)))


def alert_assignees() -> list[Any]:
    """Who an alert can be assigned to: active users by name."""
    return list(get_user_model().objects.filter(is_active=True).order_by("username"))
