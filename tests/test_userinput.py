"""What users type into filter and search boxes: recognised, or None for a text search."""

from __future__ import annotations

import pytest

from ippam.ipparse import input_cidr as parse_cidr
from ippam.ipparse import input_ip as parse_ip
from ippam.userinput import MAX_QUERY_LENGTH, clean_query, parse_mac


@pytest.mark.parametrize(
    "text, ok",
    [
        ("10.0.0.1", True),
        ("fd00::1", True),
        ("10.0.0.0/24", False),
        ("x", False),
        ("", False),
        ("1.2.3.4.5", False),
    ],
)
def test_parse_ip(text, ok):
    assert (parse_ip(text) is not None) is ok


def test_parse_cidr_and_mac():
    assert str(parse_cidr("10.0.0.7/24")) == "10.0.0.0/24"
    assert parse_cidr("10.0.0.0/40") is None
    assert parse_mac("0A-58-0A-00-00-01") == "0a:58:0a:00:00:01"
    assert parse_mac("0a:58:0a:00:00") is None


def test_clean_query_drops_control_characters_and_caps_the_length():
    # PostgreSQL rejects a NUL byte in a text parameter: it must never reach a filter.
    assert clean_query("  web\x00-1\n ") == "web-1"
    assert clean_query(None) == ""
    assert len(clean_query("a" * 1000)) == MAX_QUERY_LENGTH
