"""The dry run as the run will see it: each planned item put through the run's own live
re-check (step 2), nothing written, so a dry run splits items into "will free" and "will
skip (pod X holds it)" exactly as the run would decide them now (UI and CLI alike)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ippam.kube.client import KubeError
from ippam.kube.writes import KubeWrites
from ippam.leaks.reclaim.common import Outcome
from ippam.leaks.reclaim.recheck import Recheck
from ippam.leaks.reclaim.write import _Item, _item_scopes
from ippam.models import ReclaimItem, ReclaimRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemPreview:
    item: ReclaimItem
    # What the run would end with now: PENDING means it will free the item; "" means the
    # live state could not be read (the run re-checks it before freeing anything).
    outcome: str
    message: str

    @property
    def frees(self) -> bool:
        return self.outcome == Outcome.PENDING

    @property
    def unknown(self) -> bool:
        return self.outcome == ""


@dataclass(frozen=True)
class Preview:
    items: list[ItemPreview]
    error: str = ""  # why the cluster could not be read, if it could not

    @property
    def will_free(self) -> list[ItemPreview]:
        return [p for p in self.items if p.frees]

    @property
    def will_skip(self) -> list[ItemPreview]:
        return [p for p in self.items if not p.frees and not p.unknown]

    @property
    def unknown(self) -> list[ItemPreview]:
        return [p for p in self.items if p.unknown]

    @property
    def offers_a_run(self) -> bool:
        """Whether running the plan may free anything (an unread item may)."""
        return any(p.frees or p.unknown for p in self.items)


def reclaim_preview(run: ReclaimRun) -> Preview:
    """Re-check every pending item of a planned run against the live cluster, writing
    nothing. Items the plan already skipped keep their sentence."""
    items = list(run.items.order_by("id"))
    pending = [i for i in items if i.outcome == Outcome.PENDING]
    verdicts: dict[int, tuple[str, str]] = {}
    error = ""
    if pending:
        try:
            writes = KubeWrites(run.cluster)
        except KubeError as exc:
            error = str(exc)
        else:
            try:
                recheck = Recheck(writes, run, pending)
                scopes = _item_scopes(run.cluster, pending)
                for item in pending:
                    try:
                        verdicts[item.pk] = _Item(recheck, item, scopes.get(item.pk)).preview()
                    except KubeError as exc:
                        verdicts[item.pk] = ("", f"Not re-checked ({exc}); the run re-checks it.")
                    except Exception as exc:  # one item's bug must not hide the others
                        log.exception("reclaim dry run %s: item %s failed", run.pk, item.pk)
                        verdicts[item.pk] = (
                            "",
                            f"Not re-checked ({exc.__class__.__name__}: {exc}); the run "
                            "re-checks it.",
                        )
            except KubeError as exc:  # the list of live pods failed
                error = str(exc)
            finally:
                writes.close()
    unread = f"Not re-checked: {error}; the run re-checks it before freeing anything."
    previews = []
    for item in items:
        if item.outcome != Outcome.PENDING:
            previews.append(ItemPreview(item, item.outcome, item.message))
        else:
            outcome, message = verdicts.get(item.pk, ("", unread))
            previews.append(ItemPreview(item, outcome, message))
    return Preview(previews, error)
