"""The demo's objects are shaped like a real cluster's, pass the real CRD schemas and carry
no field the official client's models do not know."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, config

from simcluster import admission
from simcluster.builder import LEGACY_NETWORK_STATUS, NETWORK_STATUS, NETWORKS
from simcluster.resources import BY_PLURAL, crd_object, crd_version

WB = ("whereabouts.cni.cncf.io", "v1alpha1")
NAD = ("k8s.cni.cncf.io", "v1")


@pytest.fixture(scope="module")
def demo(simcluster_server):
    """Everything the demo serves, read over HTTP with the official client (raw JSON)."""
    simcluster_server.load("demo")
    api = config.new_client_from_config(
        config_file=simcluster_server.kubeconfig, context="simcluster"
    )
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)

    def raw(resp) -> dict:
        return json.loads(resp.data)

    out = {
        "pods": raw(core.list_pod_for_all_namespaces(_preload_content=False)),
        "nodes": raw(core.list_node(_preload_content=False)),
        "namespaces": raw(core.list_namespace(_preload_content=False)),
        "events": raw(core.list_event_for_all_namespaces(_preload_content=False)),
        "network-attachment-definitions": custom.list_cluster_custom_object(
            *NAD, "network-attachment-definitions"
        ),
    }
    for plural in ("ippools", "overlappingrangeipreservations", "nodeslicepools"):
        out[plural] = custom.list_cluster_custom_object(*WB, plural)
    # the same lists through the client's typed models, serialized back (read now: other
    # tests reset the shared server)
    typed = {
        plural: [api.sanitize_for_serialization(o) for o in getattr(core, reader)().items]
        for plural, reader in (
            ("pods", "list_pod_for_all_namespaces"),
            ("nodes", "list_node"),
            ("events", "list_event_for_all_namespaces"),
            ("namespaces", "list_namespace"),
        )
    }
    models = {type(core.list_node().items[0]).__name__}
    api.close()
    return {"lists": out, "typed": typed, "models": models}


def statuses(pod: dict) -> list[dict]:
    ann = pod["metadata"].get("annotations") or {}
    text = ann.get(NETWORK_STATUS) or ann.get(LEGACY_NETWORK_STATUS)
    return json.loads(text) if text else []


def test_demo_pods_look_like_controller_pods(demo):
    pods = demo["lists"]["pods"]["items"]
    n = len(pods)
    owned = [p for p in pods if p["metadata"].get("ownerReferences")]
    assert len(owned) >= 0.8 * n
    kinds = {p["metadata"]["ownerReferences"][0]["kind"] for p in owned}
    assert kinds == {"ReplicaSet", "StatefulSet", "DaemonSet", "Job"}
    assert all(p["metadata"]["ownerReferences"][0]["controller"] is True for p in owned)
    with_volumes = [p for p in pods if p["spec"].get("volumes")]
    assert len(with_volumes) >= 0.8 * n
    for p in with_volumes:
        (vol,) = p["spec"]["volumes"]
        assert vol["name"].startswith("kube-api-access-") and "projected" in vol
        mounts = p["spec"]["containers"][0]["volumeMounts"]
        assert mounts[0]["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
        assert {t["key"] for t in p["spec"]["tolerations"]} == {
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        }
    assert any(p["spec"].get("initContainers") for p in pods)
    assert any(p["status"].get("initContainerStatuses") for p in pods)
    restarted = [
        c
        for p in pods
        for c in p["status"].get("containerStatuses") or []
        if c["restartCount"] and c["lastState"].get("terminated")
    ]
    assert restarted
    assert any(len(p["status"].get("podIPs") or []) == 2 for p in pods)
    dual = next(p for p in pods if len(p["status"].get("podIPs") or []) == 2)
    assert ":" in dual["status"]["podIPs"][1]["ip"] and ":" not in dual["status"]["podIP"]


def test_demo_network_annotations_as_multus_writes_them(demo):
    pods = demo["lists"]["pods"]["items"]
    entries = [e for p in pods for e in statuses(p)]
    assert any(e.get("mtu") for e in entries)
    assert any(e.get("dns", {}).get("nameservers") for e in entries)
    assert any("device-info" in e and e["device-info"]["type"] == "pci" for e in entries)
    assert any(LEGACY_NETWORK_STATUS in (p["metadata"].get("annotations") or {}) for p in pods)
    requests = [(p["metadata"].get("annotations") or {}).get(NETWORKS, "") for p in pods]
    assert any("@net" in r and not r.startswith("[") for r in requests)


def test_demo_events_use_both_event_apis(demo):
    events = demo["lists"]["events"]["items"]
    assert any(e.get("series", {}).get("count", 0) > 1 for e in events)
    assert any(e.get("action") == "Binding" and e.get("eventTime") for e in events)
    related = [e for e in events if e.get("related")]
    assert related and related[0]["related"]["kind"] == "Pod"


def test_every_demo_object_has_managed_fields(demo):
    for plural, body in demo["lists"].items():
        for obj in body["items"]:
            entries = obj["metadata"].get("managedFields")
            assert entries, (plural, obj["metadata"]["name"])
            for e in entries:
                assert e["fieldsType"] == "FieldsV1" and e["operation"] in ("Update", "Apply")
                assert e["manager"] and e["time"] and e["fieldsV1"]
    pod = demo["lists"]["pods"]["items"][0]
    managers = [(e["manager"], e.get("subresource")) for e in pod["metadata"]["managedFields"]]
    assert managers == [
        ("kube-controller-manager", None),
        ("multus-daemon", "status"),
        ("kubelet", "status"),
    ]


def test_builder_pod_managed_fields_match_the_generic_computation(demo):
    """The pods' managedFields are built from per-shape templates; they must equal what
    simcluster.managed computes for each pod itself."""
    from simcluster import managed

    for pod in demo["lists"]["pods"]["items"][:60]:
        creator = pod["metadata"]["managedFields"][0]
        md = pod["metadata"]
        mine = {
            k: v
            for k, v in (md.get("annotations") or {}).items()
            if k not in (NETWORK_STATUS, LEGACY_NETWORK_STATUS)
        }
        projected = {k: md[k] for k in ("labels", "ownerReferences") if k in md}
        if mine:
            projected["annotations"] = mine
        spec = {k: v for k, v in pod["spec"].items() if k != "nodeName"}
        assert creator["fieldsV1"] == managed.fields_v1({"metadata": projected, "spec": spec})
        kubelet = pod["metadata"]["managedFields"][-1]
        assert kubelet["fieldsV1"] == managed.fields_v1({"status": pod["status"]})


def test_demo_custom_objects_pass_the_real_schemas(demo):
    for plural in ("network-attachment-definitions", "ippools", "overlappingrangeipreservations"):
        t = BY_PLURAL[plural]
        schema = crd_version(crd_object(t), t.version)["schema"]["openAPIV3Schema"]
        for obj in demo["lists"][plural]["items"]:
            res = admission.admit_custom(obj, schema)
            assert res.unknown == [] and res.causes == [], (plural, obj["metadata"]["name"])
            assert admission.name_causes(obj["metadata"]["name"], label=False) == []


def test_nodeslice_objects_pass_the_real_schema(simcluster):
    simcluster.load("nodeslice")
    t = BY_PLURAL["nodeslicepools"]
    schema = crd_version(crd_object(t), t.version)["schema"]["openAPIV3Schema"]
    pools = simcluster.list("nodeslicepools")
    assert pools
    for obj in pools:
        res = admission.admit_custom(obj, schema)
        assert res.unknown == [] and res.causes == [], obj["metadata"]["name"]


def _paths(value, prefix: str = "") -> set[str]:
    """Every field path in a JSON value (list items merged; map keys of free-form maps
    collapsed, since only the models' fields matter)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if prefix.endswith(("labels", "annotations", "fieldsV1", "capacity", "allocatable")):
                k = "*"
            p = f"{prefix}.{k}" if prefix else k
            if v is not None:
                out.add(p)
            out |= _paths(v, p)
    elif isinstance(value, list):
        for v in value:
            out |= _paths(v, prefix + "[]")
    return out


@pytest.mark.parametrize("plural", ["pods", "nodes", "events", "namespaces"])
def test_built_in_objects_hold_only_fields_the_client_models_know(demo, plural):
    """The official client drops what its models do not declare: every field simcluster
    serves must survive a typed read."""
    assert demo["models"] == {"V1Node"}
    served = _paths({"items": demo["lists"][plural]["items"]})
    kept = _paths({"items": demo["typed"][plural]})
    assert len(served) > 10
    assert served - kept == set()
