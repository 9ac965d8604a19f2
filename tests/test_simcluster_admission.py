"""simcluster admits writes as a kube-apiserver does: the real CRD schemas (kept in
simcluster/crds/ with their source), names per kind, pruning, fieldValidation and
managedFields. Driven over HTTP with the official client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from simcluster.resources import CRD_DIR, real_crds

WB = ("whereabouts.cni.cncf.io", "v1alpha1")
NAD = ("k8s.cni.cncf.io", "v1")
JSON_PATCH = "application/json-patch+json"


@pytest.fixture
def api(simcluster):
    c = config.new_client_from_config(config_file=simcluster.kubeconfig, context="simcluster")
    yield c
    c.close()


@pytest.fixture
def custom(api):
    return client.CustomObjectsApi(api)


def http(url: str, method: str = "GET", body: str | None = None, headers=None):
    req = urllib.request.Request(
        url, data=body.encode() if body else None, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def status_of(exc: ApiException) -> dict:
    return json.loads(exc.body)


def ippool(name: str, **spec) -> dict:
    return {
        "apiVersion": "whereabouts.cni.cncf.io/v1alpha1",
        "kind": "IPPool",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {"range": "10.1.0.0/24", "allocations": {}, **spec},
    }


def create_pool(custom, body, **kw):
    return custom.create_namespaced_custom_object(*WB, "kube-system", "ippools", body, **kw)


# ------------------------------------------------------------------ the real schemas


def test_the_kept_crds_name_their_source_and_version():
    files = sorted(p.name for p in CRD_DIR.glob("*.yaml"))
    assert files == [
        "k8s.cni.cncf.io_network-attachment-definitions.yaml",
        "whereabouts.cni.cncf.io_ippools.yaml",
        "whereabouts.cni.cncf.io_nodeslicepools.yaml",
        "whereabouts.cni.cncf.io_overlappingrangeipreservations.yaml",
    ]
    for path in CRD_DIR.glob("*.yaml"):
        head = path.read_text().split("---", 1)[0]
        assert "Copied verbatim" in head or "copied verbatim" in head, path.name
        assert "Apache License 2.0" in head, path.name
        assert ("v0.9.4" in head) or ("v4.3.0" in head), path.name
    crds = real_crds()
    pool = crds["ippools.whereabouts.cni.cncf.io"]["spec"]["versions"][0]
    alloc = pool["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["allocations"]
    assert alloc["additionalProperties"]["required"] == ["id", "podref"]
    slices = crds["nodeslicepools.whereabouts.cni.cncf.io"]["spec"]["versions"][0]
    props = slices["schema"]["openAPIV3Schema"]["properties"]
    assert props["spec"]["required"] == ["range", "sliceSize"]
    assert props["status"]["required"] == ["allocations"]
    assert props["status"]["properties"]["allocations"]["items"]["required"] == [
        "nodeName",
        "sliceRange",
    ]
    nad = crds["network-attachment-definitions.k8s.cni.cncf.io"]["spec"]["names"]
    assert nad["shortNames"] == ["nad", "net-attach-def"]


def test_served_crds_are_the_kept_ones(simcluster, api):
    ext = client.ApiextensionsV1Api(api)
    served = {c.metadata.name: c for c in ext.list_custom_resource_definition().items}
    for name, doc in real_crds().items():
        got = api.sanitize_for_serialization(served[name])
        assert got["spec"]["versions"][0]["schema"] == doc["spec"]["versions"][0]["schema"]
        assert got["spec"]["names"] == doc["spec"]["names"]
        assert got["status"]["acceptedNames"]["kind"] == doc["spec"]["names"]["kind"]


def test_discovery_lists_short_names_and_categories(simcluster, api):
    resources = client.CoreV1Api(api).get_api_resources().resources
    pods = next(r for r in resources if r.name == "pods")
    assert pods.short_names == ["po"] and pods.categories == ["all"]
    nad = client.CustomObjectsApi(api).get_api_resources(*NAD).resources[0]
    assert nad.short_names == ["nad", "net-attach-def"]


def test_openapi_v3_serves_the_crd_schema(simcluster, api):
    status, body, _ = http(simcluster.url + "/openapi/v3/apis/whereabouts.cni.cncf.io/v1alpha1")
    assert status == 200
    doc = json.loads(body)
    schemas = doc["components"]["schemas"]
    pool = schemas["io.cncf.cni.whereabouts.v1alpha1.IPPool"]
    alloc = pool["properties"]["spec"]["properties"]["allocations"]["additionalProperties"]
    assert alloc["required"] == ["id", "podref"]
    assert pool["x-kubernetes-group-version-kind"] == [
        {"group": "whereabouts.cni.cncf.io", "version": "v1alpha1", "kind": "IPPool"}
    ]


# ------------------------------------------------------------------ 422 Invalid


def test_the_issues_bad_ippool_is_invalid_with_a_cause_per_field(simcluster, custom):
    body = ippool("Bad_Name:1", allocations={"1": {"id": "c1", "extra": "x"}})
    with pytest.raises(ApiException) as err:
        create_pool(custom, body)
    assert err.value.status == 422
    st = status_of(err.value)
    assert st["reason"] == "Invalid" and st["kind"] == "Status"
    assert st["details"]["kind"] == "IPPool"
    assert st["details"]["group"] == "whereabouts.cni.cncf.io"
    causes = {(c["field"], c["reason"]) for c in st["details"]["causes"]}
    assert causes == {
        ("metadata.name", "FieldValueInvalid"),
        ("spec.allocations[1].podref", "FieldValueRequired"),
    }
    assert st["message"].startswith('IPPool.whereabouts.cni.cncf.io "Bad_Name:1" is invalid: [')
    assert "a lowercase RFC 1123 subdomain" in st["message"]
    assert simcluster.get("ippools", "kube-system", "Bad_Name:1") is None


def test_type_and_required_errors_are_worded_like_the_apiserver(simcluster, custom):
    body = ippool("typed", range=24)
    del body["spec"]["allocations"]
    with pytest.raises(ApiException) as err:
        create_pool(custom, body)
    causes = {c["field"]: c for c in status_of(err.value)["details"]["causes"]}
    assert causes["spec.allocations"] == {
        "reason": "FieldValueRequired",
        "message": "Required value",
        "field": "spec.allocations",
    }
    assert causes["spec.range"]["reason"] == "FieldValueTypeInvalid"
    assert causes["spec.range"]["message"] == (
        'Invalid value: "integer": spec.range in body must be of type string: "integer"'
    )


def test_orip_without_spec_and_nodeslicepool_without_required_fields(simcluster, custom):
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            *WB,
            "kube-system",
            "overlappingrangeipreservations",
            {"metadata": {"name": "10.1.0.5"}},
        )
    assert [c["field"] for c in status_of(err.value)["details"]["causes"]] == ["spec"]
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            *WB,
            "kube-system",
            "nodeslicepools",
            {
                "metadata": {"name": "fastnet"},
                "spec": {"range": "10.20.0.0/24"},
                "status": {"allocations": [{"nodeName": "w0"}]},
            },
        )
    fields = sorted(c["field"] for c in status_of(err.value)["details"]["causes"])
    assert fields == ["spec.sliceSize", "status.allocations[0].sliceRange"]


def test_invalid_nad_and_names_per_kind(simcluster, custom, api):
    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            *NAD,
            "default",
            "network-attachment-definitions",
            {"metadata": {"name": "-x"}, "spec": {"config": {"cniVersion": "1.0.0"}}},
        )
    causes = {c["field"]: c["reason"] for c in status_of(err.value)["details"]["causes"]}
    assert causes == {"metadata.name": "FieldValueInvalid", "spec.config": "FieldValueTypeInvalid"}
    core = client.CoreV1Api(api)
    # a namespace is a DNS-1123 label (no dots); a node may be a subdomain
    with pytest.raises(ApiException) as err:
        core.create_namespace({"metadata": {"name": "team.a"}})
    (cause,) = status_of(err.value)["details"]["causes"]
    assert "RFC 1123 label" in cause["message"]
    core.create_node({"metadata": {"name": "node-1.example.com"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_pod(
            "default",
            {
                "metadata": {"name": "A" * 254},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        )
    messages = [c["message"] for c in status_of(err.value)["details"]["causes"]]
    assert any("must be no more than 253 characters" in m for m in messages)


def test_patches_are_admitted_too(simcluster, custom):
    create_pool(custom, ippool("10.1.0.0-24"))
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            *WB,
            "kube-system",
            "ippools",
            "10.1.0.0-24",
            [{"op": "add", "path": "/spec/allocations/5", "value": {"id": "c5"}}],
            _content_type=JSON_PATCH,
        )
    assert err.value.status == 422
    (cause,) = status_of(err.value)["details"]["causes"]
    assert cause["field"] == "spec.allocations[5].podref"
    stored = simcluster.get("ippools", "kube-system", "10.1.0.0-24")
    assert stored["spec"]["allocations"] == {}
    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(
            *WB,
            "kube-system",
            "ippools",
            "10.1.0.0-24",
            {**stored, "spec": {"range": "10.1.0.0/24"}},
        )
    assert [c["field"] for c in status_of(err.value)["details"]["causes"]] == ["spec.allocations"]


# ------------------------------------------------------------------ pruning and fieldValidation


def _messy() -> dict:
    body = ippool("10.2.0.0-24", range="10.2.0.0/24")
    body["metadata"]["bogus"] = "x"
    body["spec"]["junk"] = 1
    body["spec"]["allocations"] = {"1": {"id": "c1", "podref": "default/p", "extra": True}}
    body["status"] = {"phase": "whatever"}
    return body


def test_unknown_fields_are_pruned_with_a_warning_by_default(simcluster, api, custom):
    resp = create_pool(custom, _messy(), _preload_content=False)
    warnings = resp.headers.getlist("Warning") if hasattr(resp.headers, "getlist") else []
    warnings = warnings or [v for k, v in resp.getheaders().items() if k.lower() == "warning"]
    text = " ".join(warnings)
    for f in ("metadata.bogus", "spec.junk", "spec.allocations[1].extra", "status"):
        assert f'unknown field \\"{f}\\"' in text, f
    stored = simcluster.get("ippools", "kube-system", "10.2.0.0-24")
    assert "bogus" not in stored["metadata"]
    assert "status" not in stored
    assert stored["spec"] == {
        "range": "10.2.0.0/24",
        "allocations": {"1": {"id": "c1", "podref": "default/p"}},
    }


def test_strict_field_validation_refuses_unknown_fields(simcluster, custom):
    with pytest.raises(ApiException) as err:
        create_pool(custom, _messy(), field_validation="Strict")
    assert err.value.status == 400
    st = status_of(err.value)
    assert st["reason"] == "BadRequest"
    assert st["message"].startswith(
        'IPPool in version "v1alpha1" cannot be handled as a IPPool: strict decoding error: '
    )
    assert 'unknown field "spec.junk"' in st["message"]
    assert simcluster.get("ippools", "kube-system", "10.2.0.0-24") is None


def test_ignore_field_validation_prunes_silently(simcluster, custom):
    resp = create_pool(custom, _messy(), field_validation="Ignore", _preload_content=False)
    assert "Warning" not in resp.getheaders()
    assert "junk" not in simcluster.get("ippools", "kube-system", "10.2.0.0-24")["spec"]
    with pytest.raises(ApiException) as err:
        create_pool(custom, ippool("x"), field_validation="Loose")
    assert err.value.status == 400


def test_nodeslicepool_status_is_kept_as_its_crd_declares_it(simcluster, custom):
    body = {
        "metadata": {"name": "fastnet"},
        "spec": {"range": "10.20.0.0/24", "sliceSize": "/27"},
        "status": {"allocations": [{"nodeName": "w0", "sliceRange": "10.20.0.0/27"}]},
    }
    created = custom.create_namespaced_custom_object(*WB, "kube-system", "nodeslicepools", body)
    assert created["status"] == body["status"]
    # no CRD declares a status subresource: /status does not exist
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(
            *WB, "kube-system", "nodeslicepools", "fastnet", {"status": {"allocations": []}}
        )
    assert err.value.status == 404


# ------------------------------------------------------------------ managedFields


def test_created_and_patched_objects_carry_managed_fields(simcluster, api, custom):
    create_pool(custom, ippool("10.3.0.0-24", range="10.3.0.0/24"), field_manager="whereabouts")
    pool = simcluster.get("ippools", "kube-system", "10.3.0.0-24")
    (mf,) = pool["metadata"]["managedFields"]
    assert mf["manager"] == "whereabouts" and mf["operation"] == "Update"
    assert mf["apiVersion"] == "whereabouts.cni.cncf.io/v1alpha1"
    assert mf["fieldsType"] == "FieldsV1"
    assert mf["fieldsV1"] == {"f:spec": {"f:allocations": {}, "f:range": {}}}
    # without fieldManager the manager is the User-Agent's prefix (the client's generator)
    custom.patch_namespaced_custom_object(
        *WB,
        "kube-system",
        "ippools",
        "10.3.0.0-24",
        [
            {
                "op": "add",
                "path": "/spec/allocations/7",
                "value": {"id": "c7", "podref": "default/p7", "ifname": "net1"},
            }
        ],
        _content_type=JSON_PATCH,
    )
    pool = simcluster.get("ippools", "kube-system", "10.3.0.0-24")
    by_manager = {e["manager"]: e for e in pool["metadata"]["managedFields"]}
    agent = api.user_agent.split("/", 1)[0]
    assert set(by_manager) == {"whereabouts", agent}
    mine = by_manager[agent]["fieldsV1"]
    assert mine == {
        "f:spec": {
            "f:allocations": {
                "f:7": {".": {}, "f:id": {}, "f:ifname": {}, "f:podref": {}},
            }
        }
    }


def test_server_side_apply_records_an_apply_entry(simcluster):
    body = yaml.safe_dump(
        {
            "apiVersion": "k8s.cni.cncf.io/v1",
            "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "applied", "namespace": "default", "labels": {"a": "b"}},
            "spec": {"config": "{}"},
        }
    )
    url = simcluster.url + (
        "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/applied"
    )
    apply = {"Content-Type": "application/apply-patch+yaml"}
    status, data, _ = http(url + "?fieldManager=gitops", "PATCH", body, apply)
    assert status == 201
    (mf,) = json.loads(data)["metadata"]["managedFields"]
    assert mf["manager"] == "gitops" and mf["operation"] == "Apply"
    assert mf["fieldsV1"] == {
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
        "f:spec": {"f:config": {}},
    }
    status, data, _ = http(url, "PATCH", body, apply)  # apply names its manager
    assert status == 400, data


# ------------------------------------------------------------------ the product's writes


@dataclass
class Connection:
    name: str
    kubeconfig: str
    context: str = "simcluster"
    in_cluster: bool = False


def test_the_products_writes_pass_admission_unpruned(simcluster):
    """The NAD form's create and reclaim's guarded JSON patch, as ippam sends them: admitted,
    nothing pruned (no Warning), answered with managedFields."""
    from ippam.kube.nads import create_nad
    from ippam.kube.writes import KubeWrites, json_pointer
    from ippam.nadbuilder import MacVlan, NADSpec, WhereaboutsIPAM, build_manifest

    conn = Connection("sim", simcluster.kubeconfig)
    spec = NADSpec(
        "form-net",
        "default",
        MacVlan(master="eth1"),
        WhereaboutsIPAM("10.77.0.0/24", exclude=("10.77.0.0/28",), gateway="10.77.0.1"),
        node_selector="zone=a",
    )
    manifest = build_manifest(spec)
    created = create_nad(conn, manifest)
    assert created["spec"] == manifest["spec"]
    assert created["metadata"]["annotations"] == manifest["metadata"]["annotations"]
    assert created["metadata"]["managedFields"][0]["operation"] == "Update"
    assert not [r for r in simcluster.requests if r["status"] not in (200, 201)]

    simcluster.create(
        "ippools",
        ippool(
            "10.77.0.0-24",
            range="10.77.0.0/24",
            allocations={"20": {"id": "c", "podref": "default/gone", "ifname": "net1"}},
        ),
    )
    pool = simcluster.get("ippools", "kube-system", "10.77.0.0-24")
    path = json_pointer("spec", "allocations", "20")
    ops = [
        {
            "op": "test",
            "path": "/metadata/resourceVersion",
            "value": pool["metadata"]["resourceVersion"],
        },
        {"op": "test", "path": f"{path}/podref", "value": "default/gone"},
        {"op": "remove", "path": path},
    ]
    with KubeWrites(conn) as writes:
        patched = writes.patch_ippool_json("kube-system", "10.77.0.0-24", ops)
    assert patched["spec"]["allocations"] == {}
    # a removal gives the patcher no field to own; the removed one leaves the creator's set
    (entry,) = patched["metadata"]["managedFields"]
    assert entry["manager"] == "simcluster"
    assert entry["fieldsV1"] == {"f:spec": {"f:allocations": {}, "f:range": {}}}
