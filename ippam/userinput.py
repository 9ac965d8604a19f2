"""What a user types into a filter or search box, cleaned and recognised.

Lenient on purpose: a value that is not an address returns None so the caller can fall
back to a text search. Addresses and CIDRs are read by ippam.ipparse (input_ip,
input_cidr), next to the Go-lenient and strict dialects.
"""

from __future__ import annotations

import re

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_QUERY_LENGTH = 200


def clean_query(text: str | None) -> str:
    """A user's search text, safe for every backend: PostgreSQL rejects NUL bytes in text."""
    return _CONTROL_RE.sub("", text or "").strip()[:MAX_QUERY_LENGTH]


_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.I)


def parse_mac(text: str) -> str | None:
    text = (text or "").strip()
    if not _MAC_RE.match(text):
        return None
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
