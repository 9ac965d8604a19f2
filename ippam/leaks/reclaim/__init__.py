"""Reclamation: plan, then free addresses without ever hurting a live pod.

The invariant: no address listed by a live pod is ever freed. The protocol, one function
per step, one module per step (plan.py, recheck.py, write.py, execute.py; common.py holds
ReclaimError and the settings):

1. plan (`reclaim_plan`): a dry run stored as a ReclaimRun with one ReclaimItem per chosen
   finding, recording the pod uid the plan believed in.
2. re-check (`_Item.read_allocation`, `_Item.holder`): trust nothing from the database. Just
   before freeing address X, read the IPPool and the podref's pod live, by name *and* uid
   (a StatefulSet pod re-created under the same name is another pod), and every live pod of
   the cluster that lists X in the same network scope (`Recheck`, from a paged list of all
   pods read after the run started). Whereabouts' reconciler only looks at the podref's
   pod; a pod that got X from an overlapping range, or by hand, would lose it.
   Any holder, or a pod still starting (CNI ADD in flight, whereabouts #162/#207): skipped,
   with a sentence that names it.
3. guarded write (`_Item.patch_guarded`, `_Item.release_reservation`): a JSON Patch that
   first tests the pool's resourceVersion and the allocation's podref, so a concurrent
   writer makes it fail (409/422) instead of removing someone else's address; then re-read,
   re-check and retry, a bounded number of times. The OverlappingRangeIPReservation is
   deleted only while its podref still names the same pod (resourceVersion precondition).
4. audit (`_item_record`): every item ends reclaimed, skipped, failed or noop (already
   gone) with a sentence and an AuditEntry. An item that raises fails alone; the run always
   ends; a run whose worker died is failed after a deadline (`reclaim_runs_expire`). A run
   executed twice frees nothing twice.
"""
