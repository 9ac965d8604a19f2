"""ippam.locks on both backends (a Lease row without Redis, a Redis lock with it): one holder
at a time, freed on exit (also by an exception), and taken over once a dead holder's lock
expires, without the dead holder's late exit freeing the new holder's lock."""

from __future__ import annotations

import time

import pytest

from ippam.locks import cluster_sync_lock, lock
from ippam.models import Cluster, Lease

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = ""
    return request.param


def test_one_holder_at_a_time_and_released_on_exit(backend):
    with lock("job") as held:
        assert held
        with lock("job") as again:
            assert not again
        with lock("other job") as other:
            assert other
    with lock("job") as after:
        assert after


def test_an_exception_releases_the_lock(backend):
    with pytest.raises(RuntimeError), lock("job") as held:
        assert held
        raise RuntimeError("the task failed")
    with lock("job") as after:
        assert after


def _take_when_free(name: str) -> tuple[object, bool]:
    """Enter lock(name) until it is held: readiness, polled until the expiry has passed."""
    deadline = time.monotonic() + 5
    while True:
        manager = lock(name)
        if manager.__enter__():
            return manager, True
        manager.__exit__(None, None, None)
        assert time.monotonic() < deadline, "the dead holder's lock never expired"
        time.sleep(0.01)


def test_a_dead_holders_lock_expires_and_its_late_exit_frees_nothing(backend):
    dead = lock("job", timeout=0.05)  # entered and never left, as by a killed worker
    assert dead.__enter__()
    successor, held = _take_when_free("job")
    assert held
    dead.__exit__(None, None, None)  # the stalled worker wakes up and leaves
    with lock("job") as again:
        assert not again  # still the successor's
    successor.__exit__(None, None, None)
    with lock("job") as after:
        assert after


def test_without_redis_the_lock_is_a_lease_row_gone_after_exit(settings):
    settings.REDIS_URL = ""
    with lock("job") as held:
        assert held
        assert Lease.objects.filter(name="job").count() == 1
    assert not Lease.objects.filter(name="job").exists()


def test_each_cluster_has_its_own_sync_lock(backend):
    one = Cluster.objects.create(name="one", kubeconfig="k")
    two = Cluster.objects.create(name="two", kubeconfig="k")
    with cluster_sync_lock(one) as held_one, cluster_sync_lock(two) as held_two:
        assert held_one and held_two
        with cluster_sync_lock(one) as again:
            assert not again
