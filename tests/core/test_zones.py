"""Zone names, whose zone applies, and "tomorrow 9am" on both sides of a DST change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.domain import commands as cmd
from core.domain.zones import checked_zone, effective_zone, shown
from core.errors import ValidationFailed


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # The day before Berlin's spring change: tomorrow 09:00 is already summer time.
        (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),
        # Two days before: tomorrow is still winter time.
        (datetime(2026, 3, 27, 12, 0, tzinfo=UTC), datetime(2026, 3, 28, 8, 0, tzinfo=UTC)),
        # The day of the change: tomorrow is summer time.
        (datetime(2026, 3, 29, 12, 0, tzinfo=UTC), datetime(2026, 3, 30, 7, 0, tzinfo=UTC)),
        # The day before the autumn change: tomorrow 09:00 is winter time again.
        (datetime(2026, 10, 24, 12, 0, tzinfo=UTC), datetime(2026, 10, 25, 8, 0, tzinfo=UTC)),
        (datetime(2026, 10, 23, 12, 0, tzinfo=UTC), datetime(2026, 10, 24, 7, 0, tzinfo=UTC)),
        (datetime(2026, 10, 25, 12, 0, tzinfo=UTC), datetime(2026, 10, 26, 8, 0, tzinfo=UTC)),
    ],
)
def test_tomorrow_9am_in_berlin_around_dst_changes(now: datetime, expected: datetime) -> None:
    parsed = cmd.parse_command("/schedule tomorrow 9am Hi", now=now, timezone="Europe/Berlin")
    assert isinstance(parsed, cmd.Schedule)
    assert parsed.when == expected
    offset = 9 - expected.hour  # summer time is UTC+2, winter time UTC+1
    assert cmd.describe_time(parsed.when, "Europe/Berlin").endswith(
        f"09:00 Europe/Berlin (UTC+0{offset}:00)"
    )


def test_the_same_words_mean_each_persons_own_morning() -> None:
    now = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
    berlin = cmd.parse_command("/reschedule 4 tomorrow 9am", now=now, timezone="Europe/Berlin")
    new_york = cmd.parse_command("/reschedule 4 tomorrow 9am", now=now, timezone="America/New_York")
    assert isinstance(berlin, cmd.Reschedule) and isinstance(new_york, cmd.Reschedule)
    assert berlin.when == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    assert new_york.when == datetime(2026, 10, 25, 13, 0, tzinfo=UTC)  # New York is still EDT


def test_zone_names_are_checked_and_spelled_as_iana_spells_them() -> None:
    assert checked_zone(" europe/berlin ") == "Europe/Berlin"
    assert checked_zone("UTC") == "UTC"
    for bad in ("", "Berlin", "../etc/passwd", "Europe/Atlantis"):
        with pytest.raises(ValidationFailed) as refused:
            checked_zone(bad)
        assert "Europe/Berlin" in refused.value.message
        assert set(refused.value.fields) == {"timezone"}


def test_a_persons_zone_wins_over_the_teams() -> None:
    assert effective_zone("Europe/Berlin", None) == "Europe/Berlin"
    assert effective_zone("Europe/Berlin", "Asia/Tokyo") == "Asia/Tokyo"
    assert effective_zone("", None) == "UTC"


def test_shown_names_the_zone() -> None:
    moment = datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    assert shown(moment, "Europe/Berlin") == "2026-10-25 09:00 Europe/Berlin"
    assert shown(moment, "UTC", seconds=True) == "2026-10-25 08:00:00 UTC"
    assert shown(None, "UTC") == ""
