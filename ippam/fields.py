"""Model fields for IP addresses that the database can sort and compare.

Every database we run on (PostgreSQL in production, SQLite for the embedded default) must
answer "which allocations fall inside 10.0.0.0/16" and "order by address" correctly. Django's
GenericIPAddressField stores text on SQLite, where "10.0.0.10" sorts before "10.0.0.9". So an
address is stored as a fixed-width key: 32 lowercase hex digits of its IPv6 form, with IPv4
addresses mapped into ::ffff:0:0/96 (RFC 4291 §2.5.5.2). Lexical order of the key equals
numeric order of the address, on every backend, and a CIDR becomes a BETWEEN.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.expressions import Combinable
from netaddr import IPAddress, IPNetwork

_V4_MAPPED = 0xFFFF00000000


def ip_to_key(ip: IPAddress | str | int) -> str:
    """The sortable 32-hex-digit key of an address (IPv4 mapped into ::ffff:0:0/96)."""
    address = ip if isinstance(ip, IPAddress) else IPAddress(ip)
    value = int(address)
    if address.version == 4:
        value |= _V4_MAPPED
    return f"{value:032x}"


def key_to_ip(key: str) -> IPAddress:
    value = int(key, 16)
    if value >> 32 == 0xFFFF:
        return IPAddress(value & 0xFFFFFFFF, 4)
    return IPAddress(value, 6)


def network_key_bounds(network: IPNetwork | str) -> tuple[str, str]:
    """First and last key of a CIDR, for `ip__range=` lookups."""
    net = network if isinstance(network, IPNetwork) else IPNetwork(network)
    return ip_to_key(IPAddress(net.first, net.version)), ip_to_key(IPAddress(net.last, net.version))


class IPAddressField(models.CharField):
    """An IP address (netaddr.IPAddress in Python) stored as a sortable 32-hex-digit key."""

    description = "IP address stored as a sortable key"
    # For django-stubs: what the attribute accepts (get_prep_value) and holds (from_db_value).
    _pyi_private_set_type: IPAddress | str | int | Combinable
    _pyi_private_get_type: IPAddress

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["max_length"] = 32
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_length", None)
        return name, path, args, kwargs

    def from_db_value(
        self, value: str | None, expression: Any, connection: Any
    ) -> IPAddress | None:
        if value is None or value == "":
            return None
        return key_to_ip(value)

    def to_python(self, value: Any) -> IPAddress | None:
        if value is None or value == "" or isinstance(value, IPAddress):
            return value or None
        if isinstance(value, str) and len(value) == 32 and ":" not in value and "." not in value:
            return key_to_ip(value)
        return IPAddress(value)

    def get_prep_value(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if isinstance(value, str) and len(value) == 32 and ":" not in value and "." not in value:
            return value
        return ip_to_key(value)

    def value_to_string(self, obj: Any) -> str:
        value = self.value_from_object(obj)
        return "" if value is None else str(value)
