"""What every step of reclamation shares: its error, outcomes and settings."""

from __future__ import annotations

from django.conf import settings

from ippam.models import Finding, ReclaimItem

Outcome = ReclaimItem.Outcome
ALLOCATION_KINDS = (Finding.Kind.ORPHANED_ALLOCATION, Finding.Kind.STALE_ALLOCATION)


class ReclaimError(Exception):
    """A reclamation request that cannot be planned or run, saying what to do instead."""


def max_attempts() -> int:
    return max(int(getattr(settings, "IPPAM_RECLAIM_MAX_ATTEMPTS", 3) or 1), 1)


def holders_max_age() -> float:
    """How old the index of live holders may be when an address is re-checked (seconds)."""
    return float(getattr(settings, "IPPAM_RECLAIM_HOLDERS_MAX_AGE_SECONDS", 30))


def deadline_seconds() -> float:
    """How long a RUNNING run's worker may stay silent before the run is failed."""
    return float(getattr(settings, "IPPAM_RECLAIM_DEADLINE_SECONDS", 600) or 600)
