"""Building an API client for a cluster: from a kubeconfig (+ context) or in-cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException


class ClusterConnection(Protocol):
    """What is needed to connect; ippam.models.Cluster satisfies it."""

    name: str
    kubeconfig: str
    context: str
    in_cluster: bool


@dataclass(eq=False)  # not frozen: Python sets __traceback__ on exceptions as they propagate
class KubeError(Exception):
    """An API failure in words a person can act on. `status` is the HTTP code (0: no answer)."""

    message: str
    status: int = 0
    reason: str = ""

    def __str__(self) -> str:
        return self.message


def api_client_for(cluster: ClusterConnection) -> client.ApiClient:
    """A fresh ApiClient for the cluster. Raises KubeError when the configuration is unusable."""
    configuration = client.Configuration()
    try:
        if cluster.in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(
                config_file=cluster.kubeconfig,
                context=cluster.context or None,
                client_configuration=configuration,
                persist_config=False,
            )
    except (ConfigException, OSError, TypeError, ValueError) as exc:
        where = (
            "the in-cluster service account"
            if cluster.in_cluster
            else f"kubeconfig {cluster.kubeconfig!r}"
        )
        raise KubeError(f"cluster {cluster.name}: cannot load {where}: {exc}") from exc
    configuration.retries = 0  # ippam retries itself, with backoff, where it is safe to
    return client.ApiClient(configuration)


def error_from_api_exception(exc: ApiException, doing: str) -> KubeError:
    """Turn the client's exception into a KubeError carrying the Kubernetes Status message."""
    import json

    message = exc.reason or "error"
    reason = ""
    try:
        body = json.loads(exc.body or "{}")
        message = body.get("message") or message
        reason = body.get("reason") or ""
    except (TypeError, ValueError):
        pass
    return KubeError(
        f"{doing}: {message} (HTTP {exc.status})", status=exc.status or 0, reason=reason
    )
