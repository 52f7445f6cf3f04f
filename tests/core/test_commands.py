"""Parsing chat commands and their times, in the workspace's timezone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.domain import commands as cmd
from core.domain.chat import Action, ActionVerb, decode_action
from core.errors import ValidationFailed

# Wednesday 5 March 2025, 10:00 in Berlin (UTC+01:00).
NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)
BERLIN = "Europe/Berlin"


def parse(text: str, timezone: str = BERLIN) -> cmd.Command:
    return cmd.parse_command(text, now=NOW, timezone=timezone)


@pytest.mark.parametrize(
    ("text", "expected_utc", "caption"),
    [
        ("/schedule tomorrow 9am Hello world", datetime(2025, 3, 6, 8, 0), "Hello world"),
        ("/schedule fri 18:00 5 tips for you", datetime(2025, 3, 7, 17, 0), "5 tips for you"),
        ("/schedule in 2h Soon", datetime(2025, 3, 5, 11, 0), "Soon"),
        ("/schedule in 30 min", datetime(2025, 3, 5, 9, 30), ""),
        ("/schedule 9:30 am tomorrow Morning", datetime(2025, 3, 6, 8, 30), "Morning"),
        ("/schedule 2025-03-07 09:00 | Launch day", datetime(2025, 3, 7, 8, 0), "Launch day"),
        ("/schedule 2025-03-07T09:00+02:00 Offset wins", datetime(2025, 3, 7, 7, 0), "Offset wins"),
        ("/schedule 2025-03-07T09:00Z Zulu", datetime(2025, 3, 7, 9, 0), "Zulu"),
        ("/schedule@ReelayBot next monday 10:00 x", datetime(2025, 3, 10, 9, 0), "x"),
        ("/schedule 25/12 10:00 xmas", datetime(2025, 12, 25, 9, 0), "xmas"),
    ],
)
def test_schedule_times_are_read_in_the_workspace_zone(
    text: str, expected_utc: datetime, caption: str
) -> None:
    command = parse(text)
    assert isinstance(command, cmd.Schedule)
    assert command.when == expected_utc.replace(tzinfo=UTC)
    assert command.caption == caption
    assert not command.story


def test_same_words_give_a_different_instant_in_another_zone() -> None:
    berlin = parse("/schedule tomorrow 9am x")
    new_york = parse("/schedule tomorrow 9am x", "America/New_York")
    assert isinstance(berlin, cmd.Schedule) and isinstance(new_york, cmd.Schedule)
    assert berlin.when == datetime(2025, 3, 6, 8, 0, tzinfo=UTC)
    assert new_york.when == datetime(2025, 3, 6, 14, 0, tzinfo=UTC)


def test_story_keyword_and_multiline_caption() -> None:
    command = parse("/schedule story tomorrow 18:00\nLine one\nLine two")
    assert isinstance(command, cmd.Schedule)
    assert command.story
    assert command.caption == "Line one\nLine two"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("/schedule tomorrow Caption", "needs a time of day"),
        ("/schedule tomorrow at 9 hi", "needs a time of day"),
        ("/schedule 03/04 10:00 x", "day-first or month-first"),
        ("/schedule yesterday 9am x", "is in the past"),
        ("/schedule 2025-03-05 09:59 x", "is in the past"),
        ("/schedule 2025-03-30 02:30 x", "does not exist"),
        ("/schedule 2025-10-26 02:30 x", "happens twice"),
        ("/schedule banana bread", "Start with when to post"),
        ("/schedule", "Tell me when"),
        ("/reschedule 12", "Say which post and the new time"),
        ("/reschedule 12 fri 18:00 extra words", "stopped"),
        ("/post 12", "Usage: /post 12 now"),
        ("/cancel twelve", "not a number"),
        ("/link", "code from the panel"),
        ("/caption", "what the post is about"),
        ("/frobnicate", "don't know /frobnicate"),
    ],
)
def test_refusals_say_what_works(text: str, says: str) -> None:
    with pytest.raises(cmd.CommandError) as caught:
        parse(text)
    assert says in caught.value.message


def test_time_refusals_give_an_example_that_works() -> None:
    with pytest.raises(cmd.CommandError) as caught:
        parse("/schedule yesterday 9am x")
    assert "Tue 4 Mar 2025, 09:00 Europe/Berlin (UTC+01:00)" in caught.value.message
    assert '"tomorrow 9am"' in caught.value.message


def test_ambiguous_time_suggests_an_offset() -> None:
    with pytest.raises(cmd.CommandError) as caught:
        parse("/reschedule 3 2025-10-26 02:30")
    assert "2025-10-26T02:30+02:00" in caught.value.message
    # and the suggestion itself parses
    command = parse("/reschedule 3 2025-10-26T02:30+02:00")
    assert isinstance(command, cmd.Reschedule)
    assert command.when == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)


def test_relative_times_are_exact_durations() -> None:
    command = parse("/reschedule 5 in 3h")
    assert command == cmd.Reschedule(5, datetime(2025, 3, 5, 12, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/help", cmd.Help()),
        ("/start", cmd.Help()),
        ("/link ABCDE-FGHJK", cmd.Link("ABCDE-FGHJK")),
        ("/queue", cmd.Queue(1)),
        ("/queue 3", cmd.Queue(3)),
        ("/post #12 now", cmd.PostNow(12)),
        ("/post 12 NOW", cmd.PostNow(12)),
        ("/cancel 12", cmd.Cancel(12)),
        ("/caption witty: summer sale", cmd.Caption("summer sale", "witty")),
        ("/caption new espresso blend", cmd.Caption("new espresso blend", "casual")),
        ("/leads", cmd.Leads(5)),
        ("/leads 3", cmd.Leads(3)),
        ("/leads 500", cmd.Leads(50)),
        ("/stats", cmd.Stats()),
        ("/approvals", cmd.Approvals()),
        ("/approve 7", cmd.Approve(7)),
        ("/reject 7", cmd.Reject(7)),
        ("/edit 7", cmd.Edit(7, "")),
        ("/edit 7 Thanks, see you!", cmd.Edit(7, "Thanks, see you!")),
        (
            "schedule in 1h no slash",
            cmd.Schedule(datetime(2025, 3, 5, 10, 0, tzinfo=UTC), "no slash"),
        ),
    ],
)
def test_every_command_parses(text: str, expected: cmd.Command) -> None:
    assert parse(text) == expected


def test_describe_time_names_the_zone_and_offset() -> None:
    summer = datetime(2025, 7, 1, 7, 0, tzinfo=UTC)
    assert cmd.describe_time(summer, BERLIN) == "Tue 1 Jul 2025, 09:00 Europe/Berlin (UTC+02:00)"


def test_unknown_workspace_zone_is_reported() -> None:
    with pytest.raises(cmd.CommandError, match="not a known zone"):
        parse("/schedule tomorrow 9am x", "Mars/Olympus")


def test_actions_round_trip_and_foreign_data_is_refused() -> None:
    action = Action(ActionVerb.APPROVE, 42)
    assert decode_action(action.encode()) == action
    assert len(Action(ActionVerb.POST_NOW, 10**17).encode()) <= 64
    for bad in ("approve", "launch:1", "approve:x", "approve:1:2", ""):
        with pytest.raises(ValidationFailed):
            decode_action(bad)


@pytest.mark.parametrize("typed", ["²", "#³", "99999999999", "1" * 4000, "12a", "-3"])
def test_an_id_that_is_no_row_id_gets_the_usage_line(typed: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse(f"/cancel {typed}")
    assert "is not a number I can look up" in str(refused.value)
