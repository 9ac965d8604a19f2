"""The resource types simcluster serves, their CRDs and the discovery documents."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def _pod_fields(obj: dict) -> dict:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    return {
        "spec.nodeName": spec.get("nodeName") or "",
        "status.phase": status.get("phase") or "",
        "status.podIP": status.get("podIP") or "",
        "spec.schedulerName": spec.get("schedulerName") or "",
        "spec.serviceAccountName": spec.get("serviceAccountName") or "",
        "spec.restartPolicy": spec.get("restartPolicy") or "",
    }


def _event_fields(obj: dict) -> dict:
    io = obj.get("involvedObject") or {}
    src = obj.get("source") or {}
    return {
        "involvedObject.kind": io.get("kind") or "",
        "involvedObject.name": io.get("name") or "",
        "involvedObject.namespace": io.get("namespace") or "",
        "involvedObject.uid": io.get("uid") or "",
        "involvedObject.apiVersion": io.get("apiVersion") or "",
        "involvedObject.resourceVersion": io.get("resourceVersion") or "",
        "involvedObject.fieldPath": io.get("fieldPath") or "",
        "reason": obj.get("reason") or "",
        "reportingComponent": obj.get("reportingComponent") or "",
        "source": src.get("component") or "",
        "type": obj.get("type") or "",
    }


def _node_fields(obj: dict) -> dict:
    return {"spec.unschedulable": str(bool((obj.get("spec") or {}).get("unschedulable"))).lower()}


def _namespace_fields(obj: dict) -> dict:
    return {"status.phase": (obj.get("status") or {}).get("phase") or ""}


@dataclass(frozen=True)
class RType:
    plural: str
    singular: str
    kind: str
    group: str  # "" for core
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    custom: bool = False  # served only while its CRD exists
    fields: Callable[[dict], dict] | None = field(default=None, compare=False)
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def qualified(self) -> str:
        """How the apiserver names the resource in messages: pods, ippools.whereabouts.cni.cncf.io."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"

    def field_values(self, obj: dict) -> dict | None:
        return self.fields(obj) if self.fields else None

    def discovery(self) -> dict:
        d = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": VERBS,
        }
        if self.short_names:
            d["shortNames"] = list(self.short_names)
        if self.categories:
            d["categories"] = list(self.categories)
        return d


CRD_DIR = Path(__file__).parent / "crds"


@functools.cache
def real_crds() -> dict[str, dict]:
    """The published CRDs (whereabouts v0.9.4, Multus' NAD), by name: what a real cluster
    installs, loaded from simcluster/crds/ (each file names its source and version)."""
    out = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                out[doc["metadata"]["name"]] = doc
    return out


def _crd_names(crd_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names = real_crds()[crd_name]["spec"]["names"]
    return tuple(names.get("shortNames") or ()), tuple(names.get("categories") or ())


WB = "whereabouts.cni.cncf.io"
NAD_SHORT, NAD_CATEGORIES = _crd_names("network-attachment-definitions.k8s.cni.cncf.io")
TYPES: list[RType] = [
    RType(
        "namespaces", "namespace", "Namespace", "", "v1", False, ("ns",), fields=_namespace_fields
    ),
    RType("nodes", "node", "Node", "", "v1", False, ("no",), fields=_node_fields),
    RType("pods", "pod", "Pod", "", "v1", True, ("po",), fields=_pod_fields, categories=("all",)),
    RType("events", "event", "Event", "", "v1", True, ("ev",), fields=_event_fields),
    RType(
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        "v1",
        False,
        ("crd", "crds"),
        categories=("api-extensions",),
    ),
    RType(
        "network-attachment-definitions",
        "network-attachment-definition",
        "NetworkAttachmentDefinition",
        "k8s.cni.cncf.io",
        "v1",
        True,
        NAD_SHORT,
        custom=True,
        categories=NAD_CATEGORIES,
    ),
    RType("ippools", "ippool", "IPPool", WB, "v1alpha1", True, (), custom=True),
    RType(
        "overlappingrangeipreservations",
        "overlappingrangeipreservation",
        "OverlappingRangeIPReservation",
        WB,
        "v1alpha1",
        True,
        (),
        custom=True,
    ),
    RType(
        "nodeslicepools", "nodeslicepool", "NodeSlicePool", WB, "v1alpha1", True, (), custom=True
    ),
]
BY_PLURAL: dict[str, RType] = {t.plural: t for t in TYPES}
BY_GV: dict[tuple[str, str, str], RType] = {(t.group, t.version, t.plural): t for t in TYPES}
PLURALS = [t.plural for t in TYPES]
CUSTOM = [t for t in TYPES if t.custom]


def groups() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for t in TYPES:
        if t.group:
            out.setdefault(t.group, [])
            if t.version not in out[t.group]:
                out[t.group].append(t.version)
    return out


def crd_object(t: RType) -> dict:
    """The CRD object as the apiserver serves it: the published document plus its status."""
    crd = copy.deepcopy(real_crds()[t.crd_name])
    names = dict(crd["spec"]["names"])
    names.setdefault("listKind", names["kind"] + "List")
    crd["status"] = {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
            },
        ],
        "storedVersions": [v["name"] for v in crd["spec"]["versions"] if v.get("storage")],
    }
    return crd


def crd_version(crd: dict, version: str) -> dict:
    return next((v for v in crd["spec"]["versions"] if v["name"] == version), {})
