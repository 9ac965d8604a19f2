"""Whereabouts object naming and allocation-key arithmetic.

Pure functions (no Django, no kubernetes client). The rules mirror whereabouts'
``pkg/storage/kubernetes/ipam.go`` (``IPPoolName``, ``normalizeRange``, ``NormalizeIP``)
and ``pkg/iphelpers`` (allocation keys are decimal offsets from the range's network
address).
"""

from __future__ import annotations

import socket

from netaddr import AddrFormatError, IPAddress, IPNetwork

__all__ = [
    "allocation_ip",
    "allocation_key",
    "go_ip_string",
    "node_pool_name",
    "normalize_ip",
    "normalize_range",
    "node_slice_pool_name",
    "pool_name",
    "reservation_ip",
    "reservation_key",
    "reservation_name",
    "split_podref",
]

_IPV4_MAPPED_PREFIX = 0xFFFF << 32


def go_ip_string(ip: IPAddress) -> str:
    """Spell ``ip`` the way Go's ``net.IP.String()`` does, since whereabouts names objects with it.

    RFC 5952 for IPv6 (longest run of two or more zero groups becomes ``::``, the first
    one on a tie, lowercase hex) with two Go quirks netaddr does not share: an
    IPv4-mapped address (``::ffff:a.b.c.d``) prints as plain ``a.b.c.d``, and any other
    IPv6 address prints in hex only (``::1.2.3.4`` is ``::102:304``).
    """
    ip = IPAddress(ip)
    if ip.version == 4:
        return str(ip)
    value = int(ip)
    if value >> 32 == 0xFFFF:
        return str(IPAddress(value & 0xFFFFFFFF, 4))
    groups = [(value >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    best_start, best_len = -1, 0
    i = 0
    while i < 8:
        if groups[i] == 0:
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_len:
                best_start, best_len = i, j - i
            i = j
        else:
            i += 1
    hexes = [format(g, "x") for g in groups]
    if best_len < 2:
        return ":".join(hexes)
    head = ":".join(hexes[:best_start])
    tail = ":".join(hexes[best_start + best_len :])
    return f"{head}::{tail}"


def normalize_range(cidr: str) -> str:
    """Whereabouts' pool-name form of a range: ``:`` and ``/`` become ``-``.

    ``10.0.0.0/8`` -> ``10.0.0.0-8``; ``fd00::/64`` -> ``fd00---64``. Like whereabouts,
    a range that ends in ``:`` gets a ``0`` appended first (a Kubernetes name cannot end
    in ``-``).
    """
    if cidr.endswith(":"):
        cidr += "0"
    return cidr.replace(":", "-").replace("/", "-")


def pool_name(range_cidr: str, network_name: str = "") -> str:
    """Name of the IPPool whereabouts keeps for ``range_cidr`` (``[network_name-]range``)."""
    normalized = normalize_range(range_cidr)
    return f"{network_name}-{normalized}" if network_name else normalized


def node_slice_pool_name(network_name: str = "", config_name: str = "") -> str:
    """Name of the NodeSlicePool whereabouts keeps for a network.

    whereabouts (``node-controller`` ``getSliceName`` and ``storage/kubernetes``
    ``getNodeSliceName``) names it after the IPAM ``network_name`` and, when that is
    unset, after the CNI config's ``name``; there is no ``node-slice`` suffix. Returns ""
    when both are empty (whereabouts cannot name the pool either).
    """
    return network_name or config_name


def node_pool_name(slice_cidr: str, node_name: str, network_name: str = "") -> str:
    """Name of a per-node IPPool in node-slice mode (whereabouts ``IPPoolName`` with a node).

    ``[network_name-]node_name-<normalized slice range>``; its ``spec.range`` is the
    node's slice, so allocation keys are offsets from the slice's network address.
    """
    normalized = normalize_range(slice_cidr)
    if network_name:
        return f"{network_name}-{node_name}-{normalized}"
    return f"{node_name}-{normalized}"


def allocation_ip(network: IPNetwork, key: str) -> IPAddress:
    """IP of an IPPool allocation: the range's network address plus the decimal ``key``.

    Raises ValueError with a message that names the key and range when the key is not a
    non-negative decimal integer or points outside the range. Like whereabouts'
    ``strconv.ParseInt(key, 10, 64)`` an optional ``+`` and leading zeros are accepted,
    spaces are not.
    """
    digits = key[1:] if isinstance(key, str) and key.startswith("+") else key
    if not isinstance(digits, str) or not digits.isascii() or not digits.isdigit():
        if isinstance(key, str) and key.startswith("-") and key[1:].isascii() and key[1:].isdigit():
            raise ValueError(f"allocation key {key!r} in range {network} is negative")
        raise ValueError(
            f"allocation key {key!r} in range {network} is not a non-negative decimal offset"
        )
    offset = int(digits)
    if offset >= network.size:
        raise ValueError(
            f"allocation key {key!r} is outside range {network} "
            f"(offsets 0..{network.size - 1} are valid)"
        )
    return IPAddress(int(network.network) + offset, network.version)


def allocation_key(network: IPNetwork, ip: IPAddress) -> str:
    """Decimal offset of ``ip`` from the network address of ``network`` (the IPPool key)."""
    ip = IPAddress(ip)
    if ip.version != network.version or ip not in network:
        raise ValueError(f"{ip} is not inside range {network}")
    return str(int(ip) - int(network.network))


def normalize_ip(ip: IPAddress) -> str:
    """Whereabouts' ``NormalizeIP`` without the network prefix."""
    text = go_ip_string(ip)
    if text.endswith(":"):
        text += "0"
    return text.replace(":", "-")


def reservation_name(ip: IPAddress, network_name: str = "") -> str:
    """Name of the OverlappingRangeIPReservation for ``ip`` (``[network_name-]ip``)."""
    normalized = normalize_ip(ip)
    return f"{network_name}-{normalized}" if network_name else normalized


def reservation_ip(name: str, network_name: str = "") -> IPAddress | None:
    """The IP an OverlappingRangeIPReservation ``name`` stands for, or None.

    Inverse of :func:`reservation_name`. IPv4 names keep their dots, so any ``-`` in
    one is a separator; IPv6 names have every ``:`` turned into ``-``.
    """
    if network_name:
        prefix = f"{network_name}-"
        if not name.startswith(prefix):
            return None
        name = name[len(prefix) :]
    if not name:
        return None
    text = name.replace("-", ":") if "-" in name or ":" not in name and "." not in name else name
    try:
        ip = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return None
    # Only the spelling whereabouts itself produces counts (no "10.0.0.01", no ":").
    return ip if reservation_name(ip) == name else None


_V4_KEY_PREFIX = "0" * 20 + "ffff"


def reservation_key(name: str, network_name: str = "") -> str | None:
    """The address key (as ippam.fields.ip_to_key) of what :func:`reservation_ip` reads from
    ``name``, or None. The same answer, quicker: it runs for every reservation of a cluster.

    A name whereabouts wrote for an IPv4 address is a dotted quad that inet_ntop would
    print just so; for IPv6 it is inet_ntop's spelling (RFC 5952, as Go's) with ":" as
    "-". Those are read with inet_pton; anything else (IPv4-mapped and embedded-IPv4
    spellings, odd names) goes through reservation_ip, which says None or an address.
    """
    rest = name
    if network_name:
        if (
            not name.startswith(network_name)
            or name[len(network_name) : len(network_name) + 1] != "-"
        ):
            return None
        rest = name[len(network_name) + 1 :]
    if ":" not in rest:
        try:
            if "." in rest:
                if "-" not in rest:
                    packed = socket.inet_pton(socket.AF_INET, rest)
                    if socket.inet_ntop(socket.AF_INET, packed) == rest:
                        return _V4_KEY_PREFIX + packed.hex()
            elif "-" in rest:
                packed = socket.inet_pton(socket.AF_INET6, rest.replace("-", ":"))
                text = socket.inet_ntop(socket.AF_INET6, packed)
                if "." not in text:
                    if text.endswith(":"):
                        text += "0"
                    if text.replace(":", "-") == rest:
                        return packed.hex()
        except (OSError, ValueError):
            pass
    ip = reservation_ip(name, network_name)
    if ip is None:
        return None
    value = int(ip)
    return f"{value | 0xFFFF00000000 if ip.version == 4 else value:032x}"


def split_podref(podref: str) -> tuple[str, str]:
    """``"ns/name"`` -> ``("ns", "name")``; a podref without a slash -> ``("", name)``."""
    namespace, sep, name = podref.partition("/")
    if not sep:
        return "", podref
    return namespace, name
