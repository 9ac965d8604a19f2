from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_roles(sender: AppConfig, **kwargs: Any) -> None:
    # Permissions are created by post_migrate too, so the groups come after them.
    from ippam.roles import roles_ensure

    roles_ensure()


class IppamConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "ippam"
    verbose_name = "IP address management"

    def ready(self) -> None:
        post_migrate.connect(_ensure_roles, sender=self, dispatch_uid="ippam_roles")
        from ippam.leaks.detect import detect_after_sync
        from ippam.signals import sync_finished

        sync_finished.connect(detect_after_sync, dispatch_uid="ippam_detect_after_sync")
        from ippam.history import sample_after_sync

        # A sample of every pool per full sync: the pool history and the forecast.
        sync_finished.connect(sample_after_sync, dispatch_uid="ippam_sample_after_sync")
