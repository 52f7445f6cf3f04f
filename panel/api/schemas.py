"""Shapes shared by the API's endpoints."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field

from core.errors import ValidationFailed
from panel.declarations import declared

F = TypeVar("F", bound=Callable[..., Awaitable[object]])


class FieldErrors(BaseModel):
    status: int
    message: str
    fields: dict[str, str] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error: a message for people and, for invalid input, one message per field."""

    error: FieldErrors


class PageQuery(BaseModel):
    page: int = Field(1, ge=1, le=10_000)


PAGE_SIZE = 50
MAX_LIMIT = 200


class CursorQuery(BaseModel):
    """Paging of a list: ``cursor`` (the last answer's ``next_cursor``) and ``limit``; the
    older ``page`` still works when no cursor is given."""

    page: int = Field(1, ge=1, le=10_000, description="Page number (when no cursor is given).")
    cursor: str | None = Field(
        None, max_length=200, description="The `next_cursor` of the previous answer."
    )
    limit: int = Field(PAGE_SIZE, ge=1, le=MAX_LIMIT, description="Items per answer.")


def encode_cursor(list_name: str, position: dict[str, Any]) -> str:
    """An opaque cursor: where the next answer of ``list_name`` starts."""
    raw = json.dumps({"l": list_name, **position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(list_name: str, cursor: str) -> dict[str, Any]:
    """The position a cursor of ``list_name`` holds; ValidationFailed for any other text."""
    refused = ValidationFailed(
        "The cursor is not one this list gave; pass next_cursor back unchanged.",
        {"cursor": "not a cursor of this list"},
    )
    try:
        found = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise refused from exc
    if not isinstance(found, dict) or found.pop("l", None) != list_name:
        raise refused
    return found


def cursor_int(position: dict[str, Any], name: str) -> int:
    value = position.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not -(2**63) <= value < 2**63:
        raise ValidationFailed(
            "The cursor is not one this list gave; pass next_cursor back unchanged.",
            {"cursor": "not a cursor of this list"},
        )
    return value


def may_conflict(why: str) -> Callable[[F], F]:
    """Document that the endpoint answers 409 (the object's state forbids it) and when."""

    def mark(view: F) -> F:
        declared(view).conflict = why
        return view

    return mark
