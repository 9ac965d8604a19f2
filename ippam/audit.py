"""The audit trail: one row per thing ippam did to a cluster or to an alert, on whose behalf."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from ippam.models import AuditEntry, Cluster

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Actor = AbstractBaseUser | AnonymousUser | str | None


def actor_name(actor: Actor) -> str:
    """A printable name for whoever acted: a user name, `cli:<user>`, or `system`."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor or "system"
    if getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return "anonymous"


def acting_user(actor: Actor) -> User | None:
    """The saved account behind `actor`, for foreign keys: None for a name, anonymous, system."""
    if isinstance(actor, get_user_model()) and actor.pk:
        return actor
    return None


def audit_record(
    *,
    actor: Actor,
    action: str,
    cluster: Cluster | None,
    target: str,
    before: Any = None,
    after: Any = None,
    outcome: str,
    message: str = "",
) -> AuditEntry:
    """Write one AuditEntry. `actor` is a User, or a name such as `cli:alice`."""
    return AuditEntry.objects.create(
        actor=acting_user(actor),
        actor_name=actor_name(actor)[:150],
        action=action,
        cluster=cluster,
        target=target[:512],
        before=before,
        after=after,
        outcome=outcome[:32],
        message=message,
    )
