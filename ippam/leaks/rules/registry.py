"""Which rules run, in which order, and how: candidates_compute runs every rule of RULES,
concurrently on separate connections on PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connection, connections, transaction

from ippam.leaks.rules.allocations import (
    duplicate_addresses,
    unlisted_allocations,
    untracked_addresses,
)
from ippam.leaks.rules.common import Candidate, Context, Kind
from ippam.leaks.rules.nodeslice import exhausted_slices, nodes_without_slice, stranded_slices
from ippam.leaks.rules.overlaps import overlapping_ranges
from ippam.leaks.rules.reservations import orphaned_reservations
from ippam.models import Cluster

#: Kinds whose findings reclamation can act on (docs/design.md §4).
RECLAIMABLE_KINDS = (Kind.ORPHANED_ALLOCATION, Kind.STALE_ALLOCATION, Kind.ORPHANED_RESERVATION)

# The costliest rules first, so that a small pool of threads finishes together.
RULES = (
    unlisted_allocations,
    untracked_addresses,
    duplicate_addresses,
    orphaned_reservations,
    overlapping_ranges,
    stranded_slices,
    nodes_without_slice,
    exhausted_slices,
)
PARALLEL_RULES = 3


def _parallel_possible() -> bool:
    """Rules may run on their own connections only on PostgreSQL (its backends use the
    other cores; concurrent SQLite readers measured slower than one, bench/leaks_bench.py),
    and only outside a transaction, whose rows other connections cannot see."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


@contextlib.contextmanager
def _planner_settings() -> Iterator[None]:
    """PostgreSQL: no JIT for the rules. Their hash joins over 150k rows cost enough for
    the planner to JIT-compile them, which takes longer (2-3 s) than running them (< 1 s)."""
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
        yield


def _rule_on_own_connection(rule: Any, cluster_id: int, now: dt.datetime) -> list[Candidate]:
    try:
        with _planner_settings():
            return rule(Context(Cluster.objects.get(pk=cluster_id), now))
    finally:
        connections.close_all()  # this thread's connections only


def candidates_compute(
    *, cluster: Cluster, now: dt.datetime, parallel: bool | None = None
) -> list[Candidate]:
    """Every rule's candidates. The rules are independent read-only queries, each a full
    pass over a large table, so when possible they run concurrently on separate database
    connections: the database (PostgreSQL's backends, SQLite's WAL readers) then uses
    more than one core, which is what keeps detection within seconds at 150k allocations."""
    if parallel is None:
        parallel = PARALLEL_RULES > 1 and _parallel_possible()
    found: list[Candidate] = []
    if not parallel:
        ctx = Context(cluster, now)
        with _planner_settings():
            for rule in RULES:
                found.extend(rule(ctx))
        return found
    with ThreadPoolExecutor(max_workers=PARALLEL_RULES, thread_name_prefix="leak-rule") as pool:
        futures = [pool.submit(_rule_on_own_connection, rule, cluster.pk, now) for rule in RULES]
        for future in futures:
            found.extend(future.result())
    return found
