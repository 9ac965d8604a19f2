"""Reading IP addresses and CIDRs from text, in the three dialects ippam meets.

Pure module (no Django, no kubernetes client). Each dialect is named for where its text
comes from, because the same string may be valid in one and not in another:

- **go_***: what whereabouts (Go) accepts in a NAD's config. It parses with k8s.io/utils'
  ``ParseIPSloppy``/``ParseCIDRSloppy`` (IPv4 octets with leading zeros allowed, "010"
  is 10) and Go's ``net.ParseCIDR`` (host bits allowed; the network is what counts).
  Use it to read what a cluster holds, so ippam counts what whereabouts will do.
- **strict_***: what the NAD form accepts from an admin who writes a new config: exactly
  one address or ``address/prefix`` as inet_pton spells it (no "10.1" shorthand, no
  leading-zero octets), host bits kept so the form can say which address was meant.
- **input_***: what a person types in a search or filter box: surrounding whitespace
  ignored, ``None`` (not an exception) when it is not an address, so the caller falls back
  to a text search.

Plus the hot-path helpers of the sync (``ip_key``, ``canonical_ip``), which read Multus'
network-status without building netaddr objects: they run for every address of every pod.
"""

from __future__ import annotations

import socket
from typing import Any

from netaddr import INET_PTON, AddrFormatError, IPAddress, IPNetwork

__all__ = [
    "canonical_ip",
    "go_cidr",
    "go_exclude",
    "go_ip",
    "input_cidr",
    "input_ip",
    "ip_key",
    "listed_ip",
    "max_prefix",
    "strict_cidr",
    "strict_ip",
]

_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def max_prefix(version: int) -> int:
    return 32 if version == 4 else 128


def _netaddr_ip(text: str, flags: int = 0) -> IPAddress | None:
    try:
        return IPAddress(text, flags=flags)
    except (AddrFormatError, ValueError, TypeError):
        return None


# --- Go-lenient: what whereabouts reads from a NAD config ----------------------------------


def go_ip(value: Any) -> IPAddress | None:
    """An address as k8s.io/utils ``ParseIPSloppy`` reads it (IPv4 leading zeros allowed)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    parts = text.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and len(p) <= 3 for p in parts):
        octets = [int(p) for p in parts]
        if all(o <= 255 for o in octets):
            return IPAddress(".".join(str(o) for o in octets))
        return None
    if "." in text and ":" not in text:
        return None
    return _netaddr_ip(text)


def go_cidr(value: Any) -> IPNetwork | None:
    """``addr/prefix`` as Go's ``ParseCIDR`` reads it (host bits allowed), as its network."""
    if not isinstance(value, str):
        return None
    addr, slash, prefix = value.strip().partition("/")
    if not slash:
        return None
    if not prefix.isascii() or not prefix.isdigit() or len(prefix) > 3:
        return None
    plen = int(prefix)
    # Dotted-quad IPv4, by far the common case, straight to an integer: exclude lists run to
    # thousands of entries, and the text round trip through netaddr cost ~40 us each.
    quad = _go_ipv4_int(addr.strip())
    if quad is not None:
        if plen > 32:
            return None
        return IPNetwork((quad & ~((1 << (32 - plen)) - 1), plen), version=4)
    ip = go_ip(addr)
    if ip is None or plen > max_prefix(ip.version):
        return None
    bits = max_prefix(ip.version) - plen
    return IPNetwork((int(ip) >> bits << bits, plen), version=ip.version)


def _go_ipv4_int(text: str) -> int | None:
    """``a.b.c.d`` (leading zeros allowed, as ParseIPSloppy) as an integer; None otherwise."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not (part.isascii() and part.isdigit() and len(part) <= 3) or int(part) > 255:
            return None
        value = value << 8 | int(part)
    return value


def go_exclude(value: Any) -> IPNetwork | None:
    """An ``exclude`` entry as whereabouts' ``parseExcludedRange`` reads it: a CIDR, else a
    bare IP (its /32 or /128). None when whereabouts would fail to parse it."""
    net = go_cidr(value)
    if net is not None or not isinstance(value, str) or "/" in value:
        return net
    quad = _go_ipv4_int(value.strip())
    if quad is not None:
        return IPNetwork((quad, 32), version=4)
    ip = go_ip(value)
    return IPNetwork((int(ip), max_prefix(ip.version)), version=ip.version) if ip else None


# --- strict: what the NAD form accepts --------------------------------------------------------


def strict_ip(text: str) -> IPAddress | None:
    """One address, no prefix. INET_PTON: no "10.1" shorthand, which the CNI plugins (Go's
    net.ParseIP) reject."""
    text = (text or "").strip()
    if not text or "/" in text:
        return None
    return _netaddr_ip(text, INET_PTON)


def strict_cidr(text: str) -> IPNetwork | None:
    """``addr/prefix`` with a strict address and a prefix length in range; host bits kept."""
    addr, slash, prefix = (text or "").strip().partition("/")
    if not slash or not prefix.isascii() or not prefix.isdigit():
        return None
    ip = strict_ip(addr)
    if ip is None or int(prefix) > max_prefix(ip.version):
        return None
    return IPNetwork(f"{ip}/{int(prefix)}")


# --- user input: search and filter boxes ----------------------------------------------------


def input_ip(text: str | None) -> IPAddress | None:
    """An address typed by a person, or None (then search as text). A ``/prefix`` makes it
    a CIDR, not an address: see input_cidr."""
    text = (text or "").strip()
    if not text or "/" in text:
        return None
    return _netaddr_ip(text)


def input_cidr(text: str | None) -> IPNetwork | None:
    """A CIDR typed by a person (host bits allowed: ``10.0.0.7/24`` is 10.0.0.0/24), or None."""
    text = (text or "").strip()
    if "/" not in text:
        return None
    try:
        return IPNetwork(text).cidr
    except (AddrFormatError, ValueError, TypeError):
        return None


def listed_ip(value: Any) -> IPAddress | None:
    """An address as a pod's network-status lists it. Multus writes bare addresses; a
    ``/prefix`` is tolerated (hand-written annotations carry one)."""
    if not isinstance(value, str):
        return None
    text = value.strip().split("/", 1)[0]
    return _netaddr_ip(text) if text else None


# --- the sync's hot path --------------------------------------------------------------------


def ip_key(text: str) -> str | None:
    """The IPAddressField key of an address written as text (a ``/prefix`` is tolerated).

    Same value as ippam.fields.ip_to_key, without building netaddr objects.
    """
    address = text.split("/", 1)[0].strip()
    # ValueError: inet_pton refuses text with a NUL in it (JSON's "\u0000" decodes to one);
    # that is no address, not a reason for an event or a pod to be dropped.
    try:
        return (_V4_MAPPED + socket.inet_pton(socket.AF_INET, address)).hex()
    except (OSError, ValueError):
        pass
    try:
        return socket.inet_pton(socket.AF_INET6, address).hex()
    except (OSError, ValueError):
        return None


_V4_KEY_PREFIX = _V4_MAPPED.hex()
_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6
_inet_pton, _inet_ntop = socket.inet_pton, socket.inet_ntop


def canonical_ip(value: Any) -> tuple[str, str] | None:
    """(text, key) of an address already spelled the way netaddr prints it, else None (the
    caller then takes the slow path, which says what is odd)."""
    if not isinstance(value, str):
        return None
    # Multus writes bare addresses: try `value` itself first (it runs for every address of
    # every pod). A string inet_pton takes holds no space and no "/", so stripping and
    # splitting would give `value` back; anything else goes the careful way below.
    try:
        packed = _inet_pton(_AF_INET, value)
    except OSError:
        try:
            packed = _inet_pton(_AF_INET6, value)
        except (OSError, ValueError):
            return _canonical_ip_careful(value)
        return (value, packed.hex()) if _inet_ntop(_AF_INET6, packed) == value else None
    except ValueError:  # a NUL in the text (see ip_key)
        return _canonical_ip_careful(value)
    return (value, _V4_KEY_PREFIX + packed.hex()) if _inet_ntop(_AF_INET, packed) == value else None


def _canonical_ip_careful(value: str) -> tuple[str, str] | None:
    text = value.strip().split("/", 1)[0]
    for family, prefix in ((socket.AF_INET, _V4_MAPPED), (socket.AF_INET6, b"")):
        try:
            packed = socket.inet_pton(family, text)
        except (OSError, ValueError):  # ValueError: a NUL in the text (see ip_key)
            continue
        if socket.inet_ntop(family, packed) != text:
            return None
        return text, (prefix + packed).hex()
    return None


# --- as a pod lists it: Go's net.ParseIP, and what an unreadable listing could denote -------


def go_address(ip: IPAddress) -> IPAddress:
    """`ip` as Go compares it: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4
    address, since Go's net.IP.To4() is non-nil for it and Equal() says so."""
    if ip.version == 6 and int(ip) >> 32 == 0xFFFF:
        return IPAddress(int(ip) & 0xFFFFFFFF, 4)
    return ip


def go_listed_ip(value: Any) -> IPAddress | None:
    """An address of a pod's network-status `ips` as Go's net.ParseIP reads it (Multus and
    whereabouts are Go): dotted IPv4 without leading zeros (refused since Go 1.17), IPv6 with
    at most four hex digits a group, no surrounding space, no zone, no prefix; IPv4-mapped
    text (``::ffff:10.88.0.14``, ``::ffff:a58:e``) is the IPv4 address. None when Go would
    refuse it. glibc's inet_pton draws exactly these lines."""
    if not isinstance(value, str) or not value.isascii():
        return None
    try:
        return IPAddress(int.from_bytes(socket.inet_pton(socket.AF_INET, value)), 4)
    except (OSError, ValueError):
        pass
    try:
        packed = socket.inet_pton(socket.AF_INET6, value)
    except (OSError, ValueError):
        return None
    return go_address(IPAddress(int.from_bytes(packed), 6))


_LENIENT_MAX = 64  # readings kept per listing: four octets of decimal/octal/hex are at most 81


def _lenient_octets(part: str) -> set[int]:
    """One dotted part as C's inet_aton, a shell or a careless reader might take it: decimal,
    octal with a leading zero, hex with 0x."""
    values: set[int] = set()
    lower = part.lower()
    if lower.startswith("0x"):
        digits = lower[2:]
        if digits and all(c in "0123456789abcdef" for c in digits):
            values.add(int(digits, 16))
        return {v for v in values if v <= 255}
    if not (part.isascii() and part.isdigit()):
        return values
    values.add(int(part, 10))
    if len(part) > 1 and part.startswith("0") and all(c in "01234567" for c in part):
        values.add(int(part, 8))
    return {v for v in values if v <= 255}


def _lenient_ipv4(text: str) -> set[int]:
    parts = text.split(".")
    if len(parts) != 4:
        return set()
    readings = [0]
    for part in parts:
        octets = _lenient_octets(part)
        if not octets:
            return set()
        readings = [r << 8 | o for r in readings for o in octets][:_LENIENT_MAX]
    return set(readings)


def lenient_listed_ips(value: Any) -> frozenset[IPAddress]:
    """Every address a lenient reading of a listed `ips` value could denote, as Go compares
    addresses: Go's own reading when it has one; else with surrounding spaces, a /prefix
    (Multus tolerates one in hand-written annotations) and a %zone dropped, IPv4 octets with
    leading zeros read as decimal and as octal (and 0x as hex), and IPv4-mapped forms as the
    IPv4 address. A listing Go cannot parse still shows what its writer meant: freeing any
    of these could take a live pod's address."""
    if not isinstance(value, str) or not value.isascii():
        return frozenset()
    exact = go_listed_ip(value)
    if exact is not None:
        return frozenset({exact})
    text = value.strip().split("/", 1)[0].split("%", 1)[0].strip()
    if not text:
        return frozenset()
    found: set[IPAddress] = set()
    exact = go_listed_ip(text)
    if exact is not None:
        found.add(exact)
    if ":" not in text:
        found.update(IPAddress(n, 4) for n in _lenient_ipv4(text))
        return frozenset(found)
    # IPv6 with a dotted tail Go refuses (leading zeros): each reading of the tail.
    head, _, tail = text.rpartition(":")
    if "." in tail:
        for n in _lenient_ipv4(tail):
            ip = go_listed_ip(f"{head}:{IPAddress(n, 4)}")
            if ip is not None:
                found.add(ip)
    return frozenset(found)
