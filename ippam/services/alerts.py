"""Acknowledging several alerts with one note, all or nothing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction

from ippam.leaks import alert_acknowledge
from ippam.models import Alert


def alerts_acknowledge(*, alerts: Iterable[Alert], user: Any, note: str = "") -> list[Alert]:
    """Acknowledge every alert in `alerts` for `user`; returns them as stored.

    One transaction: if any of them was resolved meanwhile (AlertError), none is
    acknowledged and nothing is audited, so the person can reload and choose again.
    Raises ippam.leaks.AlertError with the alert it stopped at.
    """
    with transaction.atomic():
        return [alert_acknowledge(alert=a, user=user, note=note) for a in alerts]
