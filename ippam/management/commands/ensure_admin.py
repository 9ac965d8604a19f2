import os
import secrets

from django.contrib.auth import get_user_model

from ippam.demo_login import DemoLogin, demo_login_write
from ippam.management.base import ServiceCommand
from ippam.roles import ADMIN, roles_ensure
from ippam.selectors.demo_login import demo_login_path


class Command(ServiceCommand):
    help = "Make sure an admin account exists (generating its password unless one is given)."

    def handle(self, *args: object, **options: object) -> None:
        user_model = get_user_model()
        username = os.environ.get("IPPAM_ADMIN_USER", "admin")
        given = os.environ.get("IPPAM_ADMIN_PASSWORD", "")
        groups = roles_ensure()
        admin = user_model.objects.filter(is_superuser=True).order_by("pk").first()
        if admin is not None:
            self.stdout.write(f"admin account: {admin.get_username()} (existing)")
            return
        password = given or secrets.token_urlsafe(12)
        user = user_model.objects.create_superuser(username=username, email="", password=password)
        user.groups.add(groups[ADMIN])
        if not given:  # only a generated password is shown again (login page, start banner)
            demo_login_write(demo_login_path(), DemoLogin(username, password, user.password))
        self.stdout.write(
            f"admin account: created {username}"
            + ("" if given else " with a generated password (shown when ippam is up)")
        )
