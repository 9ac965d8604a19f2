"""The three roles: viewer reads, operator also acknowledges alerts and asks for a sync now,
admin also acts on clusters."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    VIEWER: [],
    OPERATOR: ["ippam.acknowledge_alert", "ippam.request_sync"],
    ADMIN: [
        "ippam.acknowledge_alert",
        "ippam.request_sync",
        "ippam.create_nad",
        "ippam.reclaim_allocation",
    ],
}


def roles_ensure() -> dict[str, Group]:
    """Create the role groups and give each exactly its permissions (idempotent)."""
    groups: dict[str, Group] = {}
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [
            Permission.objects.get(
                content_type__app_label=perm.split(".")[0], codename=perm.split(".")[1]
            )
            for perm in perms
        ]
        group.permissions.set(wanted)
        groups[role] = group
    return groups


def role_needed(permission: str) -> str:
    """The least role that holds `permission` ("app.codename"), for a refusal to name it."""
    for role, perms in ROLE_PERMISSIONS.items():
        if permission in perms:
            return role
    return ADMIN
