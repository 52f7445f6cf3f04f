"""Model fields whose stored form compares correctly on every database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, overload

from tortoise import fields

T = TypeVar("T", datetime, datetime | None)


class UtcDatetimeField(fields.DatetimeField[T]):
    """A timestamp written, and compared in filters, as UTC.

    SQLite keeps a timestamp as ISO text and compares text: an aware value in another zone
    ("2026-12-04T00:00+01:00", a day's start in Berlin) would be compared character by
    character with the stored "2026-12-03T23:40+00:00" and miss it. Converting every aware
    value to UTC on its way to the database makes the comparison the instant's on SQLite,
    as it already is on PostgreSQL. Migrations see a plain ``DatetimeField``: the column is
    the same.
    """

    @overload
    def __init__(
        self: UtcDatetimeField[datetime],
        auto_now: bool = False,
        auto_now_add: bool = False,
        *,
        null: Literal[False] = False,
        **kwargs: Any,
    ) -> None: ...

    @overload
    def __init__(
        self: UtcDatetimeField[datetime | None],
        auto_now: bool = False,
        auto_now_add: bool = False,
        *,
        null: Literal[True],
        **kwargs: Any,
    ) -> None: ...

    def __init__(self, auto_now: bool = False, auto_now_add: bool = False, **kwargs: Any) -> None:
        # The parent's overloads bind ``self`` to a concrete parameter, not to ``T``.
        super().__init__(auto_now=auto_now, auto_now_add=auto_now_add, **kwargs)  # type: ignore[misc]

    def to_db_value(self, value: Any, instance: Any) -> Any:
        stored = super().to_db_value(value, instance)
        if isinstance(stored, datetime) and stored.tzinfo is not None:
            return stored.astimezone(UTC)
        return stored

    def describe(self, serializable: bool) -> dict[str, Any]:
        described: dict[str, Any] = super().describe(serializable)
        described["field_type"] = "DatetimeField"
        return described

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        _, args, kwargs = super().deconstruct()
        return f"{fields.DatetimeField.__module__}.DatetimeField", args, kwargs
