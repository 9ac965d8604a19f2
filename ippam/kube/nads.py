"""Creating NetworkAttachmentDefinitions through the API (k8s.cni.cncf.io/v1)."""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from ippam.kube.client import ClusterConnection, KubeError, api_client_for, error_from_api_exception

GROUP = "k8s.cni.cncf.io"
VERSION = "v1"
PLURAL = "network-attachment-definitions"

__all__ = ["create_nad"]


def create_nad(
    cluster: ClusterConnection, manifest: dict[str, Any], *, timeout: float = 30
) -> dict[str, Any]:
    """POST ``manifest``; return the object the API server stored (a plain dict).

    Raises KubeError carrying the apiserver's Status message: 409 AlreadyExists when the
    name is taken, 422 Invalid (with the causes) when the object is refused, status 0 when
    the server did not answer.
    """
    metadata = manifest.get("metadata") or {}
    namespace = metadata.get("namespace") or "default"
    doing = f"creating NetworkAttachmentDefinition {namespace}/{metadata.get('name', '?')} in cluster {cluster.name}"
    api = api_client_for(cluster)
    try:
        created = client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, manifest, _request_timeout=timeout
        )
    except ApiException as exc:
        error = error_from_api_exception(exc, doing)
        causes = _causes(exc)
        if causes:
            error = KubeError(
                f"{error.message}: {causes}", status=error.status, reason=error.reason
            )
        raise error from exc
    except (HTTPError, OSError) as exc:
        raise KubeError(f"{doing}: the API server did not answer ({exc})") from exc
    finally:
        api.close()
    if not isinstance(created, dict):
        # The client returns None for any status other than the 201 it expects.
        raise KubeError(f"{doing}: the API server answered without the created object")
    return created


def _causes(exc: ApiException) -> str:
    import json

    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return ""
    causes = ((body.get("details") or {}).get("causes")) or []
    parts = []
    for cause in causes:
        if isinstance(cause, dict):
            text = cause.get("message") or cause.get("reason") or ""
            where = cause.get("field")
            parts.append(f"{where}: {text}" if where else text)
    message = body.get("message") or ""
    return "; ".join(p for p in parts if p and p not in message)
