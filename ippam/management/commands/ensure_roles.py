from ippam.management.base import ServiceCommand
from ippam.roles import roles_ensure


class Command(ServiceCommand):
    help = "Create the viewer, operator and admin groups with their permissions."

    def handle(self, *args: object, **options: object) -> None:
        groups = roles_ensure()
        self.stdout.write("roles: " + ", ".join(groups))
