"""The API's roles are the pages' roles (ippam.roles): any signed-in user reads (viewer),
and each write names the Django permission its page checks."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


class RolePermission(BasePermission):
    """Reads need a signed-in user; an action listed in the view's ``required_permissions``
    ({action: "app.codename"}) needs that permission; any other write is refused."""

    message = "Your role does not allow this; ask an admin to put you in the operator group."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        needed = getattr(view, "required_permissions", {}).get(getattr(view, "action", None))
        if needed is not None:
            return bool(user.has_perm(needed))
        return request.method in SAFE_METHODS
