"""Ids and page numbers typed by people (form fields, query strings): plain digits, in range."""

from __future__ import annotations

# The largest key of PostgreSQL's integer columns; a bigger number fails in the database.
MAX_ROW_ID = 2**31 - 1
# Listing pages go no further than this.
MAX_PAGE = 10_000


def row_id(text: str) -> int | None:
    """The id ``text`` spells, or None when it spells none.

    Only ASCII digits count ("²".isdigit() is true, yet int("²") fails), and nothing above
    ``MAX_ROW_ID`` (the length is checked first: int() refuses thousands of digits).
    """
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ROW_ID)):
        return None
    value = int(text)
    return value if value <= MAX_ROW_ID else None


def page_number(text: str, last: int = MAX_PAGE) -> int:
    """The page a query string asks for: 1 unless it spells a page; never beyond ``last``."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    if len(text) > len(str(last)):
        return last
    return min(max(int(text), 1), last)
