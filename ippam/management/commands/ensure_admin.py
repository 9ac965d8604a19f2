import os

from django.contrib.auth import get_user_model

from ippam.management.base import ServiceCommand
from ippam.roles import ADMIN, roles_ensure


class Command(ServiceCommand):
    help = "Make sure an admin account exists and say how to log in."

    def handle(self, *args: object, **options: object) -> None:
        user_model = get_user_model()
        username = os.environ.get("IPPAM_ADMIN_USER", "admin")
        password = os.environ.get("IPPAM_ADMIN_PASSWORD", "admin")
        groups = roles_ensure()
        admin = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is not None:
            self.stdout.write(
                f"Log in at http://127.0.0.1:8000/ as {admin.get_username()} (existing admin)."
            )
            return
        user = user_model.objects.create_superuser(username=username, email="", password=password)
        user.groups.add(groups[ADMIN])
        self.stdout.write(
            self.style.SUCCESS(
                f"Created the admin account. Log in at http://127.0.0.1:8000/ as {username} / {password} "
                "(set IPPAM_ADMIN_USER and IPPAM_ADMIN_PASSWORD to choose others)."
            )
        )
