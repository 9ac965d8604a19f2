"""CSV for the list endpoints (``?format=csv``) and the dashboard's exports: one row per
object, one column per serializer field; lists and objects (problems, details, ips) are
written as JSON text so a cell always round-trips.

Text a cluster user controls (a NAD's master, a pod's interface name or MAC) must not run as
a spreadsheet formula when the file is opened: a text cell starting with =, +, -, @, tab or
CR gets a leading ' (OWASP's CSV injection advice). Numbers are written as they are."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework.renderers import BaseRenderer

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return neutralised(str(value))


def neutralised(text: str) -> str:
    """`text` as a spreadsheet shows it, never evaluated as a formula."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
    return out.getvalue()


class CSVRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if isinstance(data, Mapping) and "results" in data:
            data = data["results"]
        if isinstance(data, Mapping):
            # An error ({"detail": ...}) or a single object: one row of its keys.
            data = [data]
        columns: list[str] = []
        view = (renderer_context or {}).get("view")
        if view is not None and hasattr(view, "get_serializer_class"):
            columns = list(view.get_serializer_class()().fields)
        if not columns or (data and not set(data[0]) <= set(columns)):
            columns = list(data[0]) if data else columns
        return csv_text(data, columns).encode(self.charset)
