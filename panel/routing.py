"""Ids in URLs: a number no row id can be is a plain 404, never a database error."""

from __future__ import annotations

from typing import Any

from quart import abort

# The largest key of PostgreSQL's integer columns; a bigger number would reach the
# database and fail there (an overflow, answered with a 500).
MAX_ROW_ID = 2**31 - 1


def refuse_ids_out_of_range(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Answer 404 when an ``<int:…>`` part of the URL is larger than any row id."""
    if values and any(isinstance(value, int) and value > MAX_ROW_ID for value in values.values()):
        abort(404)
