"""Admission as the kube-apiserver does it for the kinds simcluster serves.

- Names: a DNS-1123 subdomain for most kinds, a DNS-1123 label for namespaces (the
  apiserver's per-kind name validators; custom resources use the subdomain rule).
- Custom resources: unknown fields are pruned against the CRD's structural
  `openAPIV3Schema` (kept under `x-kubernetes-preserve-unknown-fields`), then the object is
  validated (types, required, enums, patterns, lengths, bounds). Failures are one 422
  Invalid Status whose `details.causes` name each field, worded as the apiserver words them.
- `fieldValidation`: Strict turns pruned fields into a 400 BadRequest ("strict decoding
  error"), Warn (the server default) reports each as a `Warning` header, Ignore drops them
  silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)

# The fields of ObjectMeta: anything else under metadata is an unknown field (the apiserver
# decodes metadata into this struct, so it never stores the rest).
OBJECT_META = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)

VALIDATION_DIRECTIVES = ("Strict", "Warn", "Ignore")


def _quote(value: Any) -> str:
    """How field.Error prints a bad value: strings quoted, the rest as Go prints them."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def required(path: str) -> dict:
    return {"reason": "FieldValueRequired", "message": "Required value", "field": path}


def invalid_value(path: str, value: Any, detail: str) -> dict:
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {_quote(value)}: {detail}",
        "field": path,
    }


def type_invalid(path: str, value: Any, want: str) -> dict:
    got = json_type(value)
    return {
        "reason": "FieldValueTypeInvalid",
        "message": f'Invalid value: "{got}": {path} in body must be of type {want}: "{got}"',
        "field": path,
    }


def not_supported(path: str, value: Any, allowed: list) -> dict:
    return {
        "reason": "FieldValueNotSupported",
        "message": f"Unsupported value: {_quote(value)}: supported values: "
        + ", ".join(_quote(a) for a in allowed),
        "field": path,
    }


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(value: Any, want: str) -> bool:
    got = json_type(value)
    if want == "number":
        return got in ("number", "integer")
    if want == "integer" and got == "number":
        return float(value).is_integer()
    return got == want


# ------------------------------------------------------------------------- names


def name_causes(name: Any, label: bool, path: str = "metadata.name") -> list[dict]:
    if not isinstance(name, str):
        return [type_invalid(path, name, "string")]
    causes = []
    limit, rx, msg = (
        (63, DNS1123_LABEL, LABEL_MSG) if label else (253, DNS1123_SUBDOMAIN, SUBDOMAIN_MSG)
    )
    if len(name) > limit:
        causes.append(invalid_value(path, name, f"must be no more than {limit} characters"))
    if not rx.match(name):
        causes.append(invalid_value(path, name, msg))
    return causes


# ------------------------------------------------------------------------- schemas


@dataclass
class Result:
    """What admission made of an object: the pruned object, its unknown fields, its causes."""

    obj: dict
    unknown: list[str] = field(default_factory=list)
    causes: list[dict] = field(default_factory=list)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def prune(value: Any, schema: dict, path: str, unknown: list[str]) -> Any:
    """Drop what the structural schema does not declare (recording each dropped path)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None and extra is None:
            return value if schema.get("type") != "object" else {}
        out = {}
        for k, v in value.items():
            sub = (props or {}).get(k)
            if sub is not None:
                out[k] = prune(v, sub, _join(path, k), unknown)
            elif isinstance(extra, dict):
                out[k] = prune(v, extra, f"{path}[{k}]", unknown)
            elif extra is True:
                out[k] = v
            else:
                unknown.append(_join(path, k))
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(v, schema["items"], f"{path}[{i}]", unknown) for i, v in enumerate(value)]
    return value


def validate(value: Any, schema: dict, path: str, causes: list[dict]) -> None:
    if value is None:
        if not schema.get("nullable"):
            causes.append(type_invalid(path, value, schema.get("type") or "object"))
        return
    want = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        if json_type(value) not in ("integer", "string"):
            causes.append(type_invalid(path, value, "integer or string"))
            return
    elif want and not _type_ok(value, want):
        causes.append(type_invalid(path, value, want))
        return
    if "enum" in schema and value not in schema["enum"]:
        causes.append(not_supported(path, value, schema["enum"]))
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(
                invalid_value(path, value, f"{path} in body should match '{schema['pattern']}'")
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(
                {
                    "reason": "FieldValueTooLong",
                    "message": f"Too long: may not be more than {schema['maxLength']} bytes",
                    "field": path,
                }
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                invalid_value(
                    path,
                    value,
                    f"{path} in body should be at least {schema['minLength']} chars long",
                )
            )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            causes.append(
                invalid_value(
                    path,
                    value,
                    f"{path} in body should be greater than or equal to {schema['minimum']}",
                )
            )
        if "maximum" in schema and value > schema["maximum"]:
            causes.append(
                invalid_value(
                    path,
                    value,
                    f"{path} in body should be less than or equal to {schema['maximum']}",
                )
            )
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            causes.append(
                {
                    "reason": "FieldValueTooMany",
                    "message": f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                    "field": path,
                }
            )
        if "minItems" in schema and len(value) < schema["minItems"]:
            causes.append(
                invalid_value(
                    path, value, f"{path} in body should have at least {schema['minItems']} items"
                )
            )
        items = schema.get("items")
        if isinstance(items, dict):
            for i, v in enumerate(value):
                validate(v, items, f"{path}[{i}]", causes)
    if isinstance(value, dict):
        for req in schema.get("required") or ():
            if req not in value:
                causes.append(required(_join(path, req)))
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in props:
                validate(v, props[k], _join(path, k), causes)
            elif isinstance(extra, dict):
                validate(v, extra, f"{path}[{k}]", causes)


def _metadata(md: Any, unknown: list[str], causes: list[dict]) -> dict:
    if not isinstance(md, dict):
        causes.append(type_invalid("metadata", md, "object"))
        return {}
    out = {}
    for k, v in md.items():
        if k in OBJECT_META:
            out[k] = v
        else:
            unknown.append(f"metadata.{k}")
    for k in ("labels", "annotations"):
        v = out.get(k)
        if v is not None and not (
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
        ):
            causes.append(type_invalid(f"metadata.{k}", v, "object"))
    return out


def admit_custom(obj: dict, schema: dict) -> Result:
    """Prune and validate a custom resource against its version's openAPIV3Schema."""
    unknown: list[str] = []
    causes: list[dict] = []
    out: dict = {}
    props = schema.get("properties") or {}
    for k, v in obj.items():
        if k in ("apiVersion", "kind"):
            out[k] = v
        elif k == "metadata":
            out[k] = _metadata(v, unknown, causes)
        elif k in props:
            out[k] = prune(v, props[k], k, unknown)
        elif schema.get("x-kubernetes-preserve-unknown-fields"):
            out[k] = v
        else:
            unknown.append(k)
    body = {k: v for k, v in out.items() if k not in ("apiVersion", "kind", "metadata")}
    for req in schema.get("required") or ():
        if req not in body and req not in ("apiVersion", "kind", "metadata"):
            causes.append(required(req))
    for k, v in body.items():
        if k in props:
            validate(v, props[k], k, causes)
    return Result(out, unknown, causes)


def admit_builtin(obj: dict) -> Result:
    """Built-in kinds: only metadata is pruned (simcluster keeps no Go types for the rest)."""
    unknown: list[str] = []
    causes: list[dict] = []
    out = dict(obj)
    if "metadata" in out:
        out["metadata"] = _metadata(out["metadata"], unknown, causes)
    return Result(out, unknown, causes)


def strict_message(kind: str, version: str, unknown: list[str]) -> str:
    fields = ", ".join(f'unknown field "{u}"' for u in unknown)
    return f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: {fields}'


def warnings(unknown: list[str]) -> list[str]:
    """The `Warning` header values for dropped fields (RFC 7234 code 299, agent "-")."""
    return [f'299 - "unknown field \\"{u}\\""' for u in unknown]


def field_manager(query_manager: str | None, user_agent: str | None, default: str) -> str:
    """The apiserver's rule: the fieldManager query parameter, else the User-Agent up to its
    first '/', at most 128 characters."""
    if query_manager:
        return query_manager
    if user_agent:
        return user_agent.split("/", 1)[0][:128]
    return default
