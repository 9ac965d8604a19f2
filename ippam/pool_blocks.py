"""Per-block allocation counts of each pool, kept current by the writers (issue 15).

A block is 256 addresses on a boundary of the sortable address key (ippam.fields): an IPv4
/24 or an IPv6 /120, the first 30 of the key's 32 hex digits. Every heat-map block of
ippam.selectors.pool_map is 2^8, 2^12, ... addresses on such a boundary (a key prefix of
30, 29, ... digits), so a heat map of any region sums these rows by a shorter prefix: a /16
reads at most 256 rows however many of its 65k addresses are allocated.

Whoever rewrites a pool's allocations calls `pool_blocks_refresh` for those pools, in the
same transaction: the sync and the watcher through `store.pools_refresh_usage`, reclaim
through `pools_recount`. One DELETE and one INSERT ... SELECT ... GROUP BY, on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from django.db import connection

from ippam.models import Allocation, Finding, IPPool, PoolBlock

# Hex digits of the address key a block shares: 30 of 32, so 2 digits (8 bits) of host.
BLOCK_KEY_DIGITS = 30
# SQLite's default limit on host parameters is 999.
_SQLITE_CHUNK = 900


def pool_blocks_refresh(*, cluster_id: int, pool_ids: Iterable[int] | None = None) -> None:
    """Recount the blocks of these pools of the cluster (all of its pools when None).

    Also drops the rows of the cluster's pools that no longer exist: the sync deletes pools
    in bulk (store.objects_delete) without calling here.
    """
    qn = connection.ops.quote_name
    blocks = qn(PoolBlock._meta.db_table)
    allocations = qn(Allocation._meta.db_table)
    pools = qn(IPPool._meta.db_table)
    prefix = f"SUBSTR(ip, 1, {BLOCK_KEY_DIGITS})"
    if connection.vendor == "postgresql":
        # Grouped bytewise: the keys are plain hex, and the database collation is slower.
        prefix += ' COLLATE "C"'

    def insert(only: str) -> str:
        return (
            f"INSERT INTO {blocks} (pool_id, cluster_id, first_ip, allocated) "
            f"SELECT pool_id, %s, {prefix} || '00', COUNT(*) FROM {allocations} "
            f"WHERE cluster_id = %s{only} GROUP BY pool_id, {prefix}"
        )

    with connection.cursor() as cursor:
        if pool_ids is None:
            cursor.execute(f"DELETE FROM {blocks} WHERE cluster_id = %s", [cluster_id])
            cursor.execute(insert(""), [cluster_id, cluster_id])
            return
        ids = sorted(set(pool_ids))
        cursor.execute(
            f"DELETE FROM {blocks} WHERE cluster_id = %s AND NOT EXISTS "
            f"(SELECT 1 FROM {pools} p WHERE p.id = {blocks}.pool_id)",
            [cluster_id],
        )
        if not ids:
            return
        for only, params in _pool_filters(ids):
            cursor.execute(
                f"DELETE FROM {blocks} WHERE cluster_id = %s{only}", [cluster_id, *params]
            )
            cursor.execute(insert(only), [cluster_id, cluster_id, *params])


def _pool_filters(ids: Sequence[int]) -> Iterable[tuple[str, list[Any]]]:
    """(SQL condition, its parameters) selecting these pool ids: one array on PostgreSQL,
    IN lists under SQLite's parameter limit."""
    if connection.vendor == "postgresql":
        yield " AND pool_id = ANY(%s)", [list(ids)]
        return
    for i in range(0, len(ids), _SQLITE_CHUNK):
        batch = list(ids[i : i + _SQLITE_CHUNK])
        yield f" AND pool_id IN ({', '.join(['%s'] * len(batch))})", batch


def _block_counts_sql(*, digits: int) -> str:
    """SELECT (key prefix, allocations) of one pool's blocks in [lo, hi]; params pool, lo, hi."""
    if digits > BLOCK_KEY_DIGITS:
        raise ValueError(f"blocks are counted per {BLOCK_KEY_DIGITS} key digits, not {digits}")
    blocks = connection.ops.quote_name(PoolBlock._meta.db_table)
    prefix = _prefix("first_ip", digits)
    return (
        f"SELECT {prefix} AS block, SUM(allocated) AS c FROM {blocks} "
        f"WHERE pool_id = %s AND first_ip BETWEEN %s AND %s GROUP BY {prefix}"
    )


def _prefix(column: str, digits: int) -> str:
    prefix = f"SUBSTR({column}, 1, {int(digits)})"
    if connection.vendor == "postgresql":
        prefix += ' COLLATE "C"'
    return prefix


def pool_block_counts(*, pool_id: int, lo: str, hi: str, digits: int) -> dict[str, int]:
    """Allocations of the pool per key prefix of `digits` (<= BLOCK_KEY_DIGITS) hex digits,
    inside the keys [lo, hi] (a region aligned on such prefixes); empty prefixes left out."""
    sql = _block_counts_sql(digits=digits)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pool_id, lo, hi])
        return {key: int(count) for key, count in cursor.fetchall() if count}


class BlockHeat(NamedTuple):
    # A tuple, not a frozen dataclass: a heat map builds 256 (a frozen dataclass's
    # __init__ sets each field through object.__setattr__, ~4x the cost).
    allocated: int = 0
    leaked: int = 0
    suspect: int = 0


def pool_block_heat(*, pool_id: int, lo: str, hi: str, digits: int) -> dict[str, BlockHeat]:
    """What a heat map draws per key prefix of `digits` hex digits inside [lo, hi]: the
    allocations (these blocks) and the leak findings, leaked and suspect, of the pool.

    One statement (a UNION ALL of the two groupings), so the heat map is one round trip;
    findings are few (one per leaked address) and grouped from their own rows. Prefixes with
    nothing to draw are left out.
    """
    findings = connection.ops.quote_name(Finding._meta.db_table)
    prefix = _prefix("ip", digits)
    if digits == BLOCK_KEY_DIGITS:
        # Blocks of exactly one row each ((pool, first_ip) is unique): the rows as they
        # are, with no grouping (a /16's heat map draws its 256 rows this way).
        blocks = connection.ops.quote_name(PoolBlock._meta.db_table)
        allocations = (
            f"SELECT {_prefix('first_ip', digits)}, '' AS state, allocated FROM {blocks} "
            f"WHERE pool_id = %s AND first_ip BETWEEN %s AND %s AND allocated > 0"
        )
    else:
        allocations = f"SELECT block, '' AS state, c FROM ({_block_counts_sql(digits=digits)}) AS b"
    sql = (
        f"{allocations} "
        f"UNION ALL SELECT {prefix}, state, COUNT(*) FROM {findings} "
        f"WHERE pool_id = %s AND ip BETWEEN %s AND %s AND state IN (%s, %s) "
        f"GROUP BY {prefix}, state"
    )
    leaked, suspect = Finding.State.LEAKED, Finding.State.SUSPECT
    # [allocated, leaked, suspect] per prefix; the row's state picks the slot.
    slot = {"": 0, str(leaked): 1, str(suspect): 2}
    counts: dict[str, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [pool_id, lo, hi, pool_id, lo, hi, str(leaked), str(suspect)])
        for key, state, count in cursor.fetchall():
            if count:
                c = counts.get(key)
                if c is None:
                    c = counts[key] = [0, 0, 0]
                c[slot[state]] = int(count)
    return {key: BlockHeat(*c) for key, c in counts.items()}
