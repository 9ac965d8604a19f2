"""Real services: a model round trip on PostgreSQL, a task through Redis to a worker process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from netaddr import IPAddress

from ippam.models import Allocation, Cluster, IPPool

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_postgres_round_trip_orders_addresses_numerically(postgres_required):
    cluster = Cluster.objects.create(name="pg", kubeconfig="/dev/null")
    pool = IPPool.objects.create(
        cluster=cluster, namespace="kube-system", name="10.0.0.0-24", uid="u1", range="10.0.0.0/24"
    )
    for key in ("10", "9", "100"):
        Allocation.objects.create(
            pool=pool, cluster=cluster, key=key, ip=IPAddress(int(IPAddress("10.0.0.0")) + int(key))
        )
    ips = [str(a.ip) for a in Allocation.objects.filter(pool=pool).order_by("ip")]
    assert ips == ["10.0.0.9", "10.0.0.10", "10.0.0.100"]
    assert (
        Allocation.objects.filter(ip__range=(IPAddress("10.0.0.9"), IPAddress("10.0.0.10"))).count()
        == 2
    )


def test_task_runs_on_a_real_worker_through_redis(redis_url, celery_conf, tmp_path):
    """Send ippam.tasks.ping through Redis to a worker process started here; read the result."""
    env = dict(
        os.environ, REDIS_URL=redis_url, DEBUG="true", DATABASE_URL=f"sqlite:///{tmp_path}/w.db"
    )
    queue = f"test-{os.getpid()}"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "dashboard",
            "worker",
            "--pool",
            "solo",
            "-Q",
            queue,
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        from dashboard.celery import app

        celery_conf(broker_url=redis_url, result_backend=redis_url)
        result = app.send_task("ippam.tasks.ping", args=["hello"], queue=queue)
        assert result.get(timeout=60) == {"pong": "hello"}
    finally:
        worker.terminate()
        worker.wait(timeout=30)
