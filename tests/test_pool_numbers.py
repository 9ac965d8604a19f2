"""One number per fact: every surface (the pool page's header and map legend, the pools list,
the REST API, /metrics, the CLI, the report and pool alerts) says the same usable, allocated
and free for every pool, on simulated clusters synced through the official client over a
real socket: the demo (static and under watched churn) and generated clusters. Also: the
next-free list flags an address a live pod holds, big counts stay exact in the API and
readable on the page, chart axes stay ordered, and node pages split whereabouts addresses
from other IPAM's."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netaddr import IPNetwork
from prometheus_client.parser import text_string_to_metric_families

from ippam.charts import history_chart_svg
from ippam.leaks import leaks_detect
from ippam.models import Alert, Allocation, Cluster, Finding, IPPool, Node
from ippam.poolnumbers import PoolNumbers, percent_text, readable
from ippam.selectors.report import report
from ippam.sync import cluster_sync_full
from simcluster.builder import ClusterBuilder, PoolExhausted
from tests.html import select, select_one, text
from tests.test_watch import eventually

TOKEN = "numbers-metrics-token"

Numbers = tuple[int, int, int]  # usable, allocated, free


# ---------------------------------------------------------------- pure


def test_free_is_usable_minus_allocated_never_below_zero():
    assert PoolNumbers(91, 84).free == 7
    assert PoolNumbers(14, 15).free == 0  # an allocation the config no longer hands out
    assert PoolNumbers(0, 0).utilization == 0.0
    assert PoolNumbers.of(Decimal(2**63 - 1), 21).free == 2**63 - 1 - 21  # no float on the way
    # SQLite returns the /64's stored count as a float: the cap gives the exact count back.
    assert PoolNumbers.of(float(2**63 - 1), 21).usable == 2**63 - 1
    assert PoolNumbers.of(9.22337203685478e18, 21).free == 2**63 - 1 - 21


def test_percent_is_floored_so_100_means_full():
    assert percent_text(82 / 91) == "90%"
    assert percent_text(253 / 254) == "99%"
    assert percent_text(1.0) == "100%"
    assert percent_text(5 / 254) == "1.9%"
    assert percent_text(0) == "0%"


def test_readable_counts():
    assert readable(254) == "254"
    assert readable(123_456_789_012) == "123,456,789,012"
    assert readable(2**63 - 1) == "2^63−1"
    assert readable(2**64) == "2^64"
    assert readable(2**63 - 22) == "9.2 × 10^18"


def _ticks(svg: str) -> list[str]:
    return re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', svg)


def _tick_value(label: str) -> float:
    if "×" in label:
        mantissa, _, exponent = label.partition(" × 10^")
        return float(mantissa) * 10 ** int(exponent)
    return float(label.replace(",", ""))


@pytest.mark.parametrize("top", [7, 254, 65_534, 2**63 - 1])
def test_chart_axis_labels_are_ordered_and_short(top):
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    series = [(now - dt.timedelta(days=d), top * (30 - d) / 60, float(top)) for d in range(30)]
    svg = history_chart_svg(series, start=now - dt.timedelta(days=30), end=now)
    labels = _ticks(svg)
    assert len(labels) == 5
    values = [_tick_value(label) for label in labels]
    assert values == sorted(values) and values[0] == 0  # bottom to top, ascending
    assert values[-1] == pytest.approx(float(top), rel=0.05)
    assert all(len(label) <= 12 for label in labels), labels  # fits the margin


# ---------------------------------------------------------------- every surface


def _page_numbers(client, pool: IPPool) -> tuple[Numbers, Numbers | None]:
    """(header, legend) of the pool page; the legend only for a cell map (small pools)."""
    html = client.get(f"/pools/{pool.pk}/").content.decode()
    header = tuple(
        int(select_one(html, f"#{name}")["data-value"])
        for name in ("pool-usable", "pool-allocated", "pool-free-count")
    )
    groups = {g["data-group"]: int(g["data-total"]) for g in select(html, "#pool-map-legend ul")}
    legend = None
    if groups:
        # Usable: the free cells and the allocations on usable addresses, i.e. all of them
        # but those the config no longer hands out ("allocated excluded").
        stray = sum(
            int(li["data-count"])
            for li in select(html, "#pool-map-legend li[data-state]")
            if li["data-state"] == "allocated excluded"
        )
        allocated, free = groups["allocated"], groups["free"] - stray
        legend = (allocated + free, allocated, free)
    return header, legend  # type: ignore[return-value]


def _list_numbers(client) -> dict[int, Numbers]:
    html = client.get("/pools/").content.decode()
    out = {}
    for row in select(html, "tr[id]"):
        if not row["id"].startswith("pool-"):
            continue
        cells = [select_one(row, f"td.pool-{n}")["data-value"] for n in ("usable", "allocated")]
        free = select_one(row, "td.pool-free")["data-value"]
        out[int(row["id"].removeprefix("pool-"))] = (int(cells[0]), int(cells[1]), int(free))
    return out


def _api_numbers(client) -> dict[int, Numbers]:
    out, url = {}, "/api/v1/pools/"
    while url:
        body = client.get(url).json()
        for p in body["results"]:
            out[p["id"]] = (p["usable"], p["allocated"], p["free"])
        url = body["next"]
    return out


def _metrics_numbers(client, settings_) -> dict[tuple[str, str], tuple[float, float, float]]:
    settings_.IPPAM_METRICS_TOKEN = TOKEN
    body = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    values: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(body):
        if family.name not in (
            "ippam_pool_usable_addresses",
            "ippam_pool_allocated_addresses",
            "ippam_pool_free_addresses",
        ):
            continue
        for sample in family.samples:
            key = (sample.labels["namespace"], sample.labels["pool"])
            values.setdefault(key, {})[family.name] = sample.value
    return {
        key: (
            v["ippam_pool_usable_addresses"],
            v["ippam_pool_allocated_addresses"],
            v["ippam_pool_free_addresses"],
        )
        for key, v in values.items()
    }


def viewer_json(client, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, url
    return json.loads(b"".join(response) if response.streaming else response.content)


def _cli_numbers(capsys) -> dict[tuple[str, str], Numbers]:
    call_command("pools", "--json")
    return {
        (p["namespace"], p["name"]): (p["usable"], p["allocated"], p["free"])
        for p in json.loads(capsys.readouterr().out)
    }


def assert_every_surface_agrees(client, capsys, settings_, cluster: Cluster) -> int:
    """Every surface's numbers for every pool of the cluster are the same, and they are the
    synced truth: allocated is the pool's allocations, free = usable - allocated. Returns
    how many pools were compared."""
    pools = list(IPPool.objects.filter(cluster=cluster).order_by("pk"))
    listed, api = _list_numbers(client), _api_numbers(client)
    metrics, cli = _metrics_numbers(client, settings_), _cli_numbers(capsys)
    reported = {p["id"]: p for c in report([cluster])["clusters"] for p in c["pools"]}
    exported = {
        p["id"]: (p["usable"], p["allocated"], p["free"])
        for p in viewer_json(client, "/pools/export.json")
    }
    overview = {
        int(row["data-pool"]): text(row) for row in select(client.get("/").content, "tr[data-pool]")
    }
    alert_texts = {
        a.pool_id: a.text for a in cluster.alerts.select_related("pool").filter(pool__isnull=False)
    }
    for pool in pools:
        rows = Allocation.objects.filter(pool=pool).count()
        truth = (int(pool.usable), rows, max(int(pool.usable) - rows, 0))
        header, legend = _page_numbers(client, pool)
        r = reported[pool.pk]
        said = {
            "header": header,
            "list": listed[pool.pk],
            "api": api[pool.pk],
            "cli": cli[(pool.namespace, pool.name)],
            "report": (r["usable"], r["allocated"], r["free"]),
            "export": exported[pool.pk],
        }
        if legend is not None:
            said["legend"] = legend
        assert said == {k: truth for k in said}, pool.range
        assert metrics[(pool.namespace, pool.name)] == tuple(float(n) for n in truth)
        if pool.pk in overview:  # the fullest pools only
            assert f"{readable(truth[1])} / {readable(truth[0])}" in overview[pool.pk]
        if pool.pk in alert_texts and "full (" in alert_texts[pool.pk]:
            assert f"({truth[1]:,} of {truth[0]:,} addresses)" in alert_texts[pool.pk]
    return len(pools)


@pytest.fixture
def no_grace(settings):
    settings.IPPAM_LEAK_GRACE_SECONDS = 0


@pytest.mark.django_db
@pytest.mark.parametrize("scenario,seed", [("demo", 1), ("demo", 7), ("leaky", 3)])
def test_every_surface_says_the_same_numbers(
    simcluster, viewer_client, capsys, settings, no_grace, scenario, seed
):
    simcluster.load(scenario, seed=seed)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    assert assert_every_surface_agrees(viewer_client, capsys, settings, cluster) >= 5


def test_every_surface_agrees_under_watched_churn(
    simcluster, watched, viewer_client, capsys, settings
):
    from tests.test_faults_suite import differences

    simcluster.start_churn(40, seed=11)
    before = Allocation.objects.filter(cluster=watched).count()
    eventually(lambda: Allocation.objects.filter(cluster=watched).count() != before, timeout=20)
    simcluster.stop_churn()
    eventually(lambda: differences(simcluster, watched) == [], timeout=20)
    assert assert_every_surface_agrees(viewer_client, capsys, settings, watched) >= 5


_octet = st.integers(min_value=0, max_value=250)


@st.composite
def generated_cluster(draw) -> ClusterBuilder:
    """A few whereabouts NADs with generated range_start, range_end, exclude and gateway,
    pods on them, some listing an address no allocation tracks."""
    b = ClusterBuilder(seed=draw(st.integers(0, 1000)), events=False)
    b.namespace("default")
    b.namespace("kube-system")
    b.node("node-0")
    nads = []
    for i in range(draw(st.integers(1, 3))):
        prefix = draw(st.sampled_from([24, 26, 28]))
        net = IPNetwork(f"10.{100 + i}.0.0/{prefix}")
        hosts = list(net)[1:-1]
        kw: dict[str, Any] = {}
        if draw(st.booleans()):
            kw["range_start"] = str(hosts[draw(st.integers(0, len(hosts) // 2))])
        if draw(st.booleans()):
            kw["range_end"] = str(hosts[draw(st.integers(len(hosts) // 2, len(hosts) - 1))])
        if draw(st.booleans()):
            first = draw(st.integers(0, len(hosts) - 4))
            kw["exclude"] = [f"{hosts[first]}/30", str(hosts[-1])]
        if draw(st.booleans()):
            kw["gateway"] = str(hosts[0])
        nad = ("default", f"net-{i}")
        b.whereabouts_nad(*nad, str(net), **kw)
        nads.append(nad)
    for j in range(draw(st.integers(0, 12))):
        nad = nads[j % len(nads)]
        tracked = draw(st.integers(0, 5)) > 0
        try:  # one attachment: the builder raises before it records anything
            b.pod("default", f"app-{j}", "node-0", [nad], allocate=tracked, reserve=tracked)
        except PoolExhausted:  # a full range: a full pool is a case too
            continue
    return b


@pytest.mark.django_db
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(builder=generated_cluster())
def test_every_surface_agrees_on_generated_clusters(
    simcluster, viewer_client, capsys, settings, builder
):
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    Cluster.objects.all().delete()
    simcluster.reset()
    simcluster.seed(builder.objects())
    cluster = Cluster.objects.create(name="gen", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    assert assert_every_surface_agrees(viewer_client, capsys, settings, cluster) >= 1
    # Next free never offers a live pod's address unflagged: the truth is every running
    # pod's network-status in the simulated cluster, per NAD (each NAD has its own range).
    nad_range = {
        f"{n['metadata']['namespace']}/{n['metadata']['name']}": json.loads(n["spec"]["config"])[
            "ipam"
        ]["range"]
        for n in simcluster.list("network-attachment-definitions")
    }
    listed: dict[str, dict[str, str]] = {}
    for pod in simcluster.list("pods"):
        annotations = pod["metadata"].get("annotations", {})
        for entry in json.loads(annotations.get("k8s.v1.cni.cncf.io/network-status", "[]")):
            if entry.get("name") in nad_range:
                podref = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
                for ip in entry.get("ips", []):
                    listed.setdefault(nad_range[entry["name"]], {})[ip] = podref
    for pool in IPPool.objects.filter(cluster=cluster):
        free = viewer_client.get(f"/api/v1/pools/{pool.pk}/free/?count=256").json()
        holders = listed.get(pool.range, {})
        expected = {ip: holders[ip] for ip in free["addresses"] if ip in holders}
        assert free["held_by"] == expected, pool.range


# ---------------------------------------------------------------- next free


@pytest.mark.django_db
def test_next_free_flags_the_address_a_live_pod_holds(simcluster, viewer_client, no_grace):
    simcluster.load("demo", seed=1)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    leaks_detect(cluster=cluster)
    untracked = [f for f in simcluster.ground_truth["findings"] if f["kind"] == "untracked_address"]
    assert untracked
    checked = 0
    for planted in untracked:
        finding = Finding.objects.get(cluster=cluster, kind="untracked_address", ip=planted["ip"])
        pool, holder = finding.pool, finding.podref
        api = viewer_client.get(f"/api/v1/pools/{pool.pk}/free/?count=256").json()
        offered = set(api["addresses"]) | {a for r in api["ranges"] for a in r["addresses"]}
        if planted["ip"] not in offered:
            continue  # whereabouts would not hand it out (an allocation below it is free)
        checked += 1
        assert api["held_by"][planted["ip"]] == holder
        page = viewer_client.get(f"/pools/{pool.pk}/?free=1").content.decode()
        flagged = {c.text: c["data-held-by"] for c in select(page, "#pool-free code.held")}
        assert flagged[planted["ip"]] == holder
        warning = text(select_one(page, "#pool-next-held"))
        assert f"{planted['ip']}: whereabouts will hand this out next, but pod {holder}" in warning
        blocks = select(page, "#pool-free-blocks td code")
        assert planted["ip"] not in {b.text for b in blocks}
        # Every other offered address is free indeed: no live pod lists it.
        assert set(api["held_by"]) == {planted["ip"]}
    assert checked  # the demo's 10.30.0.71 is first in line


# ---------------------------------------------------------------- big numbers


@pytest.mark.django_db
def test_a_64_pool_is_exact_in_the_api_and_readable_on_the_page(simcluster, viewer_client):
    b = ClusterBuilder(seed=5, events=False)
    b.namespace("default")
    b.namespace("kube-system")
    b.node("node-0")
    v6 = ("default", "v6")
    b.whereabouts_nad(*v6, "fd00:64::/64")
    for i in range(21):
        b.pod("default", f"app-{i}", "node-0", [v6])
    simcluster.seed(b.objects())
    cluster = Cluster.objects.create(name="big", kubeconfig=simcluster.kubeconfig)
    cluster_sync_full(cluster=cluster)
    pool = IPPool.objects.get(cluster=cluster, range="fd00:64::/64")

    api = viewer_client.get(f"/api/v1/pools/{pool.pk}/").json()
    assert (api["usable"], api["allocated"], api["free"]) == (2**63 - 1, 21, 2**63 - 1 - 21)
    assert api["free"] <= api["usable"]

    page = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    usable, free = select_one(page, "#pool-usable"), select_one(page, "#pool-free-count")
    assert text(usable) == "2^63−1"
    assert text(free) == "9.2 × 10^18"
    assert select_one(free, "span.bignum")["title"] == f"{2**63 - 1 - 21:,}"  # exact on hover
    assert int(free["data-value"]) <= int(usable["data-value"])

    listed = viewer_client.get("/pools/").content.decode()
    assert text(select_one(listed, f"#pool-{pool.pk} td.pool-usable")) == "2^63−1"


# ---------------------------------------------------------------- nodes


@pytest.mark.django_db
def test_node_pages_split_whereabouts_from_other_ipam(simcluster, viewer_client):
    simcluster.load("demo", seed=1)
    cluster = Cluster.objects.create(name="sim", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)
    # The truth from the simulated cluster: each pod's network-status per NAD IPAM type.
    ipam = {}
    for nad in simcluster.list("network-attachment-definitions"):
        try:
            config = json.loads(nad["spec"].get("config") or "{}")
        except ValueError:  # the demo's broken config: no IPAM at all
            config = {}
        plugins = config.get("plugins") or [config]
        kinds = [(p.get("ipam") or {}).get("type") for p in plugins]
        ipam[f"{nad['metadata']['namespace']}/{nad['metadata']['name']}"] = "whereabouts" in kinds
    expected: dict[str, list[int]] = {}
    for pod in simcluster.list("pods"):
        node = pod["spec"].get("nodeName")
        if not node or pod.get("status", {}).get("phase") is None:
            continue
        # Multus' older annotation name is the fallback, as the sync reads it.
        annotations = pod["metadata"].get("annotations", {})
        status = json.loads(
            annotations.get("k8s.v1.cni.cncf.io/network-status")
            or annotations.get("k8s.v1.cni.cncf.io/networks-status", "[]")
        )
        for entry in status:
            if entry.get("default"):
                continue
            counts = expected.setdefault(node, [0, 0])
            counts[0 if ipam.get(entry.get("name", ""), False) else 1] += len(entry.get("ips", []))
    split_nodes = [n for n, (wb, other) in expected.items() if wb and other]
    assert split_nodes  # the demo mixes whereabouts with host-local, flannel and SR-IOV

    listed = viewer_client.get("/nodes/").content.decode()
    for name, (wb, other) in expected.items():
        node = Node.objects.get(cluster=cluster, name=name)
        cell = select_one(listed, f"#node-{node.pk} td.addresses-held")
        assert (int(cell["data-whereabouts"]), int(cell["data-other"])) == (wb, other)
        assert f"{wb} whereabouts · {other} other IPAM" in text(cell)
        page = viewer_client.get(f"/nodes/{node.pk}/").content.decode()
        split = select_one(page, "#node-address-split")
        assert (int(split["data-whereabouts"]), int(split["data-other"])) == (wb, other)
        assert f"{wb} whereabouts allocations" in text(split)
        if other:
            assert "from other IPAM (" in text(split)


# ---------------------------------------------------------------- alert text


@pytest.mark.django_db
def test_a_pool_alert_says_the_pools_numbers_now_not_at_opening(viewer_client):
    from ippam.leaks import alerts_refresh
    from tests.factories import make_cluster, make_pool

    cluster = make_cluster("c")
    pool = make_pool(cluster, "192.168.20.0/24", usable=91, allocated=82)
    alerts_refresh(cluster=cluster)
    alert = Alert.objects.get(cluster=cluster, kind=Alert.Kind.POOL_THRESHOLD)
    assert "90% full (82 of 91 addresses)" in alert.message
    # The watcher applies two more allocations; detection (and so the stored message)
    # runs only after the next full sync.
    IPPool.objects.filter(pk=pool.pk).update(allocated=84, utilization=84 / 91)

    row = "92% full (84 of 91 addresses)"
    overview = viewer_client.get("/").content.decode()
    assert row in text(select_one(overview, "#overview-alerts"))
    assert "82 of 91" not in overview
    alerts_page = viewer_client.get("/alerts/").content.decode()
    assert row in text(alerts_page) and "82 of 91" not in alerts_page
    api = viewer_client.get(f"/api/v1/alerts/{alert.pk}/").json()
    assert row in api["message"]
    # A resolved alert keeps the words it had.
    Alert.objects.filter(pk=alert.pk).update(
        state=Alert.State.RESOLVED, resolved_at=alert.opened_at
    )
    api = viewer_client.get(f"/api/v1/alerts/{alert.pk}/").json()
    assert "(82 of 91 addresses)" in api["message"]


@pytest.mark.django_db
def test_an_allocation_the_config_no_longer_hands_out_is_allocated_and_said(viewer_client):
    from tests.factories import make_allocation, make_demo, pool_recount

    pool = make_demo()["pools"][0]  # 10.10.0.0/24 from .10, excluding 10.10.0.100/30
    make_allocation(pool, "10.10.0.101")  # allocated before the exclude was added
    pool = pool_recount(pool)
    header, legend = _page_numbers(viewer_client, pool)
    numbers = pool.numbers
    assert header == (numbers.usable, numbers.allocated, numbers.free)
    assert legend == header  # the stray allocation is drawn allocated, and said
    page = viewer_client.get(f"/pools/{pool.pk}/").content.decode()
    cell = select_one(page, '#pool-map [data-ip="10.10.0.101"]')
    assert {"allocated", "excluded"} <= cell.classes
    assert "1 allocation lies on addresses the config no longer hands out" in text(
        select_one(page, "#pool-map-legend-note")
    )
