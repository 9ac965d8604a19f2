"""The demo's generated admin login, for the login page and the start banner."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from ippam.demo_login import DemoLogin, demo_login_current, demo_login_read


def demo_login_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-login.json"


def demo_login_shown() -> DemoLogin | None:
    """The generated login while its account still has that password; only in development.

    A deployment (DEBUG off) never shows a password, even one ensure_admin generated.
    """
    if not settings.DEBUG:
        return None
    login = demo_login_read(demo_login_path())
    if login is None:
        return None
    user_model = get_user_model()
    hashes = dict(
        user_model.objects.filter(
            **{user_model.USERNAME_FIELD: login.username, "is_active": True}
        ).values_list(user_model.USERNAME_FIELD, "password")
    )
    return demo_login_current(login, hashes)
