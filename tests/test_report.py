"""`manage.py report --json` (a whole-cluster check with a stable, versioned shape) and
`manage.py reclaim --from-report FILE`, which takes the report only as candidates and
re-checks each one as every reclaim does."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ippam.models import Finding, ReclaimItem
from tests.factories import (
    make_allocation,
    make_cluster,
    make_finding,
    make_nad,
    make_pool,
)
from tests.test_reclaim_simcluster import NET, build, key_of, live_allocations, synced

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_grace(settings) -> None:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0


def run_json(capsys, *args: str) -> dict:
    call_command(*args)
    return json.loads(capsys.readouterr().out)


def test_report_shape_counts_and_details(capsys):
    cluster = make_cluster("prod", sync_error="ippools: 403 Forbidden")
    make_cluster("lab")
    nad = make_nad(cluster, "blue", range="10.0.0.0/30", problems=["exclude '10.0.0.0/33'"])
    pool = make_pool(cluster, "10.0.0.0/30", nads=[nad])  # usable .1 .2
    a = make_allocation(pool, "10.0.0.1", podref="default/gone")
    make_allocation(pool, "10.0.0.2", podref="default/web")
    pool.allocated = 2
    pool.save()
    make_finding(cluster, allocation=a, details={"last_seen_pod": None})
    make_finding(cluster, kind=Finding.Kind.UNTRACKED_ADDRESS, ip="10.0.0.9", state="suspect")

    data = run_json(capsys, "report", "--json", "--cluster", "prod")
    assert data["version"] == 1 and data["generated_at"]
    [c] = data["clusters"]
    assert set(c) == {
        "name",
        "sync_state",
        "last_good_sync",
        "sync_error",
        "summary",
        "pools",
        "findings",
        "problems",
    }
    assert c["summary"] == {
        "pools": 1,
        "usable": 2,
        "allocated": 2,
        "free": 0,
        "pools_full": 1,
        "findings": 2,
        "leaked": 1,
        "suspect": 1,
        "problems": 2,
    }
    [p] = c["pools"]
    assert (p["range"], p["usable"], p["allocated"], p["leaks"]) == ("10.0.0.0/30", 2, 2, 1)
    [orphan] = c["findings"]["orphaned_allocation"]
    assert orphan["ip"] == "10.0.0.1" and orphan["pool"] == "kube-system/10.0.0.0-30"
    assert orphan["podref"] == "default/gone" and orphan["details"] == {"last_seen_pod": None}
    assert [f["state"] for f in c["findings"]["untracked_address"]] == ["suspect"]
    assert {(q["object"], q["name"]) for q in c["problems"]} == {
        ("Cluster", "prod"),
        ("NetworkAttachmentDefinition", "default/blue"),
    }
    both = run_json(capsys, "report", "--json")
    assert [x["name"] for x in both["clusters"]] == ["lab", "prod"]


def test_report_is_json_only():
    make_cluster("prod")
    with pytest.raises(CommandError, match="report --json"):
        call_command("report")


def test_reclaim_from_report_rechecks_every_candidate_live(simcluster, capsys, tmp_path):
    b, ips = build()
    synced(simcluster, b)
    report = run_json(capsys, "report", "--json")
    candidates = report["clusters"][0]["findings"]
    assert {f["ip"] for f in candidates["orphaned_allocation"]} == {ips["orphan"]}
    # Stale edits a file could carry: a finding nobody has, and one with another address.
    candidates.setdefault("stale_allocation", []).extend(
        [
            {"identity": "orphaned_allocation:made-up:1", "ip": "10.1.0.200"},
            {**candidates["stale_allocation"][0], "ip": "10.1.0.201"},
        ]
    )
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    # After the report, the orphan's pod comes back (a StatefulSet pod) and lists the address.
    pod = b.pod(
        "default", "gone-1", "node-1", [NET], ips=[ips["orphan"]], allocate=False, reserve=False
    )
    simcluster.create("pods", pod)

    call_command("reclaim", "--from-report", str(path), "--yes", "--json")
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    outcomes = {i["ip"]: (i["outcome"], i["message"]) for i in out["items"]}
    assert outcomes[ips["orphan"]][0] == ReclaimItem.Outcome.SKIPPED
    assert "pod default/gone-1 holds it" in outcomes[ips["orphan"]][1]
    assert outcomes[ips["stale"]][0] == ReclaimItem.Outcome.RECLAIMED
    assert "made-up:1 (10.1.0.200): no current finding" in captured.err
    assert "(10.1.0.201): the current finding names" in captured.err
    live = live_allocations(simcluster)
    assert live[key_of(ips["orphan"])] == "default/gone-1"
    assert key_of(ips["stale"]) not in live


def test_a_report_naming_no_current_finding_reclaims_nothing(simcluster, capsys, tmp_path):
    b, ips = build()
    cluster = synced(simcluster, b)
    path = tmp_path / "report.json"
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "clusters": [
                    {
                        "name": cluster.name,
                        "findings": {"orphaned_allocation": [{"identity": "x", "ip": "10.1.0.9"}]},
                    }
                ],
            }
        )
    )
    before = live_allocations(simcluster)
    call_command("reclaim", "--from-report", str(path), "--yes")
    out = capsys.readouterr().out
    assert "skipped from the report: x (10.1.0.9): no current finding" in out
    assert "nothing in the report is still a finding" in out
    assert live_allocations(simcluster) == before


@pytest.mark.parametrize(
    ("content", "says"),
    [("not json", "is not JSON"), ('{"version": 99, "clusters": []}', "version 99")],
)
def test_a_bad_report_file_says_what_to_do(tmp_path, content, says):
    make_cluster("prod")
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(CommandError, match=says):
        call_command("reclaim", "--from-report", str(path), "--dry-run")
