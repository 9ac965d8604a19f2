"""Migration 0013 gives ranges already stored the verdict the sync now writes."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def _before_and_after() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The migration (whatever number it gets at merge) and the one it depends on."""
    graph = MigrationExecutor(connection).loader.graph
    (after,) = [k for k in graph.nodes if k[0] == "ippam" and k[1].endswith("_nadrange_verdict")]
    (before,) = [p.key for p in graph.node_map[after].parents if p.key[0] == "ippam"]
    return [before], [after]


@pytest.mark.django_db(transaction=True)
def test_stored_ranges_get_their_verdict():
    before, after = _before_and_after()
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        cluster = apps.get_model("ippam", "Cluster").objects.create(name="m", kubeconfig="x")
        nads = apps.get_model("ippam", "NetworkAttachmentDefinition").objects
        ranges = apps.get_model("ippam", "NADRange").objects
        for name, ipam in (
            ("zeros", {"type": "whereabouts", "range": "10.5.0.0/24", "exclude": ["10.5.0.010"]}),
            ("fine", {"type": "whereabouts", "range": "10.6.0.0/24", "exclude": ["10.6.0.10"]}),
        ):
            config = {"type": "macvlan", "ipam": ipam}
            nad = nads.create(
                cluster=cluster,
                namespace="d",
                name=name,
                uid=name,
                config_raw=json.dumps(config),
                config=config,
                ipam_type="whereabouts",
            )
            # As the older reading stored them: both counted.
            ranges.create(nad=nad, cluster=cluster, range=ipam["range"], usable=253, pool_name=name)
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        stored = apps.get_model("ippam", "NADRange").objects.order_by("range")
        assert [(r.range, int(r.usable), r.verdict) for r in stored] == [
            (
                "10.5.0.0/24",
                0,
                "every allocation from this range fails: exclude entry `10.5.0.010` cannot be parsed",
            ),
            ("10.6.0.0/24", 253, ""),
        ]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
