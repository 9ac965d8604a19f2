"""Cluster services: register, remove, and queue syncs of the clusters ippam watches."""

from __future__ import annotations

import logging
from pathlib import Path

from celery import current_app
from django.db import transaction

from ippam.kube.client import KubeError, api_client_for
from ippam.models import Cluster

logger = logging.getLogger(__name__)

SYNC_TASK = "ippam.tasks.sync_cluster"


class ClusterError(Exception):
    """A cluster operation that cannot be done, in words that say what to do."""


def cluster_names() -> list[str]:
    return list(Cluster.objects.order_by("name").values_list("name", flat=True))


def cluster_get(*, name: str) -> Cluster:
    """The cluster called `name`, or a ClusterError listing the known ones."""
    cluster = Cluster.objects.filter(name=name).first()
    if cluster is None:
        known = ", ".join(cluster_names()) or "none yet"
        raise ClusterError(
            f"no cluster named {name!r} (known: {known}). "
            "Register one with: manage.py cluster add NAME --kubeconfig PATH"
        )
    return cluster


def cluster_add(
    *,
    name: str,
    kubeconfig: str = "",
    context: str = "",
    in_cluster: bool = False,
    simulated: bool = False,
    check: bool = True,
) -> Cluster:
    """Register a cluster, checking that the kubeconfig (and context) can be loaded."""
    if Cluster.objects.filter(name=name).exists():
        raise ClusterError(
            f"a cluster named {name!r} already exists; remove it first or pick another name"
        )
    if not in_cluster and not kubeconfig:
        raise ClusterError(
            "say how to connect: --kubeconfig PATH [--context NAME], or --in-cluster"
        )
    if in_cluster and kubeconfig:
        raise ClusterError("choose one: --kubeconfig or --in-cluster, not both")
    if kubeconfig:
        kubeconfig = str(Path(kubeconfig).expanduser().resolve())
    cluster = Cluster(
        name=name,
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=in_cluster,
        simulated=simulated,
    )
    cluster.full_clean()
    if check and not (simulated and not Path(kubeconfig).exists()):
        try:
            api_client_for(cluster).close()
        except KubeError as exc:
            raise ClusterError(str(exc)) from exc
    cluster.save()
    cluster_sync_enqueue(cluster=cluster)
    return cluster


def cluster_remove(*, name: str) -> None:
    """Forget a cluster and every row synced from it.

    Under the cluster row's lock, as every writer (the sync's transaction, the watcher's
    batches) takes it first: the rows are collected only once no writer can add more, so
    none outlives the cluster (the database does not enforce it, see KubeObject.cluster).
    """
    cluster = cluster_get(name=name)
    with transaction.atomic():
        Cluster.objects.select_for_update().filter(pk=cluster.pk).first()
        cluster.delete()


def cluster_sync_enqueue(*, cluster: Cluster) -> None:
    """Queue a full sync of `cluster` once the current transaction commits.

    A broker that does not answer is logged, not raised: the cluster is registered either
    way, and the beat schedule (or `manage.py sync`) syncs it.
    """
    cluster_id, name = cluster.pk, cluster.name

    def enqueue() -> None:
        try:
            # By name: ippam.tasks imports this module.
            current_app.send_task(SYNC_TASK, args=[cluster_id])
        except Exception as exc:  # noqa: BLE001 - kombu raises several kinds
            logger.warning(
                "cluster %s: could not queue a sync (%s); run manage.py sync --cluster %s",
                name,
                exc,
                name,
            )

    transaction.on_commit(enqueue)


def cluster_ensure_in_cluster() -> Cluster | None:
    """With IPPAM_IN_CLUSTER=true, register the cluster ippam runs in (once).

    Called when the watcher starts: exactly one watcher runs (deploy/, docker-compose.yml), so
    one process registers it, and the watcher follows it at once. A cluster already registered
    under IPPAM_IN_CLUSTER_NAME is left as it is (an admin may have disabled or changed it).
    Returns the cluster registered now, or None.
    """
    from django.conf import settings
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError

    if not settings.IPPAM_IN_CLUSTER:
        return None
    name = settings.IPPAM_IN_CLUSTER_NAME
    if Cluster.objects.filter(name=name).exists():
        return None
    try:
        with transaction.atomic():
            cluster = cluster_add(name=name, in_cluster=True)
    except (IntegrityError, ValidationError):  # registered by another process meanwhile
        return None
    except ClusterError as exc:
        logger.error(
            "IPPAM_IN_CLUSTER=true, but %s. Run ippam in a pod whose service account token is "
            "mounted (deploy/), or unset IPPAM_IN_CLUSTER and use manage.py cluster add.",
            exc,
        )
        return None
    logger.info("registered the cluster ippam runs in as %r (IPPAM_IN_CLUSTER=true)", name)
    return cluster


def cluster_waiting_for_server(cluster: Cluster) -> bool:
    """True for a simulated cluster whose server has not written its kubeconfig yet.

    `make run` registers the demo cluster before `manage.py demo_cluster --serve` starts
    simcluster, which writes the kubeconfig once it answers (and removes it when it stops).
    Until then syncing or watching it can only fail: callers wait quietly instead of warning.
    """
    return bool(cluster.simulated and cluster.kubeconfig and not Path(cluster.kubeconfig).exists())
