"""Cells for CSV files people open in Excel or Sheets, safe from formula injection."""

from __future__ import annotations

# A text cell starting with one of these is read as a formula (or can start one).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value`` for a CSV cell: text that a spreadsheet would run gets a leading quote.

    Numbers stay numbers (a negative count is data, not a formula); None becomes blank.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def safe_row(values: list[object]) -> list[object]:
    """Every cell of a row through :func:`safe_cell`."""
    return [safe_cell(value) for value in values]
