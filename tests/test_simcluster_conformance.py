"""simcluster conformance: driven with the official kubernetes client (typed and raw JSON)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from simcluster.builder import ClusterBuilder

WB = ("whereabouts.cni.cncf.io", "v1alpha1")
NAD = ("k8s.cni.cncf.io", "v1")


@pytest.fixture
def api(simcluster):
    c = config.new_client_from_config(config_file=simcluster.kubeconfig, context="simcluster")
    yield c
    c.close()


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def custom(api):
    return client.CustomObjectsApi(api)


def raw(resp) -> dict:
    return json.loads(resp.data)


def http(url: str, method: str = "GET", body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def small_cluster(n_pods: int = 120) -> ClusterBuilder:
    b = ClusterBuilder(seed=3)
    for ns in ("team-a", "team-b", "team-c"):
        b.namespace(ns, {"team": ns})
    for i in range(4):
        b.node(f"n{i}", ready=i != 3, labels={"zone": "a" if i < 2 else "b"})
    b.whereabouts_nad("team-a", "net-a", "10.9.0.0/22")
    for i in range(n_pods):
        ns = ("team-a", "team-b", "team-c")[i % 3]
        phase = "Pending" if i % 10 == 0 else "Running"
        b.pod(
            ns,
            f"p-{i:03d}",
            f"n{i % 4}",
            [("team-a", "net-a")],
            phase,
            labels={
                "app": f"app{i % 4}",
                "tier": "web" if i % 2 else "db",
                **({"canary": "yes"} if i % 7 == 0 else {}),
            },
        )
    return b


# ------------------------------------------------------------------ discovery


def test_discovery_with_and_without_trailing_slashes(simcluster, api):
    for path in (
        "/api",
        "/api/",
        "/api/v1",
        "/api/v1/",
        "/apis",
        "/apis/",
        "/version",
        "/version/",
    ):
        status, ctype, body = http(simcluster.url + path)
        assert status == 200, path
        assert ctype.startswith("application/json"), path
    status, _, body = http(simcluster.url + "/apis/whereabouts.cni.cncf.io/v1alpha1/")
    names = {r["name"] for r in json.loads(body)["resources"]}
    assert names == {"ippools", "overlappingrangeipreservations", "nodeslicepools"}
    status, _, body = http(simcluster.url + "/apis/k8s.cni.cncf.io/v1")
    (nad,) = json.loads(body)["resources"]
    assert (
        nad["shortNames"] == ["nad", "net-attach-def"]
        and nad["namespaced"]
        and nad["kind"] == "NetworkAttachmentDefinition"
    )
    assert "watch" in nad["verbs"]
    status, _, body = http(simcluster.url + "/apis/whereabouts.cni.cncf.io")
    assert json.loads(body)["preferredVersion"]["version"] == "v1alpha1"
    assert http(simcluster.url + "/openapi/v2")[0] == 404

    groups = client.ApisApi(api).get_api_versions()
    assert {g.name for g in groups.groups} >= {
        "k8s.cni.cncf.io",
        "whereabouts.cni.cncf.io",
        "apiextensions.k8s.io",
    }
    assert client.CoreApi(api).get_api_versions().versions == ["v1"]
    assert "simulated" in client.VersionApi(api).get_code().git_version
    res = client.CoreV1Api(api).get_api_resources()
    assert {"pods", "nodes", "namespaces", "events"} <= {r.name for r in res.resources}


def test_empty_scenario(simcluster, core, custom):
    assert sorted(n.metadata.name for n in core.list_namespace().items) == [
        "default",
        "kube-system",
    ]
    crds = client.ApiextensionsV1Api(core.api_client).list_custom_resource_definition()
    assert {c.metadata.name for c in crds.items} == {
        "network-attachment-definitions.k8s.cni.cncf.io",
        "ippools.whereabouts.cni.cncf.io",
        "overlappingrangeipreservations.whereabouts.cni.cncf.io",
        "nodeslicepools.whereabouts.cni.cncf.io",
    }
    assert custom.list_cluster_custom_object(*WB, "ippools")["items"] == []


# ------------------------------------------------------------------ typed models


def test_demo_objects_deserialize_with_typed_models(simcluster, core):
    simcluster.load("demo")
    pods = core.list_pod_for_all_namespaces()
    assert len(pods.items) >= 290
    rv = pods.metadata.resource_version
    assert isinstance(rv, str) and rv.isdigit()
    assert all(p.metadata.creation_timestamp.tzinfo is not None for p in pods.items)
    nodes = core.list_node()
    assert len(nodes.items) == 8
    ready = {
        n.metadata.name: {c.type: c.status for c in n.status.conditions}["Ready"]
        for n in nodes.items
    }
    assert list(ready.values()).count("True") == 7
    assert len(core.list_namespace().items) == 6
    events = core.list_event_for_all_namespaces(field_selector="involvedObject.kind=Pod")
    reasons = {e.reason for e in events.items}
    assert {"AddedInterface", "FailedCreatePodSandBox"} <= reasons
    failed = [e for e in events.items if e.reason == "FailedCreatePodSandBox"]
    assert all("Could not allocate IP in range" in e.message for e in failed)
    one = core.read_namespaced_pod(pods.items[0].metadata.name, pods.items[0].metadata.namespace)
    assert one.metadata.uid == pods.items[0].metadata.uid
    core.read_node("sim-node-08")
    core.read_namespace("telco")


def test_raw_json_lists(simcluster, core, custom):
    simcluster.load("demo")
    body = raw(core.list_pod_for_all_namespaces(_preload_content=False))
    assert body["kind"] == "PodList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"].isdigit()
    # a real apiserver leaves apiVersion and kind empty on the items of built-in lists
    assert all("kind" not in p and "apiVersion" not in p for p in body["items"])
    one = raw(
        core.read_namespaced_pod(
            body["items"][0]["metadata"]["name"],
            body["items"][0]["metadata"]["namespace"],
            _preload_content=False,
        )
    )
    assert one["kind"] == "Pod" and one["apiVersion"] == "v1"
    assert list(one) == ["kind", "apiVersion", *body["items"][0]]
    pools = custom.list_cluster_custom_object(*WB, "ippools")
    assert pools["kind"] == "IPPoolList" and pools["metadata"]["resourceVersion"].isdigit()
    assert all(
        p["kind"] == "IPPool" and p["apiVersion"] == "whereabouts.cni.cncf.io/v1alpha1"
        for p in pools["items"]
    )
    ns_pools = custom.list_namespaced_custom_object(*WB, "kube-system", "ippools")
    assert len(ns_pools["items"]) == len(pools["items"])
    assert custom.list_namespaced_custom_object(*WB, "default", "ippools")["items"] == []
    assert len(core.list_namespaced_pod("telco").items) == sum(
        1 for p in body["items"] if p["metadata"]["namespace"] == "telco"
    )


# ------------------------------------------------------------------ CRUD


def test_create_201_and_409_already_exists(simcluster, custom, core):
    nad = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "macvlan-conf"},
        "spec": {
            "config": json.dumps(
                {
                    "cniVersion": "0.3.1",
                    "type": "macvlan",
                    "ipam": {"type": "whereabouts", "range": "10.1.0.0/24"},
                }
            )
        },
    }
    _, status, _ = custom.create_namespaced_custom_object_with_http_info(
        *NAD, "default", "network-attachment-definitions", nad
    )
    assert status == 201
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(
            *NAD, "default", "network-attachment-definitions", nad
        )
    assert exc.value.status == 409
    body = json.loads(exc.value.body)
    assert body["reason"] == "AlreadyExists" and body["kind"] == "Status" and body["code"] == 409
    assert (
        body["message"]
        == 'network-attachment-definitions.k8s.cni.cncf.io "macvlan-conf" already exists'
    )
    got = custom.get_namespaced_custom_object(
        *NAD, "default", "network-attachment-definitions", "macvlan-conf"
    )
    md = got["metadata"]
    assert md["uid"] and md["generation"] == 1 and md["resourceVersion"].isdigit()
    assert md["creationTimestamp"].endswith("Z")

    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p1"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
    )
    created = core.create_namespaced_pod("default", pod)
    assert isinstance(created, client.V1Pod) and created.metadata.namespace == "default"
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod("default", pod)
    assert (
        exc.value.status == 409
        and json.loads(exc.value.body)["message"] == 'pods "p1" already exists'
    )
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod("nope", pod)
    assert exc.value.status == 404


def test_get_404_not_found_status_shape(simcluster, core, custom):
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_pod("ghost", "default")
    assert exc.value.status == 404
    assert exc.value.headers["Content-Type"].startswith("application/json")
    body = json.loads(exc.value.body)
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "ghost" not found',
        "reason": "NotFound",
        "details": {"name": "ghost", "kind": "pods"},
        "code": 404,
    }
    with pytest.raises(ApiException) as exc:
        custom.get_namespaced_custom_object(*WB, "kube-system", "ippools", "10.0.0.0-24")
    body = json.loads(exc.value.body)
    assert body["message"] == 'ippools.whereabouts.cni.cncf.io "10.0.0.0-24" not found'
    assert body["details"]["group"] == "whereabouts.cni.cncf.io"


def _pool(custom, name="10.0.0.0-24", allocations=None):
    return custom.create_namespaced_custom_object(
        *WB,
        "kube-system",
        "ippools",
        {
            "apiVersion": "whereabouts.cni.cncf.io/v1alpha1",
            "kind": "IPPool",
            "metadata": {"name": name},
            "spec": {"range": "10.0.0.0/24", "allocations": allocations or {}},
        },
    )


def test_replace_with_stale_resource_version_is_409_conflict(simcluster, custom):
    created = _pool(custom, allocations={"5": {"id": "abc", "podref": "default/a"}})
    first = custom.get_namespaced_custom_object(*WB, "kube-system", "ippools", "10.0.0.0-24")
    first["spec"]["allocations"]["6"] = {"id": "def", "podref": "default/b"}
    updated = custom.replace_namespaced_custom_object(
        *WB, "kube-system", "ippools", "10.0.0.0-24", first
    )
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert updated["metadata"]["generation"] == 2
    # the stale copy
    first["spec"]["allocations"]["7"] = {"id": "ghi", "podref": "default/c"}
    with pytest.raises(ApiException) as exc:
        custom.replace_namespaced_custom_object(*WB, "kube-system", "ippools", "10.0.0.0-24", first)
    assert exc.value.status == 409
    body = json.loads(exc.value.body)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on ippools.whereabouts.cni.cncf.io "10.0.0.0-24": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    # no resourceVersion at all on a custom resource: 422
    del first["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as exc:
        custom.replace_namespaced_custom_object(*WB, "kube-system", "ippools", "10.0.0.0-24", first)
    assert exc.value.status == 422
    body = json.loads(exc.value.body)
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    assert "must be specified for an update" in body["message"]


def test_replace_core_object_typed(simcluster, core):
    simcluster.create(
        "pods",
        {
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    pod = core.read_namespaced_pod("p", "default")
    pod.metadata.labels = {"a": "b"}
    new = core.replace_namespaced_pod("p", "default", pod)
    assert new.metadata.labels == {"a": "b"}
    pod.metadata.labels = {"a": "c"}
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_pod("p", "default", pod)
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "Conflict"


def test_json_patch_with_test_ops(simcluster, custom):
    pool = _pool(
        custom,
        allocations={
            "5": {"id": "abc", "podref": "default/a", "ifname": "net1"},
            "6": {"id": "x", "podref": "default/b"},
        },
    )
    rv = pool["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "test", "path": "/spec/allocations/5/podref", "value": "default/a"},
        {"op": "remove", "path": "/spec/allocations/5"},
    ]
    jp = {"_content_type": "application/json-patch+json"}
    # kubernetes 37's CustomObjectsApi defaults to merge-patch even for a list: say JSON Patch
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(*WB, "kube-system", "ippools", "10.0.0.0-24", ops)
    assert exc.value.status == 400
    out = custom.patch_namespaced_custom_object(
        *WB, "kube-system", "ippools", "10.0.0.0-24", ops, **jp
    )
    assert "5" not in out["spec"]["allocations"] and "6" in out["spec"]["allocations"]
    # the same patch again: the resourceVersion test fails -> 422
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(
            *WB, "kube-system", "ippools", "10.0.0.0-24", ops, **jp
        )
    assert exc.value.status == 422
    assert json.loads(exc.value.body)["reason"] == "Invalid"
    ops2 = [
        {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": out["metadata"]["resourceVersion"],
        },
        {"op": "test", "path": "/spec/allocations/6/podref", "value": "default/zzz"},
        {"op": "remove", "path": "/spec/allocations/6"},
    ]
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(
            *WB, "kube-system", "ippools", "10.0.0.0-24", ops2, **jp
        )
    assert exc.value.status == 422
    assert "6" in simcluster.get("ippools", "kube-system", "10.0.0.0-24")["spec"]["allocations"]
    # ~1 escaping in a JSON pointer and a merge patch (CustomObjectsApi's default for dicts)
    out = custom.patch_namespaced_custom_object(
        *WB, "kube-system", "ippools", "10.0.0.0-24", {"metadata": {"labels": {"a/b": "1"}}}
    )
    out = custom.patch_namespaced_custom_object(
        *WB,
        "kube-system",
        "ippools",
        "10.0.0.0-24",
        [{"op": "replace", "path": "/metadata/labels/a~1b", "value": "2"}],
        **jp,
    )
    assert out["metadata"]["labels"] == {"a/b": "2"}


def test_merge_and_strategic_patch_on_core(simcluster, core):
    simcluster.create(
        "pods",
        {
            "metadata": {"name": "p", "namespace": "default", "labels": {"x": "1", "y": "2"}},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    out = core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"y": None, "z": "3"}}})
    assert out.metadata.labels == {"x": "1", "z": "3"}
    out = core.patch_namespaced_pod(
        "p", "default", [{"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}}]
    )
    assert out.metadata.annotations == {"k": "v"}
    status, _, body = http(
        f"{simcluster.url}/api/v1/namespaces/default/pods/p",
        "PATCH",
        {"metadata": {"labels": {"m": "1"}}},
        {"Content-Type": "application/merge-patch+json"},
    )
    assert status == 200 and json.loads(body)["metadata"]["labels"]["m"] == "1"


def test_delete_pod_returns_pod_and_custom_returns_status(simcluster, core, custom):
    simcluster.create(
        "pods",
        {
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    gone = core.delete_namespaced_pod("p", "default")
    assert isinstance(gone, client.V1Pod) and gone.metadata.deletion_timestamp is not None
    assert simcluster.get("pods", "default", "p") is None
    with pytest.raises(ApiException) as exc:
        core.delete_namespaced_pod("p", "default")
    assert exc.value.status == 404
    _pool(custom)
    st = custom.delete_namespaced_custom_object(*WB, "kube-system", "ippools", "10.0.0.0-24")
    assert (
        st["kind"] == "Status"
        and st["status"] == "Success"
        and st["details"]["name"] == "10.0.0.0-24"
    )
    assert custom.list_namespaced_custom_object(*WB, "kube-system", "ippools")["items"] == []


# ------------------------------------------------------------------ lists


def test_paging_to_the_last_item_with_limit_50(simcluster, core):
    simcluster.seed(small_cluster(237).objects())
    seen, token, rvs, pages = [], None, set(), 0
    while True:
        page = core.list_pod_for_all_namespaces(limit=50, _continue=token)
        pages += 1
        rvs.add(page.metadata.resource_version)
        seen += [(p.metadata.namespace, p.metadata.name) for p in page.items]
        if pages == 1:
            assert page.metadata.remaining_item_count == 187
            # writes after the first page do not leak into the snapshot
            simcluster.create(
                "pods",
                {
                    "metadata": {"name": "zz-late", "namespace": "team-c"},
                    "spec": {"containers": [{"name": "c", "image": "x"}]},
                },
            )
            simcluster.delete("pods", "team-c", "p-236")
        token = page.metadata._continue
        if not token:
            break
    assert pages == 5 and len(seen) == 237 and len(set(seen)) == 237
    assert seen == sorted(seen)
    assert len(rvs) == 1
    assert ("team-c", "zz-late") not in seen and ("team-c", "p-236") in seen


def test_paging_raw_and_namespaced(simcluster, core):
    simcluster.seed(small_cluster(120).objects())
    body = raw(core.list_namespaced_pod("team-a", limit=15, _preload_content=False))
    assert (
        len(body["items"]) == 15
        and body["metadata"]["continue"]
        and body["metadata"]["remainingItemCount"] == 25
    )
    nxt = raw(
        core.list_namespaced_pod(
            "team-a", limit=100, _continue=body["metadata"]["continue"], _preload_content=False
        )
    )
    assert len(nxt["items"]) == 25 and "continue" not in nxt["metadata"]


def test_continue_token_expired_410_and_garbled_400(simcluster, core):
    simcluster.seed(small_cluster(60).objects())
    page = core.list_pod_for_all_namespaces(limit=10)
    simcluster.compact()
    with pytest.raises(ApiException) as exc:
        core.list_pod_for_all_namespaces(limit=10, _continue=page.metadata._continue)
    assert exc.value.status == 410 and json.loads(exc.value.body)["reason"] == "Expired"
    with pytest.raises(ApiException) as exc:
        core.list_pod_for_all_namespaces(limit=10, _continue="%%%not-a-token")
    assert exc.value.status == 400


@pytest.mark.parametrize(
    ("selector", "predicate"),
    [
        ("app=app1", lambda labels: labels.get("app") == "app1"),
        ("app==app1", lambda labels: labels.get("app") == "app1"),
        ("app!=app1", lambda labels: labels.get("app") != "app1"),
        ("app in (app1, app2)", lambda labels: labels.get("app") in ("app1", "app2")),
        ("app notin (app1,app2)", lambda labels: labels.get("app") not in ("app1", "app2")),
        ("canary", lambda labels: "canary" in labels),
        ("!canary", lambda labels: "canary" not in labels),
        (
            "tier=web,app in (app1,app3),!canary",
            lambda labels: (
                labels.get("tier") == "web"
                and labels.get("app") in ("app1", "app3")
                and "canary" not in labels
            ),
        ),
    ],
)
def test_label_selectors(simcluster, core, selector, predicate):
    b = small_cluster(120)
    simcluster.seed(b.objects())
    want = sorted(
        p["metadata"]["name"]
        for p in b.objects()["pods"]
        if predicate(p["metadata"].get("labels") or {})
    )
    got = sorted(
        p.metadata.name for p in core.list_pod_for_all_namespaces(label_selector=selector).items
    )
    assert got == want and got


def test_field_selectors(simcluster, core):
    b = small_cluster(120)
    simcluster.seed(b.objects())
    pods = b.objects()["pods"]

    def names(**kw):
        return sorted(p.metadata.name for p in core.list_pod_for_all_namespaces(**kw).items)

    assert names(field_selector="metadata.name=p-007") == ["p-007"]
    assert names(field_selector="metadata.namespace=team-b") == sorted(
        p["metadata"]["name"] for p in pods if p["metadata"]["namespace"] == "team-b"
    )
    assert names(field_selector="spec.nodeName=n2") == sorted(
        p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == "n2"
    )
    assert names(field_selector="status.phase=Pending") == sorted(
        p["metadata"]["name"] for p in pods if p["status"]["phase"] == "Pending"
    )
    assert names(field_selector="status.phase!=Pending,spec.nodeName==n1") == sorted(
        p["metadata"]["name"]
        for p in pods
        if p["status"]["phase"] != "Pending" and p["spec"].get("nodeName") == "n1"
    )
    assert [
        p.metadata.name
        for p in core.list_namespaced_pod("team-a", field_selector="metadata.name=p-003").items
    ] == ["p-003"]
    assert core.list_namespaced_pod("team-b", field_selector="metadata.name=p-003").items == []
    nodes = core.list_node(field_selector="metadata.name=n1", label_selector="zone=a")
    assert [n.metadata.name for n in nodes.items] == ["n1"]
    with pytest.raises(ApiException) as exc:
        core.list_pod_for_all_namespaces(field_selector="spec.bogus=1")
    assert exc.value.status == 400
    with pytest.raises(ApiException) as exc:
        core.list_pod_for_all_namespaces(label_selector="app in (a")
    assert exc.value.status == 400


# ------------------------------------------------------------------ watch


def _lines(resp):
    buf = b""
    for chunk in resp.stream(1024):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buf.strip():
        yield json.loads(buf)


def test_watch_replays_from_resource_version(simcluster, core):
    rv = core.list_namespaced_pod("default").metadata.resource_version
    for i in range(3):
        simcluster.create(
            "pods",
            {
                "metadata": {"name": f"w{i}", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
    simcluster.patch("pods", "default", "w1", {"metadata": {"labels": {"x": "y"}}})
    simcluster.delete("pods", "default", "w2")
    simcluster.create(
        "pods",
        {
            "metadata": {"name": "other", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    resp = core.list_namespaced_pod(
        "default", watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
    )
    assert resp.headers["Content-Type"].startswith("application/json")
    lines = list(_lines(resp))
    # unlike list items, watch events carry apiVersion and kind
    assert all(e["object"]["kind"] == "Pod" and e["object"]["apiVersion"] == "v1" for e in lines)
    events = [(e["type"], e["object"]["metadata"]["name"]) for e in lines]
    assert events == [
        ("ADDED", "w0"),
        ("ADDED", "w1"),
        ("ADDED", "w2"),
        ("MODIFIED", "w1"),
        ("DELETED", "w2"),
    ]
    # typed: the official Watch helper
    w = watch.Watch()
    got = [
        (e["type"], e["object"].metadata.name)
        for e in w.stream(
            core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=1
        )
    ]
    assert got == events
    assert all(
        isinstance(e["object"], client.V1Pod)
        for e in w.stream(
            core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=1
        )
    )


def test_watch_too_old_resource_version_is_410_expired_in_stream(simcluster, core):
    rv = core.list_namespaced_pod("default").metadata.resource_version
    simcluster.create(
        "pods",
        {
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    simcluster.compact()
    resp = core.list_namespaced_pod(
        "default", watch=True, resource_version=rv, timeout_seconds=2, _preload_content=False
    )
    assert resp.status == 200
    (event,) = list(_lines(resp))
    assert event["type"] == "ERROR"
    obj = event["object"]
    assert obj["kind"] == "Status" and obj["code"] == 410 and obj["reason"] == "Expired"
    assert obj["message"].startswith(f"too old resource version: {rv} (")
    # the official Watch raises ApiException(410) after its one retry
    with pytest.raises(ApiException) as exc:
        for _ in watch.Watch().stream(
            core.list_namespaced_pod, "default", resource_version=rv, timeout_seconds=2
        ):
            pass
    assert exc.value.status == 410


def test_watch_initial_added_bookmarks_and_timeout(simcluster, core):
    simcluster.bookmark_interval = 0.3
    for i in range(3):
        simcluster.create(
            "pods",
            {
                "metadata": {"name": f"b{i}", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
    t0 = time.monotonic()
    resp = core.list_namespaced_pod(
        "default", watch=True, allow_watch_bookmarks=True, timeout_seconds=1, _preload_content=False
    )
    events = list(_lines(resp))
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 3
    assert [e["type"] for e in events[:3]] == ["ADDED"] * 3
    bms = [e for e in events if e["type"] == "BOOKMARK"]
    assert bms, events
    assert set(bms[0]["object"]) == {"kind", "apiVersion", "metadata"}
    assert bms[0]["object"]["metadata"] == {"resourceVersion": simcluster.resource_version}
    # no bookmarks unless asked; resourceVersion=0 also sends the current objects
    resp = core.list_namespaced_pod(
        "default", watch=True, resource_version="0", timeout_seconds=1, _preload_content=False
    )
    assert [e["type"] for e in _lines(resp)] == ["ADDED"] * 3


def test_watch_sees_live_changes_with_selectors(simcluster, core):
    rv = core.list_pod_for_all_namespaces().metadata.resource_version
    open_before = simcluster.open_watches("pods")
    got = []

    def run():
        resp = core.list_pod_for_all_namespaces(
            watch=True,
            resource_version=rv,
            timeout_seconds=3,
            label_selector="app=x",
            field_selector="spec.nodeName=n1",
            _preload_content=False,
        )
        for e in _lines(resp):
            got.append((e["type"], e["object"]["metadata"]["name"]))
            if len(got) == 2:
                resp.release_conn()
                return

    t = threading.Thread(target=run)
    t.start()
    simcluster.wait_for_watches(open_before + 1, plural="pods")
    for name, labels, node in (
        ("a", {"app": "x"}, "n1"),
        ("b", {"app": "y"}, "n1"),
        ("c", {"app": "x"}, "n2"),
        ("d", {"app": "x"}, "n1"),
    ):
        simcluster.create(
            "pods",
            {
                "metadata": {"name": name, "namespace": "default", "labels": labels},
                "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]},
            },
        )
    t.join(5)
    assert got == [("ADDED", "a"), ("ADDED", "d")]


def test_watch_custom_resources_and_drop_watches(simcluster, custom):
    rv = custom.list_cluster_custom_object(*WB, "ippools")["metadata"]["resourceVersion"]
    open_before = simcluster.open_watches("ippools")
    got = []
    received = threading.Event()
    done = threading.Event()

    def run():
        resp = custom.list_cluster_custom_object(
            *WB,
            "ippools",
            watch=True,
            resource_version=rv,
            timeout_seconds=20,
            _preload_content=False,
        )
        for e in _lines(resp):
            got.append(e)
            received.set()
        done.set()

    t = threading.Thread(target=run)
    t.start()
    simcluster.wait_for_watches(open_before + 1, plural="ippools")
    _pool(custom)
    assert received.wait(5), "the watch did not deliver the new pool"
    t0 = time.monotonic()
    simcluster.drop_watches()
    assert done.wait(5), "drop_watches did not end the stream"
    assert time.monotonic() - t0 < 5
    assert [(e["type"], e["object"]["kind"]) for e in got] == [("ADDED", "IPPool")]


# ------------------------------------------------------------------ faults and control


def test_faults_status_latency_and_request_log(simcluster, core):
    simcluster.fault(r"/api/v1/namespaces/default/pods$", status=500, count=2)
    for _ in range(2):
        with pytest.raises(ApiException) as exc:
            core.list_namespaced_pod("default")
        assert exc.value.status == 500
        body = json.loads(exc.value.body)
        assert body["kind"] == "Status" and body["reason"] == "InternalError"
    core.list_namespaced_pod("default")
    core.list_namespaced_pod("kube-system")
    simcluster.fault("/pods", status=429)
    core.list_namespaced_pod("default")  # kubernetes 37 retries a 429 (Retry-After: 1) itself
    simcluster.fault("/api/v1/nodes", latency=0.5)
    t0 = time.monotonic()
    core.list_node()
    assert time.monotonic() - t0 >= 0.5
    log = simcluster.requests
    pods = [r for r in log if r["path"] == "/api/v1/namespaces/default/pods"]
    assert [r["status"] for r in pods] == [500, 500, 200, 429, 200]
    assert pods[0]["method"] == "GET"
    assert log[-1]["path"] == "/api/v1/nodes" and log[-1]["status"] == 200


def test_remove_crd_makes_lists_404(simcluster, custom, api):
    simcluster.remove_crd("nodeslicepools")
    with pytest.raises(ApiException) as exc:
        custom.list_cluster_custom_object(*WB, "nodeslicepools")
    assert exc.value.status == 404
    assert custom.list_cluster_custom_object(*WB, "ippools")["items"] == []
    simcluster.remove_crd("ippools")
    simcluster.remove_crd("overlappingrangeipreservations")
    groups = client.ApisApi(api).get_api_versions()
    assert "whereabouts.cni.cncf.io" not in {g.name for g in groups.groups}
    assert http(simcluster.url + "/apis/whereabouts.cni.cncf.io/v1alpha1")[0] == 404


def test_control_api_over_http(simcluster):
    status, _, body = http(simcluster.url + "/_sim/load", "POST", {"scenario": "demo", "seed": 2})
    assert status == 200 and json.loads(body)["counts"]["pods"] > 250
    status, _, body = http(simcluster.url + "/_sim/ground-truth")
    assert {f["kind"] for f in json.loads(body)["findings"]} >= {
        "orphaned_allocation",
        "overlapping_range",
    }
    http(simcluster.url + "/_sim/fault", "POST", {"path": "/api/v1/nodes", "status": 503})
    assert http(simcluster.url + "/api/v1/nodes")[0] == 503
    assert http(simcluster.url + "/api/v1/nodes")[0] == 200
    status, _, body = http(simcluster.url + "/_sim/requests")
    assert [r["status"] for r in json.loads(body)["requests"]][-2:] == [503, 200]
    assert http(simcluster.url + "/_sim/compact", "POST", {})[0] == 200
    objs = ClusterBuilder(seed=1)
    objs.namespace("seeded")
    assert http(simcluster.url + "/_sim/seed", "POST", {"objects": objs.objects()})[0] == 200
    assert simcluster.get("namespaces", None, "seeded") is not None
    assert http(simcluster.url + "/_sim/reset", "POST", {})[0] == 200
    assert simcluster.get("namespaces", None, "seeded") is None


def test_fixture_store_access_emits_like_http(simcluster, core):
    rv0 = int(simcluster.resource_version)
    pod = simcluster.create(
        "pods",
        {
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    assert int(pod["metadata"]["resourceVersion"]) > rv0
    assert core.read_namespaced_pod("s", "default").metadata.uid == pod["metadata"]["uid"]
    pod["metadata"]["labels"] = {"k": "v"}
    new = simcluster.replace("pods", pod)
    stale = dict(pod)
    with pytest.raises(Exception) as exc:
        simcluster.replace("pods", stale)
    assert getattr(exc.value, "code", None) == 409
    assert simcluster.patch("pods", "default", "s", {"metadata": {"labels": {"k": None}}})[
        "metadata"
    ].get("labels") in (None, {})
    assert [p["metadata"]["name"] for p in simcluster.list("pods")] == ["s"]
    assert new["metadata"]["labels"] == {"k": "v"}
    simcluster.delete("pods", "default", "s")
    assert simcluster.get("pods", "default", "s") is None
    assert simcluster.get("nodes", None, "none") is None


def test_churn_streams_consistent_traffic(simcluster, core):
    simcluster.load("demo")
    rv = core.list_pod_for_all_namespaces().metadata.resource_version
    simcluster.start_churn(200, seed=5)
    # readiness, not a fixed sleep: wait until churn has written enough (adds and changes)
    deadline = time.monotonic() + 10
    while int(simcluster.resource_version) - int(rv) < 200:
        assert time.monotonic() < deadline, "churn wrote fewer than 200 changes in 10 s"
        time.sleep(0.02)
    simcluster.stop_churn()
    resp = core.list_pod_for_all_namespaces(
        watch=True, resource_version=rv, timeout_seconds=1, _preload_content=False
    )
    types = [e["type"] for e in _lines(resp)]
    assert types.count("ADDED") >= 10 and "MODIFIED" in types
    # every churn pod that is Running shows an IP its pool holds for it
    pools = {(p["metadata"]["name"]): p for p in simcluster.list("ippools")}
    held = {(a["podref"]) for p in pools.values() for a in p["spec"]["allocations"].values()}
    for p in simcluster.list("pods"):
        if p["metadata"]["name"].startswith("churn-") and p["status"]["phase"] == "Running":
            assert f"{p['metadata']['namespace']}/{p['metadata']['name']}" in held


def test_big_list_is_streamed_and_parses(simcluster, core):
    from simcluster import server as srv

    simcluster.seed(small_cluster(120).objects())
    old = srv.STREAM_ABOVE
    srv.STREAM_ABOVE = 10
    try:
        body = raw(core.list_pod_for_all_namespaces(_preload_content=False))
        assert len(body["items"]) == 120 and body["metadata"]["resourceVersion"].isdigit()
        assert len(core.list_pod_for_all_namespaces().items) == 120
    finally:
        srv.STREAM_ABOVE = old


def test_shared_informer_converges_through_a_410(simcluster, core):
    from kubernetes.informer.informer import SharedInformer

    simcluster.create(
        "pods",
        {
            "metadata": {"name": "i0", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    inf = SharedInformer(core.list_namespaced_pod, namespace="default")
    inf.start()
    try:

        def names():
            return sorted(p.metadata.name for p in inf.cache.list())

        def wait_for(want, timeout=8.0):
            t0 = time.monotonic()
            while time.monotonic() - t0 < timeout:
                if names() == want:
                    return True
                time.sleep(0.05)
            return False

        assert wait_for(["i0"])
        simcluster.create(
            "pods",
            {
                "metadata": {"name": "i1", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
        assert wait_for(["i0", "i1"])
        # forget history, cut the watch, change things: the informer must re-list
        simcluster.compact()
        simcluster.drop_watches()
        simcluster.delete("pods", "default", "i0")
        simcluster.create(
            "pods",
            {
                "metadata": {"name": "i2", "namespace": "default"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        )
        assert wait_for(["i1", "i2"]), names()
    finally:
        inf.stop()


def test_watch_list_initial_events_end_bookmark(simcluster, core):
    simcluster.create(
        "pods",
        {
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    resp = core.list_namespaced_pod(
        "default",
        watch=True,
        send_initial_events=True,
        allow_watch_bookmarks=True,
        resource_version_match="NotOlderThan",
        timeout_seconds=1,
        _preload_content=False,
    )
    events = list(_lines(resp))
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_strategic_merge_keys_conditions_by_type(simcluster, core):
    simcluster.load("demo")
    node = core.patch_node_status(
        "sim-node-01",
        {
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady"}]
            }
        },
    )
    conds = {c.type: (c.status, c.reason) for c in node.status.conditions}
    assert conds["Ready"] == ("False", "KubeletNotReady")
    assert conds["MemoryPressure"][0] == "False" and len(conds) == 4


def test_filtered_watch_sees_objects_enter_and_leave_the_selection(simcluster, core):
    pod = {
        "metadata": {"name": "m", "namespace": "default", "labels": {"app": "a"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]},
    }
    simcluster.create("pods", pod)
    rv = simcluster.resource_version
    simcluster.patch("pods", "default", "m", {"metadata": {"labels": {"app": "b"}}})  # enters
    simcluster.patch("pods", "default", "m", {"metadata": {"labels": {"tier": "x"}}})  # stays
    simcluster.patch("pods", "default", "m", {"metadata": {"labels": {"app": "c"}}})  # leaves
    simcluster.patch("pods", "default", "m", {"metadata": {"labels": {"tier": "y"}}})  # still out
    resp = core.list_namespaced_pod(
        "default",
        watch=True,
        resource_version=rv,
        label_selector="app=b",
        timeout_seconds=1,
        _preload_content=False,
    )
    assert [e["type"] for e in _lines(resp)] == ["ADDED", "MODIFIED", "DELETED"]


def test_create_without_name_is_422_and_generate_name_works(simcluster, custom, core):
    body = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {},
        "spec": {"config": ""},
    }
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(
            *NAD, "default", "network-attachment-definitions", body
        )
    assert exc.value.status == 422
    cause = json.loads(exc.value.body)["details"]["causes"][0]
    assert cause["reason"] == "FieldValueRequired" and cause["field"] == "metadata.name"
    pod = core.create_namespaced_pod(
        "default",
        {
            "metadata": {"generateName": "gen-"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
        },
    )
    assert pod.metadata.name.startswith("gen-") and len(pod.metadata.name) == 9
