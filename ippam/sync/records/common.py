"""Shared by every kind: timestamps, JSON, the lenient readers of odd values and the
references every object carries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

EVENT_REASONS = frozenset(
    {
        "AddedInterface",
        "FailedCreatePodSandBox",
        "IPAddressGarbageCollected",
        "IPAddressGarbageCollectionFailed",
    }
)


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    # The API server writes RFC 3339 with a zone ("Z"); a zone-less stamp from anything
    # else is read as UTC rather than left naive (naive and aware datetimes do not compare).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _text_of(value: Any) -> str:
    """`str(value or "")`, how a metadata field is read; quick for the usual string."""
    return value if type(value) is str else str(value or "")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _kind(value: Any) -> str:
    """A JSON value's type in JSON's words, for problems ("null", "a string", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _show(value: Any, limit: int = 60) -> str:
    """A short quotation of an odd value for a problem sentence."""
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= limit else f"'{value[: limit - 5]}...'"
    try:
        text = dumps(value)
    except TypeError:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _podref_problem(podref: Any) -> str | None:
    """What is wrong with a podref, or None. whereabouts writes `namespace/name`
    (pkg/allocate: fmt.Sprintf("%s/%s", ...)); anything else names no pod it can check."""
    if not isinstance(podref, str):
        return f"podref is {_kind(podref)}, not a string 'namespace/name'"
    namespace, sep, name = podref.partition("/")
    if not sep or not namespace or not name or "/" in name:
        return f"podref {_show(podref)} is not 'namespace/name'"
    return None


def object_key(obj: dict[str, Any], namespaced: bool = True) -> tuple[str, str]:
    meta = _meta(obj)
    return (str(meta.get("namespace") or "") if namespaced else "", str(meta.get("name") or ""))


def resource_version(obj: dict[str, Any]) -> str:
    return str(_meta(obj).get("resourceVersion") or "")


def _common(obj: dict[str, Any]) -> tuple[str, str, str, datetime | None]:
    meta = _meta(obj)
    return (
        str(meta.get("name") or ""),
        str(meta.get("uid") or ""),
        str(meta.get("resourceVersion") or ""),
        timestamp(meta.get("creationTimestamp")),
    )
