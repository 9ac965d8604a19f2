"""Cluster services: register, remove, and queue syncs of the clusters ippam watches."""

from __future__ import annotations

import logging
from pathlib import Path

from django.db import transaction

from ippam.kube.client import KubeError, api_client_for
from ippam.models import Cluster

logger = logging.getLogger(__name__)


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
    """Forget a cluster and every row synced from it."""
    cluster = cluster_get(name=name)
    cluster.delete()


def cluster_sync_enqueue(*, cluster: Cluster) -> None:
    """Queue a full sync of `cluster` once the current transaction commits.

    A broker that does not answer is logged, not raised: the cluster is registered either
    way, and the beat schedule (or `manage.py sync`) syncs it.
    """
    from ippam.tasks import sync_cluster

    cluster_id, name = cluster.pk, cluster.name

    def enqueue() -> None:
        try:
            sync_cluster.delay(cluster_id)
        except Exception as exc:  # noqa: BLE001 - kombu raises several kinds
            logger.warning(
                "cluster %s: could not queue a sync (%s); run manage.py sync --cluster %s",
                name,
                exc,
                name,
            )

    transaction.on_commit(enqueue)
