"""What a user types into a filter or search box, cleaned and recognised.

Lenient on purpose: a value that is not an address returns None so the caller can fall
back to a text search. (Not whereabouts' Go-lenient parsing of configs, nor the NAD form's
strict validation: those live with the code that needs them.)
"""

from __future__ import annotations

import re

from netaddr import AddrFormatError, IPAddress, IPNetwork

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_QUERY_LENGTH = 200


def clean_query(text: str | None) -> str:
    """A user's search text, safe for every backend: PostgreSQL rejects NUL bytes in text."""
    return _CONTROL_RE.sub("", text or "").strip()[:MAX_QUERY_LENGTH]


def parse_ip(text: str) -> IPAddress | None:
    text = (text or "").strip()
    if not text or "/" in text:
        return None
    try:
        return IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return None


def parse_cidr(text: str) -> IPNetwork | None:
    text = (text or "").strip()
    if "/" not in text:
        return None
    try:
        return IPNetwork(text).cidr
    except (AddrFormatError, ValueError, TypeError):
        return None


_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.I)


def parse_mac(text: str) -> str | None:
    text = (text or "").strip()
    if not _MAC_RE.match(text):
        return None
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
