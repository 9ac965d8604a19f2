"""The resource types simcluster serves, their CRDs and the discovery documents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
        return d


WB = "whereabouts.cni.cncf.io"
TYPES: list[RType] = [
    RType(
        "namespaces", "namespace", "Namespace", "", "v1", False, ("ns",), fields=_namespace_fields
    ),
    RType("nodes", "node", "Node", "", "v1", False, ("no",), fields=_node_fields),
    RType("pods", "pod", "Pod", "", "v1", True, ("po",), fields=_pod_fields),
    RType("events", "event", "Event", "", "v1", True, ("ev",), fields=_event_fields),
    RType(
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
        "v1",
        False,
        ("crd", "crds"),
    ),
    RType(
        "network-attachment-definitions",
        "network-attachment-definition",
        "NetworkAttachmentDefinition",
        "k8s.cni.cncf.io",
        "v1",
        True,
        ("net-attach-def",),
        custom=True,
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


_SCHEMAS = {
    "network-attachment-definitions": {
        "type": "object",
        "description": "NetworkAttachmentDefinition is a CRD schema specified by the Network "
        "Plumbing Working Group to express the intent for attaching pods to one or more "
        "logical or physical networks.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {"config": {"type": "string"}},
            },
        },
    },
    "ippools": {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["allocations", "range"],
                "properties": {
                    "allocations": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "required": ["id"],
                            "properties": {
                                "id": {"type": "string"},
                                "podref": {"type": "string"},
                                "ifname": {"type": "string"},
                            },
                        },
                    },
                    "range": {"type": "string"},
                },
            },
        },
    },
    "overlappingrangeipreservations": {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["podref"],
                "properties": {
                    "containerid": {"type": "string"},
                    "podref": {"type": "string"},
                    "ifname": {"type": "string"},
                },
            },
        },
    },
    "nodeslicepools": {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {"range": {"type": "string"}, "sliceSize": {"type": "string"}},
            },
            "status": {
                "type": "object",
                "properties": {
                    "allocations": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "nodeName": {"type": "string"},
                                "sliceRange": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
    },
}


def crd_object(t: RType) -> dict:
    names: dict[str, str | list[str]] = {
        "plural": t.plural,
        "singular": t.singular,
        "kind": t.kind,
        "listKind": t.list_kind,
    }
    if t.short_names:
        names["shortNames"] = list(t.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": t.crd_name},
        "spec": {
            "group": t.group,
            "names": names,
            "scope": "Namespaced" if t.namespaced else "Cluster",
            "versions": [
                {
                    "name": t.version,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": _SCHEMAS[t.plural]},
                }
            ],
        },
        "status": {
            "acceptedNames": names,
            "conditions": [
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                }
            ],
            "storedVersions": [t.version],
        },
    }
