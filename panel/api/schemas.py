"""Shapes shared by the API's endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, Field

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


def may_conflict(why: str) -> Callable[[F], F]:
    """Document that the endpoint answers 409 (the object's state forbids it) and when."""

    def mark(view: F) -> F:
        declared(view).conflict = why
        return view

    return mark
