"""Shapes shared by the API's endpoints."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FieldErrors(BaseModel):
    status: int
    message: str
    fields: dict[str, str] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every error: a message for people and, for invalid input, one message per field."""

    error: FieldErrors


class PageQuery(BaseModel):
    page: int = Field(1, ge=1, le=10_000)
