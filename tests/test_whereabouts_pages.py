"""The NAD and pool pages say what whereabouts will do with a config it reads differently
from a lenient reader: synced from simcluster through the official client, then rendered."""

from __future__ import annotations

import json

import pytest

from ippam.models import Cluster, IPPool, NetworkAttachmentDefinition
from ippam.sync import cluster_sync_full
from simcluster.builder import ClusterBuilder
from tests.html import select, select_one, text

pytestmark = pytest.mark.django_db

FAILS = "every allocation from this range fails: exclude entry `10.5.0.010` cannot be parsed"


def test_an_exclude_entry_with_leading_zeros_shows_every_allocation_fails(
    simcluster, viewer_client
):
    b = ClusterBuilder(seed=19)
    b.node("n1")
    b.whereabouts_nad("default", "zeros", "10.5.0.0/24", exclude=["10.5.0.10"])
    b.whereabouts_nad("default", "fine", "10.6.0.0/24", exclude=["10.6.0.10"])
    b.whereabouts_nad("default", "padded", "10.7.0.0/24")
    # A pod allocated before the configs were edited: the pools exist and hold it.
    b.pod("default", "p1", "n1", [("default", "zeros"), ("default", "fine"), ("default", "padded")])
    objects = b.objects()
    for nad in objects["network-attachment-definitions"]:
        config = json.loads(nad["spec"]["config"])
        if nad["metadata"]["name"] == "zeros":
            # Go's net.ParseCIDR and net.ParseIP refuse the leading zero since Go 1.17.
            config["ipam"]["exclude"] = ["10.5.0.010"]
        if nad["metadata"]["name"] == "padded":
            config["ipam"]["range"] = " 10.7.0.0/24"  # ParseCIDRSloppy trims nothing
        nad["spec"]["config"] = json.dumps(config)
    simcluster.seed(objects)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)

    nad = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="zeros")
    pool = IPPool.objects.get(cluster=cluster, name="10.5.0.0-24")
    assert int(pool.usable) == 0
    assert int(IPPool.objects.get(cluster=cluster, name="10.6.0.0-24").usable) == 253

    nad_page = viewer_client.get(f"/nads/{nad.pk}/").content.decode()
    verdict = select_one(nad_page, "#nad-ranges .range-verdict td")
    assert text(verdict) == f"10.5.0.0/24: {FAILS}"
    usable_cell = select(nad_page, "#nad-ranges tbody tr")[0]
    assert text(select_one(usable_cell, "td.num")) == "0"

    pool_page = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    assert text(select_one(pool_page, "#pool-summary .pool-verdict")) == FAILS
    fine = IPPool.objects.get(cluster=cluster, name="10.6.0.0-24")
    assert select(viewer_client.get(f"/pools/{fine.pk}/").content.decode(), ".pool-verdict") == []

    # A config whereabouts rejects: the pool of the range it means hands nothing out.
    padded = IPPool.objects.get(cluster=cluster, name="10.7.0.0-24")
    assert int(padded.usable) == 0
    assert text(
        select_one(viewer_client.get(f"/pools/{padded.pk}/").content.decode(), ".pool-verdict")
    ) == (
        "every allocation from this range fails: whereabouts rejects the config "
        "(range ' 10.7.0.0/24' is not a CIDR)"
    )
