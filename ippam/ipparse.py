"""Reading IP addresses and CIDRs from text, in the three dialects ippam meets.

Pure module (no Django, no kubernetes client). Each dialect is named for where its text
comes from, because the same string may be valid in one and not in another:

- **go_***: what whereabouts (Go) accepts in a NAD's config, in its two dialects: sloppy
  (k8s.io/utils ``ParseIPSloppy``/``ParseCIDRSloppy``: IPv4 octets with leading zeros,
  "010" is 10) where its config loader is sloppy, strict (Go's ``net.ParseIP``/
  ``net.ParseCIDR``) where its allocator and encoding/json are. Nothing trimmed, host
  bits allowed (the network is what counts), IPv4-mapped text read as IPv4. Use it to
  read what a cluster holds, so ippam counts what whereabouts will do.
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
    "go_cidr_ip",
    "go_exclude",
    "go_ip",
    "go_strict_cidr",
    "go_strict_cidr_ip",
    "go_strict_ip",
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


# --- Go: what whereabouts reads from a NAD config ---------------------------------------------
#
# Two Go parsers, mirrored byte for byte (no whitespace trimming: Go trims nothing):
# - sloppy: k8s.io/utils ``ParseIPSloppy``/``ParseCIDRSloppy`` (Go 1.16's parser kept for
#   old stored values): IPv4 octets with leading zeros ("010" is 10). whereabouts' config
#   loader reads ``range``, top-level ``range_start``/``range_end`` and ``gateway`` with it.
# - strict: Go's ``net.ParseIP``/``net.ParseCIDR`` (since Go 1.17 no IPv4 leading zeros;
#   Go 1.22+ also refuses an IPv6 group of more than 4 hex digits). The allocator reads
#   ``exclude`` entries with it, and encoding/json the ``net.IP`` of an ``ipRanges`` entry.
# Both take a prefix length with leading zeros ("/0024", Go's dtoi) and read IPv4-mapped
# text (``::ffff:10.0.0.1``, ``::ffff:a00:1``) as the IPv4 address: Go's ``To4()`` is then
# non-nil, and whereabouts treats the address, or a mapped network of prefix >= 96, as IPv4.

_HEX = frozenset("0123456789abcdefABCDEF")


def _go_ipv4(text: str, strict: bool) -> int | None:
    """``a.b.c.d`` as Go's parseIPv4 reads it, as an integer."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    value = 0
    for part in parts:
        if not part or not part.isascii() or not part.isdigit():
            return None
        if strict and len(part) > 1 and part[0] == "0":
            return None  # Go >= 1.17: "non-zero components with leading zeroes" refused
        # Leading zeros cost dtoi nothing; more than 3 other digits are above 255.
        if len(part.lstrip("0")) > 3 or int(part) > 255:
            return None
        octet = int(part)
        value = value << 8 | octet
    return value


def _go_ipv6(text: str, strict: bool) -> int | None:
    """An IPv6 address as Go's parseIPv6 reads it (an IPv4 tail allowed), as an integer."""
    groups: list[int] = []
    ellipsis = -1
    s = text
    if s.startswith("::"):
        ellipsis = 0
        s = s[2:]
        if not s:
            return 0
    while len(groups) < 8:
        hex_len = 0
        while hex_len < len(s) and s[hex_len] in _HEX:
            hex_len += 1
        if hex_len == 0 or (strict and hex_len > 4):
            return None
        digits = s[:hex_len]
        if len(digits.lstrip("0")) > 4:
            return None
        group = int(digits, 16)
        if hex_len < len(s) and s[hex_len] == ".":
            # An IPv4 tail: only as the last 32 bits, or after an ellipsis.
            if (ellipsis < 0 and len(groups) != 6) or len(groups) > 6:
                return None
            v4 = _go_ipv4(s, strict)
            if v4 is None:
                return None
            groups += [v4 >> 16, v4 & 0xFFFF]
            s = ""
            break
        groups.append(group)
        s = s[hex_len:]
        if not s:
            break
        if s[0] != ":" or len(s) == 1:
            return None
        s = s[1:]
        if s[0] == ":":
            if ellipsis >= 0:
                return None
            ellipsis = len(groups)
            s = s[1:]
            if not s:
                break
    if s:
        return None
    if len(groups) < 8:
        if ellipsis < 0:
            return None
        groups = groups[:ellipsis] + [0] * (8 - len(groups)) + groups[ellipsis:]
    elif ellipsis >= 0:
        return None  # an ellipsis must stand for at least one zero group
    value = 0
    for group in groups:
        value = value << 16 | group
    return value


def _go_parse_ip(text: str, strict: bool) -> tuple[int, int] | None:
    """(value, 4 or 6 as Go stores it: 4 bytes or 16) of an address, before To4 folding.
    The first "." or ":" decides the family, as in Go's ParseIP."""
    for char in text:
        if char == ".":
            v4 = _go_ipv4(text, strict)
            return None if v4 is None else (v4, 4)
        if char == ":":
            v6 = _go_ipv6(text, strict)
            return None if v6 is None else (v6, 6)
    return None


def _to4(value: int, version: int) -> IPAddress:
    """The address as whereabouts uses it: IPv4 when Go's To4() is non-nil."""
    if version == 6 and value >> 32 == 0xFFFF:
        return IPAddress(value & 0xFFFFFFFF, 4)
    return IPAddress(value, version)


def _go_prefix(text: str) -> int | None:
    """A prefix length as Go's dtoi reads it: digits only, leading zeros allowed."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text) if len(text.lstrip("0")) <= 7 else None


def _go_network(value: int, version: int, plen: int) -> IPNetwork:
    """The network of ``value/plen`` as whereabouts uses it: a 16-byte network that Go's
    To4() reads as IPv4 (mapped, prefix >= 96) is that IPv4 network (IPNet.String())."""
    bits = 32 if version == 4 else 128
    network = value >> (bits - plen) << (bits - plen)
    if version == 6 and plen >= 96 and network >> 32 == 0xFFFF:
        return IPNetwork((network & 0xFFFFFFFF, plen - 96), version=4)
    return IPNetwork((network, plen), version=version)


def _go_parse_cidr(value: Any, strict: bool) -> tuple[IPAddress, IPNetwork] | None:
    if not isinstance(value, str):
        return None
    addr, slash, prefix = value.partition("/")
    if not slash:
        return None
    parsed = _go_parse_ip(addr, strict)
    plen = _go_prefix(prefix)
    if parsed is None or plen is None or plen > (32 if parsed[1] == 4 else 128):
        return None
    return _to4(*parsed), _go_network(parsed[0], parsed[1], plen)


def go_ip(value: Any) -> IPAddress | None:
    """An address as k8s.io/utils ``ParseIPSloppy`` reads it (IPv4 leading zeros allowed,
    nothing trimmed, mapped IPv4 as IPv4). None for what it refuses, and for a non-string."""
    if not isinstance(value, str):
        return None
    parsed = _go_parse_ip(value, strict=False)
    return _to4(*parsed) if parsed else None


def go_strict_ip(value: Any) -> IPAddress | None:
    """An address as Go's ``net.ParseIP`` reads it (no IPv4 leading zeros)."""
    if not isinstance(value, str):
        return None
    parsed = _go_parse_ip(value, strict=True)
    return _to4(*parsed) if parsed else None


def go_cidr_ip(value: Any) -> tuple[IPAddress, IPNetwork] | None:
    """``ParseCIDRSloppy``: the address as written and its network (host bits allowed)."""
    return _go_parse_cidr(value, strict=False)


def go_cidr(value: Any) -> IPNetwork | None:
    """``addr/prefix`` as ``ParseCIDRSloppy`` reads it (host bits allowed), as its network."""
    parsed = _go_parse_cidr(value, strict=False)
    return parsed[1] if parsed else None


def go_strict_cidr_ip(value: Any) -> tuple[IPAddress, IPNetwork] | None:
    """Go's ``net.ParseCIDR``: the address as written and its network."""
    return _go_parse_cidr(value, strict=True)


def go_strict_cidr(value: Any) -> IPNetwork | None:
    """``addr/prefix`` as Go's ``net.ParseCIDR`` reads it, as its network."""
    parsed = _go_parse_cidr(value, strict=True)
    return parsed[1] if parsed else None


def go_exclude(value: Any) -> IPNetwork | None:
    """An ``exclude`` entry as whereabouts' ``parseExcludedRange`` reads it at allocation
    time, strictly: a CIDR, else a bare IP with "/32" (To4 non-nil) or "/128" appended to
    its text and parsed again (so ``::ffff:10.0.0.5`` becomes the IPv6 ``::/32``, which
    excludes no IPv4 address). None when whereabouts cannot parse it: it then fails every
    allocation from the range."""
    if not isinstance(value, str):
        return None
    # Dotted-quad IPv4, the common case, without the general parser: exclude lists run to
    # thousands of entries.
    addr, slash, prefix = value.partition("/")
    quad = _go_ipv4(addr, strict=True)
    if quad is not None:
        plen = _go_prefix(prefix) if slash else 32
        if plen is None or plen > 32:
            return None
        return IPNetwork((quad >> (32 - plen) << (32 - plen), plen), version=4)
    net = go_strict_cidr(value)
    if net is not None or slash:
        return net
    ip = go_strict_ip(value)
    if ip is None:
        return None
    return go_strict_cidr(f"{value}/{32 if ip.version == 4 else 128}")


# --- strict: what the NAD form accepts --------------------------------------------------------


def strict_ip(text: str) -> IPAddress | None:
    """One address, no prefix. INET_PTON: no "10.1" shorthand, which the CNI plugins (Go's
    net.ParseIP) reject. No IPv4-mapped text either: Go reads ``::ffff:10.0.0.1`` as the IPv4
    address where netaddr reads IPv6, so the form asks for the IPv4 spelling instead."""
    text = (text or "").strip()
    if not text or "/" in text:
        return None
    ip = _netaddr_ip(text, INET_PTON)
    return None if ip is not None and ip.is_ipv4_mapped() else ip


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
