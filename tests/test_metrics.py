"""/metrics: the Prometheus text format behind a bearer token, with values that match a
synced simulated cluster (the pools' truth, detected leaks, open alerts, the last sync, watch
events applied, reclamation outcomes), read in a few queries."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db import OperationalError
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from ippam.leaks import reclaim_plan
from ippam.leaks.tasks import reclaim_run
from ippam.metrics import metrics_text
from ippam.models import (
    Alert,
    Cluster,
    Finding,
    IPPool,
    ReclaimItem,
    SyncRun,
    WatchEventCount,
)
from ippam.sync import cluster_sync_full
from ippam.watch import Watcher
from simcluster.builder import ClusterBuilder

pytestmark = pytest.mark.django_db

TOKEN = "s3cret-scrape-token"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture
def token(settings) -> str:
    settings.IPPAM_METRICS_TOKEN = TOKEN
    return TOKEN


@pytest.fixture
def demo(simcluster, settings) -> Cluster:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    simcluster.load("demo", seed=1)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)  # leak detection and alerts run after it
    return cluster


def scrape(client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """{sample name: {sorted labels: value}} of one authorised scrape."""
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples[name][tuple(sorted(labels.items()))]


# ---- the token


def test_without_a_configured_token_metrics_are_disabled_with_a_reason(client, settings):
    settings.IPPAM_METRICS_TOKEN = ""
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 403
    assert b"set IPPAM_METRICS_TOKEN" in response.content


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
)
def test_a_missing_or_wrong_bearer_token_is_401_with_a_challenge(client, token, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    response = client.get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"ippam_" not in response.content


def test_the_right_token_needs_no_login_and_gets_the_text_format(client, token):
    samples = scrape(client)  # an anonymous client: no redirect to the login page
    assert "ippam_reclaims_total" in samples


def test_metrics_and_probes_are_not_redirected_to_https(client, token, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    assert client.get("/metrics", **AUTH).status_code == 200
    assert client.get("/readyz").status_code in (200, 503)
    assert client.get("/pools/").status_code == 301  # the dashboard itself is redirected


# ---- the values, against a synced simulated cluster


def test_pool_metrics_match_the_clusters_pools(client, token, demo, simcluster):
    samples = scrape(client)
    truth = simcluster.ground_truth["pools"]
    assert truth
    network_names = dict(
        IPPool.objects.filter(cluster=demo).values_list("name", "network_name").order_by()
    )
    for ref, usage in truth.items():
        namespace, pool = ref.split("/")
        labels = {
            "cluster": "sim",
            "namespace": namespace,
            "pool": pool,
            "network_name": network_names[pool],
        }
        assert value(samples, "ippam_pool_allocated_addresses", **labels) == usage["allocated"]
        # A sample is a float64: an IPv6 range's 2**63 - 1 comes back rounded.
        usable = value(samples, "ippam_pool_usable_addresses", **labels)
        assert usable == pytest.approx(usage["usable"], rel=1e-12)
    assert len(samples["ippam_pool_usable_addresses"]) == len(truth)


def test_leak_and_alert_metrics_match_detection(client, token, demo, simcluster):
    samples = scrape(client)
    findings = Counter(Finding.objects.filter(cluster=demo).values_list("kind", "state"))
    assert findings  # the demo plants leaks
    for kind in Finding.Kind.values:
        for state in Finding.State.values:
            got = value(samples, "ippam_leak_findings", cluster="sim", kind=kind, state=state)
            assert got == findings[(kind, state)]
    planted = {f["kind"] for f in simcluster.ground_truth["findings"] if f["state"] == "leaked"}
    reported = {
        dict(labels)["kind"]
        for labels, n in samples["ippam_leak_findings"].items()
        if n and dict(labels)["state"] == "leaked"
    }
    assert reported == planted

    alerts = Counter(
        Alert.objects.filter(cluster=demo, state=Alert.State.OPEN).values_list("kind", flat=True)
    )
    for kind in Alert.Kind.values:
        assert value(samples, "ippam_alerts_open", cluster="sim", kind=kind) == alerts[kind]
    exhausted = simcluster.ground_truth["exhausted_pools"]
    assert value(samples, "ippam_alerts_open", cluster="sim", kind="pool_exhausted") == len(
        exhausted
    )


def test_sync_metrics_are_the_last_successful_full_sync(client, token, demo):
    samples = scrape(client)
    run = SyncRun.objects.get(cluster=demo, outcome=SyncRun.Outcome.OK)
    assert run.finished_at is not None
    last = value(samples, "ippam_sync_last_success_timestamp_seconds", cluster="sim")
    assert last == pytest.approx(run.finished_at.timestamp())
    duration = value(samples, "ippam_sync_duration_seconds", cluster="sim")
    assert duration == pytest.approx((run.finished_at - run.started_at).total_seconds())
    assert duration > 0


def test_a_never_synced_cluster_has_no_sync_timestamp(client, token, tmp_path):
    Cluster.objects.create(name="new", kubeconfig=str(tmp_path / "kubeconfig"))
    samples = scrape(client)
    assert "ippam_sync_last_success_timestamp_seconds" not in samples
    assert (
        value(
            samples, "ippam_leak_findings", cluster="new", kind="stale_allocation", state="leaked"
        )
        == 0
    )


@pytest.mark.django_db(transaction=True)
def test_watch_events_count_what_the_watcher_applied(client, token, simcluster):
    b = ClusterBuilder(seed=5)
    b.node("n1")
    b.whereabouts_nad("lab", "net-a", "10.6.0.0/24")
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    watcher = Watcher(batch_seconds=0.05)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not watcher.watches.get(cluster.pk) and time.monotonic() < deadline:
            time.sleep(0.02)
        simcluster.wait_for_watches(len(watcher.watches[cluster.pk]))
        for i in range(3):
            simcluster.create("pods", b.pod("lab", f"p{i}", "n1", [("lab", "net-a")]))
        simcluster.delete("pods", "lab", "p0")
        counted = WatchEventCount.objects.filter(cluster=cluster, kind="pods")
        while time.monotonic() < deadline:
            try:
                if sum(counted.values_list("total", flat=True)) >= 4:
                    break
            except OperationalError:  # SQLite's shared in-memory database: table locked
                pass
            time.sleep(0.02)
    finally:
        watcher.stop()
        thread.join(10)
    samples = scrape(client)
    # Three ADDED and one DELETED (the events of the same pod are counted, not folded).
    assert value(samples, "ippam_watch_events_total", cluster="sim", kind="pods") == 4
    assert ("pods", 4) in {(k, n) for k, n in counted.values_list("kind", "total")}


def test_reclaims_count_item_outcomes_and_pools_follow_the_cluster(client, token, demo, simcluster):
    run = reclaim_plan(cluster=demo, actor="cli:test")
    summary = reclaim_run(run.pk)
    samples = scrape(client)
    outcomes = Counter(ReclaimItem.objects.values_list("outcome", flat=True))
    assert outcomes["reclaimed"] > 0 and outcomes["reclaimed"] == summary["counts"]["reclaimed"]
    for outcome in ("reclaimed", "skipped", "failed", "noop"):
        assert value(samples, "ippam_reclaims_total", outcome=outcome) == outcomes[outcome]
    # After reclaiming, the pools the metrics report are the cluster's own allocations.
    for pool in simcluster.list("ippools"):
        meta = pool["metadata"]
        got = [
            n
            for labels, n in samples["ippam_pool_allocated_addresses"].items()
            if dict(labels)["pool"] == meta["name"]
            and dict(labels)["namespace"] == meta["namespace"]
        ]
        assert got == [len(pool["spec"].get("allocations") or {})]


# ---- shape and cost


def test_the_families_have_their_types_and_every_manifest_metric_exists(token, demo):
    families = {f.name: f.type for f in text_string_to_metric_families(metrics_text().decode())}
    assert families["ippam_watch_events"] == "counter"
    assert families["ippam_reclaims"] == "counter"
    for gauge in (
        "ippam_pool_usable_addresses",
        "ippam_pool_allocated_addresses",
        "ippam_leak_findings",
        "ippam_alerts_open",
        "ippam_sync_last_success_timestamp_seconds",
        "ippam_sync_duration_seconds",
    ):
        assert families[gauge] == "gauge"


def test_a_scrape_is_one_query_per_family(demo, django_assert_max_num_queries):
    with django_assert_max_num_queries(9):  # +1: the watchers' retry state
        metrics_text()


def test_every_metric_the_deploy_manifests_query_is_exported(token, demo):
    """The PrometheusRule alerts and the Grafana dashboard query only metrics we export."""
    root = Path(__file__).resolve().parent.parent / "deploy"
    queried = set()
    for path in (root / "overlays" / "prometheus" / "prometheusrule.yaml", root / "grafana"):
        files = [path] if path.is_file() else sorted(path.glob("*.json"))
        for file in files:
            queried |= set(re.findall(r"\bippam_[a-z_]+", file.read_text()))
    assert queried
    exported = set()
    for family in text_string_to_metric_families(metrics_text().decode()):
        exported |= (
            {family.name, f"{family.name}_total"} if family.type == "counter" else {family.name}
        )
    assert queried <= exported, queried - exported
