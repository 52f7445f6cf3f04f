"""Time zones: which names are zones, whose zone applies, and how a time reads with its zone.

Pure. Inside Reelay every time is aware UTC; a zone is applied only where a person reads or
types a time. A workspace has a zone (the team's); a person may override it for themselves.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from core.errors import ValidationFailed

EXAMPLE = "Europe/Berlin"


@cache
def _known() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def checked_zone(name: str, *, field: str = "timezone") -> str:
    """``name`` as an IANA zone ("Europe/Berlin"); refused with an example when it is not one."""
    cleaned = name.strip()
    if not cleaned:
        message = f"Give a time zone, e.g. {EXAMPLE}."
        raise ValidationFailed(message, {field: message})
    if cleaned not in _known():
        by_case = {known.lower(): known for known in _known()}
        cleaned = by_case.get(cleaned.lower(), "")
    if not cleaned:
        message = (
            f"{name.strip()[:64]!r} is not a time zone I know. Use an IANA name like "
            f"{EXAMPLE}, America/New_York or UTC."
        )
        raise ValidationFailed(message, {field: message})
    try:
        ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"{cleaned!r} is not a time zone I can read. Use e.g. {EXAMPLE}."
        raise ValidationFailed(message, {field: message}) from None
    return cleaned


def zone_info(name: str) -> ZoneInfo:
    """The zone called ``name``; UTC when a stored name is no longer known."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def effective_zone(workspace_zone: str, person_zone: str | None) -> str:
    """The zone a person reads and types times in: their own when set, else the team's."""
    return person_zone or workspace_zone or "UTC"


def shown(moment: datetime | None, zone_name: str, *, seconds: bool = False) -> str:
    """ "2026-03-29 09:00 Europe/Berlin": a stored time as the panel shows it, zone named."""
    if moment is None:
        return ""
    local = moment.astimezone(zone_info(zone_name))
    return f"{local:%Y-%m-%d %H:%M{':%S' if seconds else ''}} {zone_name}"
