"""Ids typed by people (form fields, query strings): digits within the range of a row id."""

from __future__ import annotations

# The largest key of PostgreSQL's integer columns; a bigger number fails in the database.
MAX_ROW_ID = 2**31 - 1


def row_id(text: str) -> int | None:
    """The id ``text`` spells, or None when it spells none.

    Only ASCII digits count ("²".isdigit() is true, yet int("²") fails), and nothing above
    ``MAX_ROW_ID``.
    """
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None
