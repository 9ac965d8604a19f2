"""ippam's reading of whereabouts configs against whereabouts' own code, config by config.

tests/data/whereabouts_go_table.jsonl holds 638 ``ipam`` sections (JSON text: 600 generated,
the last 38 hand-written: IPv4 ends in IPv6 ranges, mapped ranges, keys in other cases or
repeated, routes and addresses) and what whereabouts made of each. It was produced outside
the repository by a Go 1.19.8 harness that restates, with the standard library only,
whereabouts' (commit 3a262bd) ``types.IPAMConfig`` decoding (CNI v1.3's route and IPNet
decoding included), ``config.LoadIPAMConfig``'s range handling (no flat file, no
kubeconfig check), ``allocate.IterateForAssignment`` and ``iphelpers``, with k8s.io/utils'
``ParseIPSloppy``/``ParseCIDRSloppy``; it walked each range of an empty pool and wrote:

- ``error``: why LoadIPAMConfig rejected the config ("" when it loaded);
- per range: the range as whereabouts names it, the allocation error ("" when none),
  ``count`` of addresses handed out one after the other (null when more than 70,000),
  ``kept`` of those whose offset whereabouts can read back from its IPPool
  (``strconv.ParseInt(.., 64)``: below 2^63), ``first`` and ``last`` handed out.

The configs mix padded values, leading zeros, ``/0024`` prefixes, numbers where strings
belong, bad ``ipRanges`` entries, IPv4-mapped text in range/range_start/range_end/exclude,
reversed and outside ends, ``first-last/prefix`` ranges, /31 /32 /127 /128 and IPv6 ranges
around offset 2^63. whereabouts builds with Go 1.25, whose netip-based ``net.ParseIP``
also refuses an IPv6 group of more than 4 hex digits (1.19 took one up to 0xffff): ippam
follows 1.25 there, and the table holds no such text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from netaddr import IPAddress

from ippam.cniconfig import parse_cni_config
from ippam.whereabouts import parse_whereabouts_ipam

TABLE = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "whereabouts_go_table.jsonl")
    .read_text()
    .splitlines()
]


def test_the_table_covers_each_rule():
    texts = [row["ipam"] for row in TABLE]
    rejected = [row for row in TABLE if row["go"]["error"]]
    ranges = [r for row in TABLE for r in row["go"]["ranges"]]
    assert len(TABLE) >= 500
    assert sum("json: cannot unmarshal" in row["go"]["error"] for row in rejected) >= 20
    assert sum('"ipRanges"' in t for t in texts) >= 50
    assert sum("::ffff:" in t for t in texts) >= 50
    assert sum("/00" in t for t in texts) >= 20
    assert sum("could not parse exclude range" in r["error"] for r in ranges) >= 20
    assert sum(r["count"] is not None and r["kept"] != r["count"] for r in ranges) >= 5
    assert sum(r["count"] for r in ranges if r["count"]) >= 10_000


@pytest.mark.parametrize("row", TABLE, ids=[str(i) for i in range(len(TABLE))])
def test_ippam_reads_the_config_as_whereabouts_does(row):
    go = row["go"]
    # Through the NAD config reader, as the sync reads it (a repeated key included).
    ipam = parse_cni_config('{"type": "macvlan", "ipam": ' + row["ipam"] + "}").ipam
    assert ipam is not None
    config = parse_whereabouts_ipam(ipam)
    assert bool(config.refusal) == bool(go["error"]), (config.refusal, go["error"])
    if go["error"]:
        # Rejected: every ADD fails, so no range hands anything out.
        assert all(r.usable_count() == 0 and r.verdict for r in config.ranges)
        return
    assert [r.cidr for r in config.ranges] == [g["range"] for g in go["ranges"]]
    for r, g in zip(config.ranges, go["ranges"], strict=True):
        usable = r.usable()
        if g["error"] or g["count"] == 0 or g["kept"] == 0:
            assert usable.count == 0
            if "could not parse exclude range" in g["error"]:
                assert r.verdict.startswith("every allocation from this range fails: exclude entry")
            continue  # kept 0: all beyond the 2^63 stop (see below)
        blocks = list(usable.free_blocks())
        version = r.network.version
        assert IPAddress(blocks[0][0], version) == IPAddress(g["first"])
        if g["count"] is None:
            continue  # too many to walk: the first one handed out is what was checked
        # The deliberate stop before offset 2^63: whereabouts hands those out and then
        # cannot read them back, so ippam does not count them.
        assert usable.count == g["kept"]
        if g["kept"] == g["count"]:
            assert IPAddress(blocks[-1][1], version) == IPAddress(g["last"])
