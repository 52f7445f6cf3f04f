"""Shapes shared by the API's endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class FieldErrors(BaseModel):
    status: int
    message: str
    fields: dict[str, str] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error: a message for people and, for invalid input, one message per field."""

    error: FieldErrors


class PageQuery(BaseModel):
    page: int = Field(1, ge=1, le=10_000)


def may_conflict(why: str) -> Callable[[F], F]:
    """Document that the endpoint answers 409 (the object's state forbids it) and when."""

    def mark(view: F) -> F:
        view.conflict = why  # type: ignore[attr-defined]
        return view

    return mark
