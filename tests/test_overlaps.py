"""Overlap verdicts (issue 13): one verdict for the leak rule and the NAD form; a hazard when
the scopes differ, or when they are the same and either side keeps no reservations; never
across address families."""

from __future__ import annotations

import pytest

from dashboard.forms.nad import NADForm
from ippam.leaks import leaks_detect
from ippam.models import Finding
from ippam.nads import nad_range_overlaps
from ippam.overlaps import OverlapSide, overlap_verdict
from tests.leak_factories import Rows

K = Finding.Kind


def side(label: str, network: str = "", reservations: bool = True, pool: str = "") -> OverlapSide:
    return OverlapSide(label, network, reservations, pool or f"pool-{label}")


# --- the verdict (pure) --------------------------------------------------------------------


def test_different_scopes_are_a_hazard_and_say_what_to_change():
    verdict = overlap_verdict(side("A", "red"), side("B", "blue"))
    assert verdict.hazard
    assert "different network_name scopes" in verdict.cause
    assert "same network_name or disjoint ranges" in verdict.fix


def test_same_scope_with_reservations_off_on_one_side_names_that_side():
    verdict = overlap_verdict(side("A"), side("B", reservations=False))
    assert verdict.hazard
    assert "but B sets enable_overlapping_ranges: false" in verdict.cause
    assert "set enable_overlapping_ranges: true on B" in verdict.fix


def test_same_scope_with_reservations_on_both_sides_is_only_a_note():
    verdict = overlap_verdict(side("A", "n"), side("B", "n"))
    assert not verdict.hazard and verdict.fix == ""
    assert "checks the reservation" in verdict.cause


def test_one_pool_shared_is_safe_even_without_reservations():
    verdict = overlap_verdict(
        side("A", reservations=False, pool="p"), side("B", reservations=False, pool="p")
    )
    assert not verdict.hazard and verdict.shared_pool


# --- the rule --------------------------------------------------------------------------------


@pytest.fixture
def rows(db) -> Rows:
    return Rows()


@pytest.fixture
def no_grace(settings) -> None:
    settings.IPPAM_LEAK_GRACE_SECONDS = 0


def overlap_findings(rows: Rows) -> list[Finding]:
    return list(
        Finding.objects.filter(cluster=rows.cluster, kind=K.OVERLAPPING_RANGE).order_by("identity")
    )


def test_rule_same_scope_one_side_without_reservations(rows, no_grace):
    rows.nad("default/keeps", "10.40.0.0/16")
    rows.nad("default/skips", "10.40.8.0/24", overlapping=False)
    rows.nad("default/also-keeps", "10.40.9.0/24")  # both keep reservations with /16: safe
    leaks_detect(cluster=rows.cluster)
    (finding,) = overlap_findings(rows)
    assert finding.details["nads"] == ["default/keeps", "default/skips"]
    assert finding.details["cause"] == "reservations off"
    assert "NAD default/skips (10.40.8.0/24) sets enable_overlapping_ranges: false" in (
        finding.reason
    )


def test_rule_never_compares_families(rows, no_grace):
    # ::/64 spans every IPv4 address's key (mapped into ::ffff:0:0/96), yet shares no address.
    rows.nad("default/v6", "::/64", network_name="six")
    rows.nad("default/v4", "10.41.0.0/24", network_name="four")
    rows.nad("default/v6-other", "::/80", network_name="other")
    leaks_detect(cluster=rows.cluster)
    (finding,) = overlap_findings(rows)
    assert finding.details["nads"] == ["default/v6", "default/v6-other"]


# --- the form uses the same verdict ----------------------------------------------------------


def form_data(cluster, **over) -> dict:
    data = {
        "cluster": str(cluster.pk),
        "namespace": "default",
        "name": "new-net",
        "cni_version": "0.3.1",
        "cni_type": "macvlan",
        "macvlan_master": "eth1",
        "macvlan_mode": "bridge",
        "ipam_type": "whereabouts",
        "wb_range": "10.40.8.0/24",
        "wb_enable_overlapping_ranges": "on",
    }
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


def test_form_warns_when_the_proposed_range_disables_reservations(rows):
    rows.nad("default/keeps", "10.40.0.0/16")
    form = NADForm(form_data(rows.cluster, wb_enable_overlapping_ranges=None))
    assert form.is_valid(), form.errors
    (message,) = form.warnings["wb_range"]
    assert "this range (10.40.8.0/24) sets enable_overlapping_ranges: false" in message
    assert not message.startswith("Note:")


def test_form_note_only_when_both_keep_reservations(rows):
    rows.nad("default/keeps", "10.40.0.0/16")
    form = NADForm(form_data(rows.cluster))
    assert form.is_valid(), form.errors
    (message,) = form.warnings["wb_range"]
    assert message.startswith("Note:")


def test_form_and_rule_agree(rows, no_grace):
    rows.nad("default/red", "10.40.0.0/16", network_name="red")
    (overlap,) = nad_range_overlaps(
        cluster=rows.cluster, range_cidr="10.40.8.0/24", network_name="blue"
    )
    rows.nad("default/blue", "10.40.8.0/24", network_name="blue")
    leaks_detect(cluster=rows.cluster)
    (finding,) = overlap_findings(rows)
    assert overlap.hazard and finding.details["cause"] == "scope"
    assert overlap.verdict.fix in finding.reason


def test_form_never_warns_across_families(rows):
    rows.nad("default/v4", "10.40.0.0/16")
    rows.pool("10.42.0.0/24")
    assert nad_range_overlaps(cluster=rows.cluster, range_cidr="::/64", network_name="") == []
    rows.nad("default/v6", "fd00::/64")
    (overlap,) = nad_range_overlaps(cluster=rows.cluster, range_cidr="fd00::/48", network_name="")
    assert overlap.what == "NAD default/v6"
