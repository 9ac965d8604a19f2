"""A pool's numbers: usable, allocated, free and utilization, computed here and only here.

Pure module (no Django, no kubernetes client). Every surface that shows a pool's numbers
(the pool page's header and map legend, the pools list, the overview, alert texts, the REST
API, exports, `/metrics`, the CLI and the report) reads them from `PoolNumbers`, so they
cannot disagree:

- usable: what whereabouts may hand out of the pool (ippam.ranges' count, kept in
  ``IPPool.usable``; at most 2**63 - 1, the offsets whereabouts can read back);
- allocated: the IPPool's ``spec.allocations`` (kept in ``IPPool.allocated``);
- free = usable - allocated (never below 0: allocations at addresses the config no longer
  hands out, e.g. excluded after the fact, still fill the pool's list);
- utilization = allocated / usable (0 for a pool with nothing usable).

All are exact integers; only utilization is a float. ``readable`` writes a count a person
can read at a glance: a /64's 2**63 - 1 as "2^63−1", other huge counts as "9.2 × 10^18".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["PoolNumbers", "percent_text", "pool_alert_text", "readable"]


#: whereabouts stores offsets as signed 64-bit integers, so no range hands out more.
USABLE_MAX = 2**63 - 1


@dataclass(frozen=True)
class PoolNumbers:
    usable: int
    allocated: int

    @classmethod
    def of(cls, usable: int | Decimal | float | str, allocated: int) -> PoolNumbers:
        """From the stored columns (usable is a DecimalField: exact, never through float).

        Capped at 2**63 - 1, the most whereabouts can hand out of one range: SQLite keeps a
        decimal this big as a float, whose text (9223372036854780000) is above the cap."""
        return cls(usable=min(int(Decimal(str(usable))), USABLE_MAX), allocated=int(allocated))

    @property
    def free(self) -> int:
        return max(self.usable - self.allocated, 0)

    @property
    def utilization(self) -> float:
        return self.allocated / self.usable if self.usable else 0.0

    @property
    def exhausted(self) -> bool:
        """Usable addresses exist and none is free (a pool with nothing usable is broken,
        not full: its problems say why)."""
        return self.usable > 0 and self.free == 0

    @property
    def percent(self) -> str:
        return percent_text(self.utilization)


def percent_text(utilization: float) -> str:
    """Floored, so "100%" means no address is free (82 of 91 is 90%, 253 of 254 is 99%);
    one decimal under 10% (5 of 254 is 1.9%)."""
    u = max(float(utilization), 0.0) * 100
    if u == 0 or u >= 10:
        return f"{math.floor(u + 1e-9)}%"
    return f"{math.floor(u * 10 + 1e-9) / 10:.1f}%"


# Counts up to this many digits are written out exactly, with thousands separators.
_EXACT_DIGITS = 12


def readable(value: int) -> str:
    """A count as a person reads it: exact with separators up to 12 digits; a power of two
    (or one less, a /64's 2^63−1) above that as such; else 3 significant digits × 10^n."""
    n = int(value)
    if n < 0:
        return "−" + readable(-n)
    if len(str(n)) <= _EXACT_DIGITS:
        return f"{n:,}"
    if n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1}"
    if (n + 1) & n == 0:
        return f"2^{n.bit_length()}−1"
    exponent = len(str(n)) - 1
    mantissa = f"{n / 10**exponent:.1f}".rstrip("0").rstrip(".")
    return f"{mantissa} × 10^{exponent}"


def pool_alert_text(kind: str, label: str, numbers: PoolNumbers, threshold: float) -> str:
    """The text of a pool's alert (``kind`` "pool_threshold" or "pool_exhausted") from its
    numbers now: rendered at display time too, so it never contradicts the pool's row."""
    if kind == "pool_exhausted":
        return (
            f"IPPool {label} is exhausted: all {numbers.usable:,} usable addresses are "
            "allocated, so new pods on its networks fail with 'Could not allocate IP in range'"
        )
    return (
        f"IPPool {label} is {numbers.percent} full ({numbers.allocated:,} of "
        f"{numbers.usable:,} addresses), above the {percent_text(threshold)} alert threshold; "
        "reclaim leaks or widen the range"
    )
