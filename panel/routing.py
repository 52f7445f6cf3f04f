"""Ids in URLs: a number no row id can be is a plain 404, never a database error."""

from __future__ import annotations

from typing import Any

from quart import abort

from core.domain.ids import MAX_ROW_ID


def refuse_ids_out_of_range(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Answer 404 when an ``<int:…>`` part of the URL is larger than any row id."""
    if values and any(isinstance(value, int) and value > MAX_ROW_ID for value in values.values()):
        abort(404)
