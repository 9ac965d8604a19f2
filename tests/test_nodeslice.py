"""Node-slice mode (whereabouts >= 0.9): the pure model of ippam.nodeslice, then a real sync
of simcluster's `nodeslice` scenario (pools mapped to node and slice, per-slice usable,
the three node-slice findings, the NAD and node pages)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPNetwork

from ippam.models import Cluster, Finding, IPPool, NADRange, NetworkAttachmentDefinition, Node
from ippam.nodeslice import (
    SliceNetwork,
    check_slices,
    divide_range,
    map_pool,
    pool_name_for,
    slice_usable,
    slices_usable_total,
)
from ippam.ranges import range_usable
from ippam.sync import cluster_sync_full
from tests.html import select, select_one, text

# --- pure -------------------------------------------------------------------------------


def test_slices_are_contiguous_ascending_from_the_network_address():
    plan = divide_range("10.0.0.0/24", "/26")
    assert [str(s) for s in plan.slices()] == [
        "10.0.0.0/26",
        "10.0.0.64/26",
        "10.0.0.128/26",
        "10.0.0.192/26",
    ]
    # DivideRangeBySize trims one leading "/" only; the size itself may be bare.
    assert divide_range("10.0.0.0/24", "26").count == 4
    assert divide_range("10.0.0.0/24", "/24").count == 1
    # the config loader rewrites the range to its network first (pkg/config ipNet.String())
    assert divide_range("10.0.0.5/24", "/26").slices(1) == [IPNetwork("10.0.0.0/26")]


@pytest.mark.parametrize(
    ("cidr", "size", "why"),
    [
        ("10.0.0.0/24", "/x", "not a number"),  # whereabouts returns no slices at all
        ("10.0.0.0/24", "//26", "not a number"),
        ("10.0.0.0/24", "/22", "larger than the range"),
        ("fd00::/64", "/80", "IPv4 ranges only"),  # ip2int(ip.To4()) cannot take IPv6
    ],
)
def test_ranges_the_controller_refuses_give_no_slices(cidr, size, why):
    plan = divide_range(cidr, size)
    assert plan.count == 0 and plan.slices() == [] and why in plan.error
    assert slices_usable_total(plan) == 0


@pytest.mark.parametrize("prefix", range(24, 33))
def test_each_slice_loses_its_own_network_and_broadcast_address(prefix):
    whole = IPNetwork("10.0.0.0/24")
    plan = divide_range(str(whole), f"/{prefix}")
    for s in plan.slices():
        usable = slice_usable(whole, s)
        # whereabouts: range_start = FirstUsableIP(slice), range_end = LastUsableIP(slice)
        # over the whole range, so exactly the slice as its own range.
        assert usable.count == range_usable(s).count == max(s.size - 2, 0)
        if usable.count:
            assert (usable.first, usable.last) == (s.first + 1, s.last - 1)
    assert slices_usable_total(plan) == plan.count * max(2 ** (32 - prefix) - 2, 0)


def test_slicing_costs_two_addresses_per_slice_and_drops_excludes():
    whole = IPNetwork("10.0.0.0/24")
    # Outside node-slice mode the exclude would remove 15 more; in it, nothing is excluded.
    assert range_usable(whole, exclude=["10.0.0.0/28"]).count == 254 - 15
    assert slices_usable_total(divide_range("10.0.0.0/24", "/27")) == 8 * 30
    assert slice_usable(whole, IPNetwork("10.0.0.0/28")).excluded == ()


def test_pool_names_and_mapping_back_to_node_and_slice():
    assert pool_name_for("10.0.4.0/22", "worker-1", "net1") == "net1-worker-1-10.0.4.0-22"
    assert pool_name_for("10.0.4.0/22", "worker-1") == "worker-1-10.0.4.0-22"
    named = SliceNetwork("net1", "net1", "10.0.0.0/16", "/22", (("worker-1", "10.0.4.0/22"),))
    unnamed = SliceNetwork("cfg", "", "10.1.0.0/16", "22", (("", "10.1.4.0/22"),))
    hit = map_pool("net1-worker-1-10.0.4.0-22", "10.0.4.0/22", [named, unnamed])
    assert hit is not None
    assert (hit.network, hit.network_name, hit.node_name, hit.assigned) == (
        "net1",
        "net1",
        "worker-1",
        True,
    )
    # a node that left: its pool maps by name, no longer assigned
    gone = map_pool("net1-old-node-10.0.8.0-22", "10.0.8.0/22", [named])
    assert gone is not None and (gone.node_name, gone.assigned) == ("old-node", False)
    hit = map_pool("my-node-10.1.4.0-22", "10.1.4.0/22", [named, unnamed])
    assert hit is not None and (hit.network, hit.node_name) == ("cfg", "my-node")
    # not a slice of either network (wrong size, outside, no node part)
    assert map_pool("net1-w-10.0.4.0-24", "10.0.4.0/24", [named]) is None
    assert map_pool("net1-w-10.9.4.0-22", "10.9.4.0/22", [named]) is None
    assert map_pool("10.0.4.0-22", "10.0.4.0/22", [named]) is None


# --- odd slices: problems, never counted (pure) ---------------------------------------------

_GRID = [
    ("w0", "10.0.0.0/26"),
    ("w1", "10.0.0.64/26"),
    ("", "10.0.0.128/26"),
    ("w3", "10.0.0.192/26"),
]


def test_the_controllers_own_slices_are_all_counted():
    check = check_slices("10.0.0.0/24", "/26", _GRID)
    assert check.counted == tuple(_GRID) and check.odd == () and check.problems == ()
    assert check.free == 1


@pytest.mark.parametrize(
    ("odd_entry", "why"),
    [
        (("w9", "10.0.0.0/25"), "overlaps 10.0.0.0/26 (node w0)"),  # over w0's and w1's
        (("w9", "10.9.0.0/26"), "outside the range 10.0.0.0/24"),
        (("w9", "10.0.0.192/26"), "listed twice (node w3)"),
        (("w9", "fd00::/122"), "an IPv6 slice of an IPv4 range"),
        (("w9", "10.0.0.x/26"), "not a CIDR"),
        (("w9", "10.0.1.0/25"), "outside the range"),
    ],
)
def test_an_odd_slice_is_a_problem_and_not_counted(odd_entry, why):
    check = check_slices("10.0.0.0/24", "/26", [*_GRID, odd_entry])
    odd = dict(check.odd)
    assert why in odd[len(_GRID)]
    assert odd_entry not in check.counted
    assert any(odd_entry[1] in p and why in p for p in check.problems)
    # whatever it overlaps is not counted either: two nodes would hand out the same addresses
    if "x" not in odd_entry[1]:
        wide = IPNetwork(odd_entry[1])
        for i, entry in enumerate(_GRID):
            mine = IPNetwork(entry[1])
            if mine.version == wide.version and mine.first <= wide.last and wide.first <= mine.last:
                assert i in odd and entry not in check.counted


def test_a_node_with_two_slices_uses_its_first_and_the_second_is_not_counted():
    listing = [("w0", "10.0.0.0/26"), ("w1", "10.0.0.64/26"), ("w0", "10.0.0.128/26")]
    check = check_slices("10.0.0.0/24", "/26", listing)
    assert check.counted == (("w0", "10.0.0.0/26"), ("w1", "10.0.0.64/26"))
    assert "node w0 holds 10.0.0.0/26 already" in check.reason(2)
    assert "GetNodeSlicePoolRange" in check.reason(2) and check.free == 0


def test_a_slice_off_the_controllers_grid_is_not_counted():
    check = check_slices("10.0.0.0/24", "/26", [("w0", "10.0.0.0/26"), ("", "10.0.0.96/27")])
    assert check.counted == (("w0", "10.0.0.0/26"),)
    assert "not one of the /26 slices" in check.reason(1)


@pytest.mark.parametrize("size", ["/0", "/8", "/23", "x", "", "/33", "//26", "/-1"])
def test_an_unusable_slice_size_counts_no_slice(size):
    check = check_slices("10.0.0.0/24", size, _GRID)
    assert check.counted == () and check.free == 0 and len(check.odd) == len(_GRID)
    assert len(check.problems) == 1 and "is unusable" in check.problems[0]
    assert "none of the listed is counted" in check.problems[0]


_cidrs = st.one_of(
    st.builds(
        lambda a, p: str(IPNetwork(f"10.0.{a}.0/{p}").cidr),
        st.integers(0, 2),
        st.integers(22, 28),
    ),
    st.sampled_from(["fd00::/120", "bogus", "10.0.0.0/33", "10.0.0.0/26"]),
)


@settings(max_examples=300, deadline=None)
@given(
    size=st.sampled_from(["/24", "/25", "/26", "/27", "/0", "x"]),
    listing=st.lists(st.tuples(st.sampled_from(["", "a", "b", "c", "d"]), _cidrs), max_size=12),
)
def test_counted_slices_are_disjoint_on_the_grid_and_one_per_node(size, listing):
    check = check_slices("10.0.0.0/24", size, listing)
    odd = dict(check.odd)
    assert len(odd) + len(check.counted) == len(listing)
    assert check.counted == tuple(a for i, a in enumerate(listing) if i not in odd)
    grid = {str(s) for s in check.plan.slices()}
    nets = [IPNetwork(cidr) for _, cidr in check.counted]
    assert all(str(n) in grid for n in nets)
    assert all(a.last < b.first or b.last < a.first for i, a in enumerate(nets) for b in nets[:i])
    nodes = [node for node, _ in check.counted if node]
    assert len(nodes) == len(set(nodes))
    assert check.free == sum(1 for node, _ in check.counted if not node)


# --- a real sync of the nodeslice scenario ----------------------------------------------


@pytest.fixture
def synced(simcluster, settings) -> tuple[Cluster, dict]:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0
    simcluster.load("nodeslice", seed=1)
    cluster = Cluster.objects.create(name="ns", kubeconfig=simcluster.kubeconfig, simulated=True)
    cluster_sync_full(cluster=cluster)  # leak detection runs after it
    return cluster, simcluster.ground_truth


@pytest.mark.django_db
def test_pools_are_mapped_to_node_and_slice_and_count_slice_usable(synced):
    cluster, truth = synced
    pools = {p.name: p for p in IPPool.objects.filter(cluster=cluster).order_by("name")}
    got = {n: (p.network_name, p.node_name, p.slice_range) for n, p in pools.items()}
    assert got == {
        "fastnet-ns-w0-10.20.0.0-27": ("fastnet", "ns-w0", "10.20.0.0/27"),
        "fastnet-ns-w1-10.20.0.32-27": ("fastnet", "ns-w1", "10.20.0.32/27"),  # node left
        "fastnet-ns-w2-10.20.0.64-27": ("fastnet", "ns-w2", "10.20.0.64/27"),
        "fastnet-ns-w3-10.20.0.32-27": ("fastnet", "ns-w3", "10.20.0.32/27"),  # freed slice
        "fastnet-ns-w4-10.20.0.96-27": ("fastnet", "ns-w4", "10.20.0.96/27"),
        "ns-w0-10.21.0.0-28": ("", "ns-w0", "10.21.0.0/28"),
        "ns-w1-10.21.0.16-28": ("", "ns-w1", "10.21.0.16/28"),
        "ns-w3-10.21.0.16-28": ("", "ns-w3", "10.21.0.16/28"),
    }
    for name, pool in pools.items():
        expected = truth["pools"][f"kube-system/{name}"]
        assert (int(pool.usable), pool.allocated) == (expected["usable"], expected["allocated"])
    assert {int(p.usable) for p in pools.values()} == {30, 14}
    # The NAD's range counts every slice, each less its own network and broadcast address,
    # and ignores its exclude (10.20.0.0/28), as whereabouts does in node-slice mode.
    nad_usable = dict(NADRange.objects.filter(cluster=cluster).values_list("nad__name", "usable"))
    assert {k: int(v) for k, v in nad_usable.items()} == {"fast-net": 8 * 30, "tiny-net": 2 * 14}


def _matches(finding: Finding, expected: dict) -> bool:
    if finding.kind != expected["kind"]:
        return False
    if expected.get("ip"):
        return str(finding.ip) == expected["ip"]
    if "node" in expected and finding.node_name != expected["node"]:
        return False
    return finding.details.get("network") == expected["network"]


@pytest.mark.django_db
def test_node_slice_findings_are_exactly_the_planted_ones(synced):
    cluster, truth = synced
    found = list(Finding.objects.filter(cluster=cluster))
    for expected in truth["findings"]:
        assert any(_matches(f, expected) for f in found), (expected, [f.reason for f in found])
    assert [f.reason for f in found if not any(_matches(f, t) for t in truth["findings"])] == []
    stranded = Finding.objects.get(cluster=cluster, kind=Finding.Kind.SLICE_STRANDED)
    assert stranded.pool is not None and stranded.pool.name == "fastnet-ns-w4-10.20.0.96-27"
    assert "ns-w4" in stranded.reason and "2 allocations" in stranded.reason
    lonely = Finding.objects.get(cluster=cluster, kind=Finding.Kind.NODE_WITHOUT_SLICE)
    assert lonely.podref == "fast/tiny-w2" and "no allocated node slice" in lonely.reason
    assert "no slice is free" in lonely.reason.lower()
    full = Finding.objects.get(cluster=cluster, kind=Finding.Kind.SLICES_EXHAUSTED)
    assert full.nad is not None and full.nad.name == "tiny-net"


@pytest.mark.django_db
def test_nad_page_shows_each_slice_its_node_and_free_slices(synced, viewer_client):
    cluster, _ = synced
    fast = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="fast-net")
    page = viewer_client.get(f"/nads/{fast.pk}/").content
    section = select_one(page, "#nad-node-slices")
    rows = select(section, "table.node-slices tbody tr")
    assert len(rows) == 8
    assert len(select(section, "tr.free")) == 4 and len(select(section, "tr.gone")) == 1
    first = text(rows[0])
    assert "10.20.0.0/27" in first and "ns-w0" in first and "fastnet-ns-w0-10.20.0.0-27" in first
    assert "3" in first and "30" in first
    assert "node gone" in text(select_one(section, "tr.gone"))
    assert "fastnet-ns-w1-10.20.0.32-27" in text(select_one(section, "ul.leftover-pools"))
    assert select(section, ".slices-full") == []
    tiny = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="tiny-net")
    page = viewer_client.get(f"/nads/{tiny.pk}/").content
    assert select_one(page, "#nad-node-slices .slices-full")


@pytest.mark.django_db
def test_node_page_lists_its_slices_and_the_networks_it_has_none_of(synced, viewer_client):
    cluster, _ = synced
    w2 = Node.objects.get(cluster=cluster, name="ns-w2")
    section = select_one(viewer_client.get(f"/nodes/{w2.pk}/").content, "#node-slices")
    rows = {text(r).split(" ")[0]: text(r) for r in select(section, "tbody tr")}
    assert "10.20.0.64/27" in rows["fastnet"] and "fastnet-ns-w2-10.20.0.64-27" in rows["fastnet"]
    assert "no slice" in rows["tiny-net"]


@pytest.mark.django_db
def test_watch_events_map_new_pools_and_the_controller_freeing_a_stale_slice(synced, simcluster):
    from ippam.leaks import leaks_detect
    from ippam.sync.apply import objects_apply

    cluster, _ = synced
    nsp = simcluster.get("nodeslicepools", "kube-system", "fastnet")
    for a in nsp["status"]["allocations"]:
        if a["nodeName"] == "ns-w4":
            a["nodeName"] = ""  # the controller finally saw ns-w4 go (removeUnusedNodes)
        elif a["sliceRange"] == "10.20.0.128/27":
            a["nodeName"] = "ns-w5"
    nsp["metadata"]["resourceVersion"] = "999001"
    pool = {
        "apiVersion": "whereabouts.cni.cncf.io/v1alpha1",
        "kind": "IPPool",
        "metadata": {
            "name": "fastnet-ns-w5-10.20.0.128-27",
            "namespace": "kube-system",
            "uid": "0d7c4a52-4c8e-4c7e-9a59-5c1a1e2b9f01",
            "resourceVersion": "999002",
        },
        "spec": {"range": "10.20.0.128/27", "allocations": {"1": {"id": "c1", "podref": "fast/x"}}},
    }
    objects_apply(cluster_id=cluster.pk, kind="nodeslicepools", events=[("MODIFIED", nsp)])
    objects_apply(cluster_id=cluster.pk, kind="ippools", events=[("ADDED", pool)])
    new = IPPool.objects.get(cluster=cluster, name="fastnet-ns-w5-10.20.0.128-27")
    assert (new.network_name, new.node_name, new.slice_range) == (
        "fastnet",
        "ns-w5",
        "10.20.0.128/27",
    )
    assert (int(new.usable), new.allocated) == (30, 1)
    leaks_detect(cluster=cluster)
    # ns-w4's slice is free now; ns-w5 has no Node object yet, so its slice is the stranded one
    stranded = Finding.objects.filter(cluster=cluster, kind=Finding.Kind.SLICE_STRANDED)
    assert [f.node_name for f in stranded] == ["ns-w5"]


def _resync(cluster, simcluster, plural, obj):
    obj["metadata"].pop("resourceVersion", None)
    simcluster.replace(plural, obj)
    cluster_sync_full(cluster=cluster)  # leak detection runs after it


@pytest.mark.django_db
def test_odd_slices_are_problems_on_the_pages_and_never_counted(synced, simcluster, viewer_client):
    cluster, _ = synced
    fast = simcluster.get("nodeslicepools", "kube-system", "fastnet")
    before = len(fast["status"]["allocations"])
    fast["status"]["allocations"] += [
        # ns-w0's second slice, off the /27 grid, over two /27 slices of others
        {"nodeName": "ns-w0", "sliceRange": "10.20.0.128/26"},
        {"nodeName": "", "sliceRange": "fd00:20::/123"},  # another family
    ]
    _resync(cluster, simcluster, "nodeslicepools", fast)
    tiny = simcluster.get("nodeslicepools", "kube-system", "tiny-net")
    # Every real slice of tiny-net is taken; a "free" one outside the range frees nothing.
    tiny["status"]["allocations"].append({"nodeName": "", "sliceRange": "10.99.0.0/28"})
    _resync(cluster, simcluster, "nodeslicepools", tiny)

    nad = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="fast-net")
    section = select_one(viewer_client.get(f"/nads/{nad.pk}/").content, "#nad-node-slices")
    rows = select(section, "table.node-slices tbody tr")
    odd = {text(r).split(" ")[0] for r in select(section, "tr.odd")}
    assert len(rows) == before + 2
    assert odd == {"10.20.0.128/26", "10.20.0.128/27", "10.20.0.160/27", "fd00:20::/123"}
    problems = text(select_one(section, "ul.slice-problems"))
    assert "node ns-w0 holds 10.20.0.0/27 already" in problems
    assert "an IPv6 slice of an IPv4 range" in problems and "overlaps 10.20.0.128/26" in problems
    counts = text(select_one(section, ".slice-counts"))
    assert counts.startswith(f"{before - 2} (") and "4 more listed, not counted" in counts

    w0 = Node.objects.get(cluster=cluster, name="ns-w0")
    node_rows = select(viewer_client.get(f"/nodes/{w0.pk}/").content, "#node-slices tbody tr")
    second = [text(r) for r in node_rows if "10.20.0.128/26" in text(r)]
    assert len(second) == 1 and "not counted" in second[0] and "first slice only" in second[0]

    full = Finding.objects.get(cluster=cluster, kind=Finding.Kind.SLICES_EXHAUSTED)
    assert full.details["network"] == "tiny-net" and full.details["slices"] == 2
    assert full.details["not_counted"] == 1 and "not counted" in full.reason


@pytest.mark.django_db
def test_an_unusable_slice_size_counts_no_slice_and_says_so(synced, simcluster, viewer_client):
    cluster, _ = synced
    assert Finding.objects.filter(cluster=cluster, kind=Finding.Kind.SLICES_EXHAUSTED).exists()
    tiny = simcluster.get("nodeslicepools", "kube-system", "tiny-net")
    tiny["spec"]["sliceSize"] = "/0"  # every slice still listed and assigned
    _resync(cluster, simcluster, "nodeslicepools", tiny)
    # No "all slices taken": the listed entries are no slices of a /0 plan.
    assert not Finding.objects.filter(cluster=cluster, kind=Finding.Kind.SLICES_EXHAUSTED).exists()
    nad = NetworkAttachmentDefinition.objects.get(cluster=cluster, name="tiny-net")
    section = select_one(viewer_client.get(f"/nads/{nad.pk}/").content, "#nad-node-slices")
    assert "sliceSize '/0' is unusable" in text(select_one(section, "ul.slice-problems"))
    assert select(section, ".slices-full") == []
    assert len(select(section, "tr.odd")) == len(tiny["status"]["allocations"])
