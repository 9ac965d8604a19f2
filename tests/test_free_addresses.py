"""The next free addresses in whereabouts' order (pkg/allocate IterateForAssignment: from the
first usable address up, skipping allocated, excluded and reserved ones, never wrapping) and
a pool's largest free blocks."""

from __future__ import annotations

import pytest
from netaddr import IPAddress, IPNetwork

from ippam.freeaddrs import free_blocks, largest_free_blocks, next_free
from ippam.ranges import range_usable
from ippam.selectors.free_addresses import MAX_FREE_COUNT, pool_free_addresses, pool_free_summary
from tests.factories import make_allocation, make_cluster, make_nad, make_orip, make_pool


def ip(text: str) -> int:
    return int(IPAddress(text))


def texts(addresses: list) -> list[str]:
    return [str(a) for a in addresses]


# --- pure ----------------------------------------------------------------------------------


def test_free_blocks_split_around_taken_addresses_and_ignore_strays():
    blocks = [(10, 20), (30, 35)]
    assert list(free_blocks(blocks, [5, 10, 10, 12, 20, 31, 99])) == [
        (11, 11),
        (13, 19),
        (30, 30),
        (32, 35),
    ]


def test_next_free_reads_the_taken_stream_only_as_far_as_it_needs():
    consumed = []

    def taken():
        for i in range(1, 10**9):  # a lazy cursor: next_free must not drain it
            consumed.append(i)
            yield i * 2

    assert next_free([(1, 10**9)], taken(), 3) == [1, 3, 5]
    assert len(consumed) <= 4


def test_next_free_jumps_a_whole_excluded_half_of_a_slash_16():
    usable = range_usable(IPNetwork("10.1.0.0/16"), exclude=["10.1.0.0/17"])
    taken = range(ip("10.1.128.0"), ip("10.1.128.0") + 1000)
    got = next_free(usable.free_blocks(), taken, 2)
    assert [str(IPAddress(i)) for i in got] == ["10.1.131.232", "10.1.131.233"]


def test_largest_free_blocks_come_largest_first_then_lowest():
    blocks = [(0, 100)]
    taken = [10, 20, 50, 51]  # free: 0-9 (10), 11-19 (9), 21-49 (29), 52-100 (49)
    assert largest_free_blocks(blocks, taken, 3) == [(52, 100), (21, 49), (0, 9)]


# --- a pool, through the selector ------------------------------------------------------------


@pytest.mark.django_db
def test_order_starts_at_range_start_skips_allocated_excluded_and_reserved_ipv4():
    cluster = make_cluster()
    nad = make_nad(
        cluster,
        range="10.0.0.0/24",
        range_start="10.0.0.10",
        exclude=["10.0.0.12/30", "10.0.0.20"],
    )
    pool = make_pool(cluster, "10.0.0.0/24", nads=[nad])
    make_allocation(pool, "10.0.0.2")  # below range_start: irrelevant
    make_allocation(pool, "10.0.0.10")
    make_orip(cluster, "10.0.0.11", podref="default/elsewhere")  # same (default) scope
    make_orip(cluster, "10.0.0.17", podref="default/other", network_name="blue")  # other scope
    free = pool_free_addresses(pool=pool, count=6)
    # 12-15 excluded (/30), 20 excluded; 17's reservation is another network_name's.
    assert texts(free.addresses) == [
        "10.0.0.16",
        "10.0.0.17",
        "10.0.0.18",
        "10.0.0.19",
        "10.0.0.21",
        "10.0.0.22",
    ]
    assert free.reason == ""


@pytest.mark.django_db
def test_order_ipv6_with_range_start_exclude_and_reservation():
    cluster = make_cluster()
    nad = make_nad(
        cluster,
        range="fd00:10::/64",
        range_start="fd00:10::100",
        exclude=["fd00:10::100/126"],
        network_name="v6net",
    )
    pool = make_pool(cluster, "fd00:10::/64", network_name="v6net", nads=[nad])
    make_allocation(pool, "fd00:10::104")
    make_orip(cluster, "fd00:10::105", podref="default/x", network_name="v6net")
    free = pool_free_addresses(pool=pool, count=3)
    assert texts(free.addresses) == ["fd00:10::106", "fd00:10::107", "fd00:10::108"]


@pytest.mark.django_db
def test_range_end_is_respected_and_nothing_wraps():
    cluster = make_cluster()
    nad = make_nad(cluster, range="10.0.1.0/24", range_start="10.0.1.250", range_end="10.0.1.252")
    pool = make_pool(cluster, "10.0.1.0/24", nads=[nad])
    make_allocation(pool, "10.0.1.251")
    free = pool_free_addresses(pool=pool, count=5)
    assert texts(free.addresses) == ["10.0.1.250", "10.0.1.252"]
    assert "only 2" in free.reason


@pytest.mark.django_db
def test_an_exclude_whereabouts_cannot_parse_gives_nothing_and_says_why():
    cluster = make_cluster()
    nad = make_nad(cluster, range="10.0.2.0/24", exclude=["10.0.2.0/33"])
    pool = make_pool(cluster, "10.0.2.0/24", nads=[nad])
    free = pool_free_addresses(pool=pool, count=3)
    assert free.addresses == []
    assert "exclude" in free.reason and "10.0.2.0/33" in free.reason


@pytest.mark.django_db
def test_nads_that_disagree_get_one_list_each_and_no_pool_wide_promise():
    cluster = make_cluster()
    a = make_nad(cluster, "a", range="10.0.3.0/24")
    b = make_nad(cluster, "b", range="10.0.3.0/24", exclude=["10.0.3.0/28"])
    pool = make_pool(cluster, "10.0.3.0/24", nads=[a, b])
    make_allocation(pool, "10.0.3.1")
    free = pool_free_addresses(pool=pool, count=2)
    assert free.addresses == [] and "depends on the NAD" in free.reason
    assert {r.nad: texts(r.addresses) for r in free.ranges} == {
        "default/a": ["10.0.3.2", "10.0.3.3"],
        "default/b": ["10.0.3.16", "10.0.3.17"],
    }


@pytest.mark.django_db
def test_a_pool_no_nad_feeds_walks_its_bare_range_and_count_is_capped():
    cluster = make_cluster()
    pool = make_pool(cluster, "10.0.4.0/22")
    make_allocation(pool, "10.0.4.1")
    free = pool_free_addresses(pool=pool, count=10_000)
    assert free.count == MAX_FREE_COUNT and len(free.addresses) == MAX_FREE_COUNT
    assert str(free.addresses[0]) == "10.0.4.2"


@pytest.mark.django_db
def test_free_blocks_largest_first_minus_allocations_and_reservations():
    cluster = make_cluster()
    nad = make_nad(cluster, range="10.0.5.0/24", exclude=["10.0.5.128/25"])
    pool = make_pool(cluster, "10.0.5.0/24", nads=[nad])
    make_allocation(pool, "10.0.5.10")
    make_orip(cluster, "10.0.5.100", podref="default/p")
    free, blocks = pool_free_summary(pool=pool, count=2, top=10)
    assert [str(a) for a in free.addresses] == ["10.0.5.1", "10.0.5.2"]
    assert [(str(b.first), str(b.last), b.size) for b in blocks] == [
        ("10.0.5.11", "10.0.5.99", 89),
        ("10.0.5.101", "10.0.5.127", 27),
        ("10.0.5.1", "10.0.5.9", 9),
    ]


@pytest.mark.django_db
def test_the_pool_page_shows_the_next_free_addresses_and_the_free_blocks(viewer_client):
    from tests.html import select, select_one, text

    cluster = make_cluster()
    nad = make_nad(cluster, range="10.0.6.0/24", range_start="10.0.6.20")
    pool = make_pool(cluster, "10.0.6.0/24", nads=[nad])
    make_allocation(pool, "10.0.6.20")
    # The page defers the region (it reads every taken address): htmx fetches it on load,
    # and ?free=1 renders it inline without JavaScript.
    page = viewer_client.get(f"/pools/{pool.pk}/").content
    region = select_one(page, "#pool-free")
    assert region.attrs["hx-trigger"] == "load" and not select(page, "#pool-next-free")
    fragment = viewer_client.get(
        f"/pools/{pool.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="pool-free"
    ).content
    inline = viewer_client.get(f"/pools/{pool.pk}/?free=1").content
    for html in (fragment, inline):
        assert text(select_one(html, "#pool-next-free")).startswith("10.0.6.21, 10.0.6.22")
        first_block = select(html, "#pool-free-blocks tbody tr")[0]
        assert [text(td) for td in select(first_block, "td")] == ["10.0.6.21 – 10.0.6.254", "234"]
    assert b"<html" not in fragment and not select(fragment, "#pool-map")
