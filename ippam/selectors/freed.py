"""Recently freed addresses (ippam.sync.freed): for the pool page and its map (search reads
them in its own statement, ippam.selectors.search, and shows them as these rows).

Whereabouts hands a freed address out again at once, so "who had 10.0.0.7 a minute ago"
is the question behind a stale ARP/neighbour entry; these reads answer it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.timesince import timesince

from ippam.models import FreedAddress, IPPool
from ippam.sync.freed import freed_since


def freed_ago(freed_at: datetime, now: datetime | None = None) -> str:
    """'3 minutes ago' (the largest unit only: a map cell's title is read at a glance)."""
    return f"{timesince(freed_at, now or timezone.now(), depth=1)} ago"


def freed_exact(freed_at: datetime) -> str:
    return f"{freed_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def freed_phrase(f: FreedAddress, now: datetime | None = None, *, pool: bool = False) -> str:
    """'freed 3 minutes ago (<exact>) [from IPPool ns/name], held by ns/pod (net1)'."""
    where = f" from IPPool {f.pool_namespace}/{f.pool_name}" if pool else ""
    who = f.podref or "an allocation without podref"
    ifname = f" ({f.ifname})" if f.ifname else ""
    return (
        f"freed {freed_ago(f.freed_at, now)} ({freed_exact(f.freed_at)}){where}, "
        f"held by {who}{ifname}"
    )


def _pool_freed(pool: IPPool) -> QuerySet[FreedAddress]:
    return FreedAddress.objects.filter(
        cluster_id=pool.cluster_id,
        pool_namespace=pool.namespace,
        pool_name=pool.name,
        freed_at__gte=freed_since(),
    )


def pool_freed_by_ip(pool: IPPool, *, lo: str, hi: str) -> dict[int, FreedAddress]:
    """int(ip) -> the latest free of that address in the pool within [lo, hi] (one query)."""
    out: dict[int, FreedAddress] = {}
    for f in _pool_freed(pool).filter(ip__range=(lo, hi)).order_by("freed_at"):
        out[int(f.ip)] = f  # ascending: the latest free wins
    return out


@dataclass
class FreedRow:
    freed: FreedAddress
    ago: str
    exact: str
    phrase: str


def freed_row(f: FreedAddress, now: datetime, *, pool: bool = False) -> FreedRow:
    return FreedRow(
        f, freed_ago(f.freed_at, now), freed_exact(f.freed_at), freed_phrase(f, now, pool=pool)
    )
