"""Creating NetworkAttachmentDefinitions through the API (k8s.cni.cncf.io/v1)."""

from __future__ import annotations

import http.client
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
)

from ippam.kube.client import ClusterConnection, KubeError, api_client_for, error_from_api_exception

GROUP = "k8s.cni.cncf.io"
VERSION = "v1"
PLURAL = "network-attachment-definitions"
# Connecting is quick or hopeless; only the read waits for the apiserver (and etcd) to work.
CONNECT_TIMEOUT = 3.0

__all__ = ["WriteOutcomeUnknown", "create_nad", "get_nad"]


class WriteOutcomeUnknown(KubeError):
    """The request went out and no answer came back (a read timeout, a connection reset):
    the apiserver may or may not have stored the object. Only a re-read can tell."""


def _never_sent(exc: BaseException) -> bool:
    """True when the request provably never reached the apiserver (no connection was made);
    anything else after connecting may have been received and acted upon."""
    if isinstance(exc, MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    # NewConnectionError (refused, no route, DNS) is a ConnectTimeoutError in urllib3 2.
    return isinstance(exc, (ConnectTimeoutError, NewConnectionError, ConnectionRefusedError))


def _timeouts(timeout: float) -> tuple[float, float]:
    return (min(CONNECT_TIMEOUT, timeout), timeout)


def create_nad(
    cluster: ClusterConnection, manifest: dict[str, Any], *, timeout: float = 30
) -> dict[str, Any]:
    """POST ``manifest``; return the object the API server stored (a plain dict).

    Raises KubeError carrying the apiserver's Status message: 409 AlreadyExists when the
    name is taken, 422 Invalid (with the causes) when the object is refused, status 0 when
    the server could not be reached (nothing sent). Raises WriteOutcomeUnknown when the
    request was sent but no answer came within ``timeout`` seconds.
    """
    metadata = manifest.get("metadata") or {}
    namespace = metadata.get("namespace") or "default"
    doing = f"creating NetworkAttachmentDefinition {namespace}/{metadata.get('name', '?')} in cluster {cluster.name}"
    api = api_client_for(cluster)
    try:
        created = client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, manifest, _request_timeout=_timeouts(timeout)
        )
    except ApiException as exc:
        error = error_from_api_exception(exc, doing)
        causes = _causes(exc)
        if causes:
            error = KubeError(
                f"{error.message}: {causes}", status=error.status, reason=error.reason
            )
        raise error from exc
    except (HTTPError, OSError, http.client.HTTPException) as exc:
        if _never_sent(exc):
            raise KubeError(
                f"{doing}: could not reach the API server, nothing was sent ({exc})"
            ) from exc
        raise WriteOutcomeUnknown(
            f"{doing}: the API server did not answer within {timeout:g} s ({exc})"
        ) from exc
    finally:
        api.close()
    if not isinstance(created, dict):
        # The client returns None for any status other than the 201 it expects.
        raise KubeError(f"{doing}: the API server answered without the created object")
    return created


def get_nad(
    cluster: ClusterConnection, namespace: str, name: str, *, timeout: float = 3
) -> dict[str, Any] | None:
    """The NAD as the apiserver has it now, or None when it does not exist (404).

    Raises KubeError when the apiserver cannot say (unreachable, slow, any other error).
    """
    doing = f"reading NetworkAttachmentDefinition {namespace}/{name} in cluster {cluster.name}"
    api = api_client_for(cluster)
    try:
        obj = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _request_timeout=_timeouts(timeout)
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise error_from_api_exception(exc, doing) from exc
    except (HTTPError, OSError, http.client.HTTPException) as exc:
        raise KubeError(f"{doing}: the API server did not answer ({exc})") from exc
    finally:
        api.close()
    if not isinstance(obj, dict):
        raise KubeError(f"{doing}: the API server answered without the object")
    return obj


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
