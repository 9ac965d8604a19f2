"""Every Kubernetes API permission ippam uses, in one place.

deploy/rbac.yaml grants exactly these (tests/test_deploy.py renders the manifests and fails
when the two differ, and records the requests a sync, the watcher, reclamation and NAD
creation make against simcluster: each must be granted here, and each grant must be used).
Add a rule here in the same change that adds an API call under ippam/kube/.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One ClusterRole rule: `verbs` on `resource` of API `group` ("" is the core API)."""

    group: str
    resource: str
    verbs: frozenset[str]
    why: str


_READ = frozenset({"list", "watch"})

RULES: tuple[Rule, ...] = (
    Rule("", "pods", _READ | {"get"}, "sync and watch; reclaim re-reads the podref's pod"),
    Rule("", "nodes", _READ, "sync and watch; a one-item list tells a rebuilt cluster"),
    Rule("", "events", _READ, "Multus and whereabouts report attachments only as Pod events"),
    # The kube-system namespace's uid tells a cluster re-created under the same name.
    Rule("", "namespaces", frozenset({"get"}), "the kube-system uid (rebuilt cluster)"),
    Rule(
        "k8s.cni.cncf.io",
        "network-attachment-definitions",
        _READ | {"get", "create"},
        "sync and watch; admins create NADs, and a timed-out create is settled by a read",
    ),
    Rule(
        "whereabouts.cni.cncf.io",
        "ippools",
        _READ | {"get", "patch"},
        "sync and watch; reclaim re-reads the pool and removes one allocation (JSON Patch)",
    ),
    Rule(
        "whereabouts.cni.cncf.io",
        "overlappingrangeipreservations",
        _READ | {"get", "delete"},
        "sync and watch; reclaim re-reads and deletes the reservation of a freed address",
    ),
    Rule("whereabouts.cni.cncf.io", "nodeslicepools", _READ, "sync and watch (whereabouts 0.9+)"),
)
