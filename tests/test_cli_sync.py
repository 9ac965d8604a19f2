"""Operator commands: cluster, sync, pools, nads, interfaces (text and --json)."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command

from ippam.models import Cluster, Pod

pytestmark = pytest.mark.django_db


def run(capsys, *args):
    call_command(*args)
    return capsys.readouterr().out


@pytest.fixture
def demo(simcluster, capsys):
    simcluster.load("demo")
    run(capsys, "cluster", "add", "demo", "--kubeconfig", simcluster.kubeconfig)
    return Cluster.objects.get(name="demo")


def test_cluster_add_list_remove(simcluster, demo, capsys):
    listed = json.loads(run(capsys, "cluster", "list", "--json"))
    assert [c["name"] for c in listed] == ["demo"]
    assert listed[0]["sync_state"] == "never"
    assert "demo" in run(capsys, "cluster", "list")
    with pytest.raises(CommandError, match="already exists"):
        call_command("cluster", "add", "demo", "--kubeconfig", simcluster.kubeconfig)
    with pytest.raises(CommandError, match="cannot load kubeconfig"):
        call_command("cluster", "add", "other", "--kubeconfig", "/nonexistent/kubeconfig")
    with pytest.raises(CommandError, match="context"):
        call_command(
            "cluster", "add", "other", "--kubeconfig", simcluster.kubeconfig, "--context", "nope"
        )
    assert "removed cluster demo" in run(capsys, "cluster", "remove", "demo")
    assert not Cluster.objects.exists()


def test_unknown_cluster_names_the_known_ones(demo):
    with pytest.raises(CommandError, match=r"no cluster named 'prod' \(known: demo\)"):
        call_command("sync", "--cluster", "prod")
    with pytest.raises(CommandError, match="known: demo"):
        call_command("pools", "--cluster", "prod")


def test_sync_prints_counts_and_json(simcluster, demo, capsys):
    text = run(capsys, "sync", "--cluster", "demo")
    assert "cluster demo: synced in" in text
    assert "Pods" in text and str(len(simcluster.list("pods"))) in text
    result = json.loads(run(capsys, "sync", "--json"))
    assert result[0]["outcome"] == "ok"
    assert result[0]["counts"]["pods"] == len(simcluster.list("pods"))
    assert result[0]["written"]["pods"] == 0


def test_sync_failure_says_nothing_was_deleted(simcluster, demo):
    simcluster.fault(r"^/api/v1/pods$", status=500, count=1)
    with pytest.raises(CommandError, match="Nothing was deleted"):
        call_command("sync")


def test_pools_and_nads_show_usage_and_problems(simcluster, demo, capsys):
    run(capsys, "sync")
    pools = json.loads(run(capsys, "pools", "--json"))
    truth = simcluster.ground_truth["pools"]
    assert {f"{p['namespace']}/{p['name']}" for p in pools} == set(truth)
    tiny = next(p for p in pools if p["name"] == "10.40.0.0-28")
    assert (tiny["usable"], tiny["allocated"], tiny["free"], tiny["utilization_percent"]) == (
        14,
        14,
        0,
        100.0,
    )
    assert tiny["nads"] == ["lab/tiny-net"]
    text = run(capsys, "pools")
    assert "10.40.0.0/28" in text and "100%" in text

    nads = json.loads(run(capsys, "nads", "--json"))
    legacy = next(n for n in nads if n["name"] == "legacy-ens224")
    assert legacy["config_valid"] is False and "not valid JSON" in legacy["problems"][0]
    shared = next(n for n in nads if n["name"] == "shared-a")
    assert shared["ranges"] == [
        {
            "range": "10.30.0.0/24",
            "usable": 254,
            "pool": "shared-l2-10.30.0.0-24",
            "network_name": "shared-l2",
        }
    ]
    text = run(capsys, "nads")
    assert "INVALID" in text and "problem: demo default/legacy-ens224" in text


def test_interfaces_filter_by_node_and_show_annotation_problems(simcluster, demo, capsys):
    pod = simcluster.list("pods")[0]
    node = pod["spec"]["nodeName"]
    simcluster.patch(
        "pods",
        pod["metadata"]["namespace"],
        pod["metadata"]["name"],
        {"metadata": {"annotations": {"k8s.v1.cni.cncf.io/network-status": "{oops"}}},
    )
    run(capsys, "sync")
    rows = json.loads(run(capsys, "interfaces", "--node", node, "--json"))
    assert rows and {r["node"] for r in rows} == {node}
    on_node = set(Pod.objects.filter(node_name=node).values_list("namespace", "name"))
    with_status = {
        p for p in on_node if Pod.objects.get(namespace=p[0], name=p[1]).network_status_annotation
    }
    assert with_status <= {(r["namespace"], r["pod"]) for r in rows} <= on_node
    broken = [r for r in rows if r["pod"] == pod["metadata"]["name"]]
    assert broken[0]["interface"] == "" and "not valid JSON" in broken[0]["problems"][0]
    text = run(capsys, "interfaces", "--node", node)
    assert "problem: demo" in text
    with pytest.raises(CommandError, match="no node named 'nope'"):
        call_command("interfaces", "--node", "nope")


def test_demo_cluster_if_none_registers_only_when_nothing_is_configured(capsys, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert "registered the simulated cluster" in run(capsys, "demo_cluster", "--if-none")
    demo = Cluster.objects.get()
    assert (demo.name, demo.simulated, demo.kubeconfig) == (
        "demo",
        True,
        str(tmp_path / "demo-kubeconfig"),
    )
    assert "no demo cluster added" in run(capsys, "demo_cluster", "--if-none")
    assert Cluster.objects.count() == 1
