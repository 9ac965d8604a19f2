"""Whereabouts object naming and allocation-key arithmetic.

Pure functions (no Django, no kubernetes client). The rules mirror whereabouts'
``pkg/storage/kubernetes/ipam.go`` (``IPPoolName``, ``normalizeRange``, ``NormalizeIP``)
and ``pkg/iphelpers`` (allocation keys are decimal offsets from the range's network
address).
"""

from __future__ import annotations

from netaddr import AddrFormatError, IPAddress, IPNetwork

__all__ = [
    "allocation_ip",
    "allocation_key",
    "normalize_ip",
    "normalize_range",
    "node_slice_pool_name",
    "pool_name",
    "reservation_ip",
    "reservation_name",
    "split_podref",
]

NODE_SLICE_SUFFIX = "node-slice"


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


def node_slice_pool_name(network_name: str = "") -> str:
    """Name of the NodeSlicePool for a network: ``[network_name-]node-slice``.

    Checked against whereabouts' node-slice controller, which names the pool after the
    NAD's ``network_name`` and falls back to the NAD name when unset; callers that know
    the NAD name should pass it as ``network_name`` in that case.
    """
    return f"{network_name}-{NODE_SLICE_SUFFIX}" if network_name else NODE_SLICE_SUFFIX


def allocation_ip(network: IPNetwork, key: str) -> IPAddress:
    """IP of an IPPool allocation: the range's network address plus the decimal ``key``.

    Raises ValueError with a message that names the key and range when the key is not a
    non-negative decimal integer or points outside the range.
    """
    text = key.strip() if isinstance(key, str) else key
    if not isinstance(text, str) or not text.isascii() or not text.isdigit():
        raise ValueError(
            f"allocation key {key!r} in range {network} is not a non-negative decimal offset"
        )
    offset = int(text)
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
    text = str(IPAddress(ip))
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
    candidates = [name] if "." in name and "-" not in name else [name.replace("-", ":")]
    for text in candidates:
        try:
            ip = IPAddress(text, flags=0)
        except (AddrFormatError, ValueError, TypeError):
            continue
        if ":" in text and ip.version != 6:
            continue
        if ip.version == 4 and text.count(".") != 3:
            continue
        # Only accept the canonical spelling whereabouts would have produced.
        if reservation_name(ip) == name:
            return ip
    return None


def split_podref(podref: str) -> tuple[str, str]:
    """``"ns/name"`` -> ``("ns", "name")``; a podref without a slash -> ``("", name)``."""
    namespace, sep, name = podref.partition("/")
    if not sep:
        return "", podref
    return namespace, name
