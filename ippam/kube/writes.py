"""The few reads and writes reclamation needs, against the live API server.

Plain dicts in and out (the JSON the API server sent), a KubeError on any failure with the
HTTP status and the Kubernetes reason, so callers can tell a 409 Conflict from a 422 failed
`test` without knowing about the client. Reads that find nothing (404) return None: for
reclamation "the pod is gone" is an answer, not an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ippam.kube.client import ClusterConnection, KubeError, api_client_for, error_from_api_exception
from ippam.kube.holders import HolderIndex, PodListing, holder_index

WHEREABOUTS_GROUP = "whereabouts.cni.cncf.io"
WHEREABOUTS_VERSION = "v1alpha1"
JSON_PATCH = "application/json-patch+json"
REQUEST_TIMEOUT = (5, 30)

__all__ = [
    "HolderIndex",
    "KubeWrites",
    "PodListing",
    "json_pointer",
]


def json_pointer(*parts: str) -> str:
    """An RFC 6901 pointer; `~` and `/` in a part are escaped (`~0`, `~1`)."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def _load(response: Any) -> dict[str, Any]:
    data = response.data if hasattr(response, "data") else response
    if isinstance(data, bytes | str):
        return json.loads(data or b"{}")
    return data


class KubeWrites:
    """One API client for one cluster, reused across the items of a reclaim run."""

    def __init__(self, cluster: ClusterConnection) -> None:
        self.cluster = cluster
        self.api = api_client_for(cluster)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def close(self) -> None:
        self.api.close()

    def __enter__(self) -> KubeWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads -----------------------------------------------------------------------------

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            response = self.core.read_namespaced_pod(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise error_from_api_exception(exc, f"reading pod {namespace}/{name}") from exc
        return _load(response)

    def holder_index(self, addresses: Iterable[Any], *, page_size: int = 500) -> HolderIndex:
        """Every live pod that lists one of `addresses`, from one fresh paged list of pods."""
        return holder_index(self.api, addresses, page_size=page_size)

    def get_ippool(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get_custom("ippools", namespace, name, "IPPool")

    def get_reservation(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get_custom(
            "overlappingrangeipreservations", namespace, name, "OverlappingRangeIPReservation"
        )

    def _get_custom(
        self, plural: str, namespace: str, name: str, kind: str
    ) -> dict[str, Any] | None:
        try:
            response = self.custom.get_namespaced_custom_object(
                WHEREABOUTS_GROUP,
                WHEREABOUTS_VERSION,
                namespace,
                plural,
                name,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise error_from_api_exception(exc, f"reading {kind} {namespace}/{name}") from exc
        return _load(response)

    # --- writes ----------------------------------------------------------------------------

    def patch_ippool_json(
        self, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Apply a JSON Patch (RFC 6902) to an IPPool; a failed `test` op is a 422 KubeError."""
        try:
            response = self.custom.patch_namespaced_custom_object(
                WHEREABOUTS_GROUP,
                WHEREABOUTS_VERSION,
                namespace,
                "ippools",
                name,
                ops,
                _content_type=JSON_PATCH,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            raise error_from_api_exception(exc, f"patching IPPool {namespace}/{name}") from exc
        return _load(response)

    def delete_reservation(self, namespace: str, name: str, *, resource_version: str = "") -> bool:
        """Delete an OverlappingRangeIPReservation; False when it was already gone.

        With `resource_version` the API server refuses (409) if the object changed since it
        was read: the podref we checked is then the podref we delete.
        """
        body = client.V1DeleteOptions(
            preconditions=client.V1Preconditions(resource_version=resource_version)
            if resource_version
            else None
        )
        try:
            self.custom.delete_namespaced_custom_object(
                WHEREABOUTS_GROUP,
                WHEREABOUTS_VERSION,
                namespace,
                "overlappingrangeipreservations",
                name,
                body=body,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise error_from_api_exception(
                exc, f"deleting OverlappingRangeIPReservation {namespace}/{name}"
            ) from exc
        return True


__all__ += ["KubeError", "WHEREABOUTS_GROUP", "WHEREABOUTS_VERSION"]
