"""Reclamation runs: one run with its items and a count per outcome, for the progress view."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from ippam.leaks.rules.registry import RECLAIMABLE_KINDS
from ippam.models import Finding, IPPool, ReclaimItem, ReclaimRun


@dataclass
class RunProgress:
    run: ReclaimRun
    items: list[ReclaimItem]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.counts.get(ReclaimItem.Outcome.PENDING, 0)

    @property
    def finished(self) -> bool:
        return self.run.state in (ReclaimRun.State.DONE, ReclaimRun.State.FAILED)

    @property
    def waited(self) -> int:
        """Seconds since the run was planned."""
        created = self.run.created_at
        return int((timezone.now() - created).total_seconds()) if created else 0


def reclaim_run_get(*, run_id: int) -> ReclaimRun:
    """Raises ReclaimRun.DoesNotExist."""
    return ReclaimRun.objects.select_related("cluster").get(pk=run_id)


def reclaim_run_items(*, run: ReclaimRun) -> list[ReclaimItem]:
    return list(run.items.all())


def reclaim_run_progress(*, run: ReclaimRun) -> RunProgress:
    items = reclaim_run_items(run=run)
    counts: dict[str, int] = {}
    for item in items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    return RunProgress(run=run, items=items, counts=counts)


def reclaim_offered(*, pool: IPPool) -> bool:
    """Whether reclaiming can free anything of this pool: a finding of a reclaimable kind,
    leaving out an orphaned reservation that is missing (nothing to delete: its remedy is
    restarting the pod). Suspects count: the pool's form may include them."""
    return (
        Finding.objects.filter(pool=pool, kind__in=RECLAIMABLE_KINDS)
        .exclude(kind=Finding.Kind.ORPHANED_RESERVATION, reservation__isnull=True)
        .exists()
    )
