"""Chat commands: turn a chat message into a ``Command``, resolving times in the workspace's zone.

Pure: the current time and the timezone are arguments. Times accept ISO 8601 ("2025-03-07
09:00", with or without an offset), "tomorrow 9am", "in 2h", "fri 18:00". A time without a
time of day, a numeric date that reads both ways (03/04), a wall-clock time that a DST change
skips or repeats, and anything in the past are refused with an example that works.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dateparser

from core.domain.chat import LINK_CODES_PATH
from core.domain.ids import row_id
from core.domain.zones import checked_zone
from core.errors import ValidationFailed

TIME_EXAMPLES = '"tomorrow 9am", "in 2h", "fri 18:00" or "2025-03-07 09:00"'
MAX_LEADS = 50
DEFAULT_LEADS = 5
CAPTION_TONES = ("professional", "witty", "casual", "urgent")
# How many words of a message may make up its time ("next fri 9:30 am" is four).
_MAX_WHEN_WORDS = 6

# Words that may follow a complete time and still belong to it ("9:30 am tomorrow").
_TIME_WORDS = {
    "am",
    "pm",
    "a.m.",
    "p.m.",
    "today",
    "tonight",
    "tomorrow",
    "mon",
    "monday",
    "tue",
    "tues",
    "tuesday",
    "wed",
    "wednesday",
    "thu",
    "thur",
    "thurs",
    "thursday",
    "fri",
    "friday",
    "sat",
    "saturday",
    "sun",
    "sunday",
}
_CLOCK = re.compile(
    r"\b\d{1,2}:\d{2}\b|\b\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.)(?!\w)|\bnoon\b|\bmidnight\b"
    r"|\d{4}-\d{2}-\d{2}T\d{2}",
    re.IGNORECASE,
)
_RELATIVE = re.compile(
    r"^in\s+\d+\s*(?:s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?)$",
    re.IGNORECASE,
)
_NUMERIC_DATE = re.compile(r"(?<![\d-])(\d{1,2})[/.](\d{1,2})(?:[/.]\d{2,4})?(?![\d-])")
_ISO_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


class CommandError(ValidationFailed):
    """The message is not a valid command; ``message`` says what would work."""


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class Help:
    pass


@dataclass(frozen=True)
class Link:
    code: str


@dataclass(frozen=True)
class Schedule:
    when: datetime  # UTC
    caption: str
    story: bool = False
    account: str = ""  # an Instagram username, when the workspace has several accounts


@dataclass(frozen=True)
class Queue:
    page: int = 1


@dataclass(frozen=True)
class PostNow:
    post_id: int


@dataclass(frozen=True)
class Cancel:
    post_id: int


@dataclass(frozen=True)
class Reschedule:
    post_id: int
    when: datetime  # UTC


@dataclass(frozen=True)
class Caption:
    topic: str
    tone: str = "casual"


@dataclass(frozen=True)
class Leads:
    count: int = DEFAULT_LEADS


@dataclass(frozen=True)
class Stats:
    days: int = 7


@dataclass(frozen=True)
class Approvals:
    pass


@dataclass(frozen=True)
class Health:
    pass


@dataclass(frozen=True)
class Approve:
    draft_id: int


@dataclass(frozen=True)
class Reject:
    draft_id: int


@dataclass(frozen=True)
class Edit:
    draft_id: int
    text: str = ""  # empty: the next message from this user is the new text


@dataclass(frozen=True)
class TimeZone:
    zone: str = ""  # empty: say which zones apply
    own: bool = False  # the sender's own zone, not the team's
    reset: bool = False  # the sender goes back to the team's zone


Command = (
    Help
    | Link
    | Schedule
    | Queue
    | PostNow
    | Cancel
    | Reschedule
    | Caption
    | Leads
    | Stats
    | Health
    | Approvals
    | Approve
    | Reject
    | Edit
    | TimeZone
)

USAGE = {
    "help": "/help",
    "link": f"/link CODE (an admin makes the code in the panel: {LINK_CODES_PATH})",
    "schedule": "/schedule [story] [@account] tomorrow 9am Your caption (attach the media)",
    "queue": "/queue [page]",
    "post": "/post 12 now",
    "cancel": "/cancel 12",
    "reschedule": "/reschedule 12 fri 18:00",
    "caption": "/caption [witty|professional|casual|urgent] topic",
    "leads": "/leads [how many]",
    "stats": "/stats [7d|30d]",
    "health": "/health",
    "approvals": "/approvals",
    "approve": "/approve 7",
    "reject": "/reject 7",
    "edit": "/edit 7 the new reply text",
    "timezone": "/timezone Europe/Berlin (the team's), /timezone me Europe/Berlin (yours), "
    "/timezone me team (back to the team's)",
}


# ---------------------------------------------------------------- parsing


def command_name(text: str) -> str | None:
    """The command word of ``text`` ("/schedule@ReelayBot …" → "schedule"), or None."""
    stripped = text.strip()
    if not stripped:
        return None
    word = stripped.split(maxsplit=1)[0]
    word = word.removeprefix("/").split("@", 1)[0].lower()
    return word or None


def parse_command(text: str, *, now: datetime, timezone: str) -> Command:
    """Parse one chat message.

    ``now``: the current time (aware). ``timezone``: the workspace's IANA zone, used for times
    given without an offset. Raises ``CommandError`` with a usage example when it does not parse.
    """
    name = command_name(text)
    if name is None:
        raise CommandError("Send /help to see what I can do.")
    parts = text.strip().split(maxsplit=1)
    rest = parts[1].strip() if len(parts) > 1 else ""
    parser = _PARSERS.get(name)
    if parser is None:
        raise CommandError(f"I don't know /{name}. Send /help to see what I can do.")
    return parser(rest, now, timezone)


def _usage(name: str, problem: str) -> CommandError:
    return CommandError(f"{problem}\nUsage: {USAGE[name]}")


def _id(name: str, raw: str) -> int:
    value = row_id(raw.strip().lstrip("#"))
    if value is None:
        raise _usage(name, f"{raw.strip() or 'Nothing'} is not a number I can look up.")
    return value


def _parse_help(rest: str, now: datetime, timezone: str) -> Command:
    return Help()


def _parse_link(rest: str, now: datetime, timezone: str) -> Command:
    code = rest.strip()
    if not code or " " in code:
        raise _usage("link", "Send the code from the panel after /link.")
    return Link(code)


def _parse_schedule(rest: str, now: datetime, timezone: str) -> Command:
    story = False
    account = ""
    while True:
        words = rest.split(maxsplit=1)
        if not words:
            break
        if words[0].lower() == "story" and not story:
            story = True
        elif words[0].startswith("@") and len(words[0]) > 1 and not account:
            account = words[0][1:]
        else:
            break
        rest = words[1] if len(words) > 1 else ""
    if not rest.strip():
        raise _usage("schedule", "Tell me when to post.")
    when, caption = split_when(rest, now=now, timezone=timezone)
    return Schedule(when=when, caption=caption, story=story, account=account)


def _parse_queue(rest: str, now: datetime, timezone: str) -> Command:
    if not rest:
        return Queue()
    page = _id("queue", rest)
    return Queue(page=max(page, 1))


def _parse_post(rest: str, now: datetime, timezone: str) -> Command:
    words = rest.split()
    if len(words) != 2 or words[1].lower() != "now":
        raise _usage("post", "Say which post to publish now.")
    return PostNow(_id("post", words[0]))


def _parse_cancel(rest: str, now: datetime, timezone: str) -> Command:
    return Cancel(_id("cancel", rest))


def _parse_reschedule(rest: str, now: datetime, timezone: str) -> Command:
    words = rest.split(maxsplit=1)
    if len(words) != 2:
        raise _usage("reschedule", "Say which post and the new time.")
    post_id = _id("reschedule", words[0])
    when, extra = split_when(words[1], now=now, timezone=timezone)
    if extra:
        raise _usage("reschedule", f'I read the time as far as "{extra}" and stopped.')
    return Reschedule(post_id=post_id, when=when)


def _parse_caption(rest: str, now: datetime, timezone: str) -> Command:
    words = rest.split(maxsplit=1)
    tone = "casual"
    if words and words[0].lower().rstrip(":") in CAPTION_TONES:
        tone = words[0].lower().rstrip(":")
        rest = words[1] if len(words) > 1 else ""
    topic = rest.strip()
    if not topic:
        raise _usage("caption", "Tell me what the post is about.")
    return Caption(topic=topic, tone=tone)


def _parse_leads(rest: str, now: datetime, timezone: str) -> Command:
    if not rest:
        return Leads()
    count = _id("leads", rest)
    return Leads(count=min(max(count, 1), MAX_LEADS))


def _parse_stats(rest: str, now: datetime, timezone: str) -> Command:
    if not rest:
        return Stats()
    token = rest.strip().lower().removesuffix("d").removesuffix(" days")
    if token not in {"7", "30"}:
        raise _usage("stats", "Stats cover the last 7 or 30 days.")
    return Stats(int(token))


def _parse_health(rest: str, now: datetime, timezone: str) -> Command:
    return Health()


def _parse_approvals(rest: str, now: datetime, timezone: str) -> Command:
    return Approvals()


def _parse_approve(rest: str, now: datetime, timezone: str) -> Command:
    return Approve(_id("approve", rest))


def _parse_reject(rest: str, now: datetime, timezone: str) -> Command:
    return Reject(_id("reject", rest))


def _parse_edit(rest: str, now: datetime, timezone: str) -> Command:
    words = rest.split(maxsplit=1)
    if not words:
        raise _usage("edit", "Say which draft to edit.")
    return Edit(_id("edit", words[0]), words[1].strip() if len(words) > 1 else "")


def _parse_timezone(rest: str, now: datetime, timezone: str) -> Command:
    words = rest.split()
    own = bool(words) and words[0].lower() in {"me", "mine", "my"}
    if own:
        words = words[1:]
    if len(words) > 1:
        raise _usage("timezone", "Give one zone name, with no spaces.")
    if not words:
        if own:
            raise _usage("timezone", "Say which zone is yours.")
        return TimeZone()
    if own and words[0].lower() in {"team", "workspace", "reset", "default"}:
        return TimeZone(own=True, reset=True)
    try:
        zone_name = checked_zone(words[0])
    except ValidationFailed as exc:
        raise _usage("timezone", exc.message) from None
    return TimeZone(zone_name, own=own)


_PARSERS = {
    "start": _parse_help,
    "help": _parse_help,
    "link": _parse_link,
    "schedule": _parse_schedule,
    "queue": _parse_queue,
    "post": _parse_post,
    "cancel": _parse_cancel,
    "reschedule": _parse_reschedule,
    "caption": _parse_caption,
    "leads": _parse_leads,
    "stats": _parse_stats,
    "health": _parse_health,
    "approvals": _parse_approvals,
    "approve": _parse_approve,
    "reject": _parse_reject,
    "edit": _parse_edit,
    "timezone": _parse_timezone,
}


# ---------------------------------------------------------------- times


def zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandError(f"The workspace timezone {timezone!r} is not a known zone.") from None


def split_when(text: str, *, now: datetime, timezone: str) -> tuple[datetime, str]:
    """Split "<time> <rest>" into the time (UTC) and the rest.

    A "|" or a line break ends the time explicitly; otherwise the time is the shortest run of
    leading words that names a full time, extended only by words that belong to a time
    ("9:30 am tomorrow"), so a caption starting with a number stays the caption.
    """
    head, sep, tail = _explicit_split(text)
    if sep:
        return parse_when(head, now=now, timezone=timezone), tail.strip()
    words = text.split()
    for size in range(1, min(len(words), _MAX_WHEN_WORDS) + 1):
        candidate = " ".join(words[:size])
        if not _names_a_time(candidate) or _parse(candidate, now, timezone) is None:
            continue
        while size < len(words) and size < _MAX_WHEN_WORDS:
            if words[size].lower() not in _TIME_WORDS:
                break
            longer = " ".join(words[: size + 1])
            if _parse(longer, now, timezone) is None:
                break
            candidate, size = longer, size + 1
        return parse_when(candidate, now=now, timezone=timezone), " ".join(words[size:])
    for size in range(min(len(words), 3), 0, -1):
        candidate = " ".join(words[:size])
        if _parse(candidate, now, timezone) is not None:
            parse_when(candidate, now=now, timezone=timezone)  # raises with the reason
    raise CommandError(f"Start with when to post, e.g. {TIME_EXAMPLES}.")


def _explicit_split(text: str) -> tuple[str, str, str]:
    for sep in ("|", "\n"):
        head, found, tail = text.partition(sep)
        if found:
            return head.strip(), found, tail
    return text, "", ""


def _names_a_time(text: str) -> bool:
    return bool(_CLOCK.search(text) or _RELATIVE.match(text.strip()))


def _parse(text: str, now: datetime, timezone: str) -> datetime | None:
    local_now = now.astimezone(zone(timezone)).replace(tzinfo=None)
    settings: dict[str, Any] = {
        "TIMEZONE": timezone,
        "RETURN_AS_TIMEZONE_AWARE": False,
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": local_now,
    }
    if _ISO_OFFSET.search(text.strip()):
        settings["TO_TIMEZONE"] = "UTC"
        settings.pop("TIMEZONE")
    parsed: datetime | None = dateparser.parse(text, languages=["en"], settings=settings)
    return parsed


def parse_when(text: str, *, now: datetime, timezone: str) -> datetime:
    """The moment ``text`` names, in UTC; refuses vague, ambiguous and past times."""
    cleaned = text.strip()
    tz = zone(timezone)
    if not cleaned:
        raise CommandError(f"Tell me when, e.g. {TIME_EXAMPLES}.")
    numeric = _NUMERIC_DATE.search(cleaned)
    if numeric and int(numeric[1]) <= 12 and int(numeric[2]) <= 12 and numeric[1] != numeric[2]:
        raise CommandError(
            f'"{numeric[0]}" could be read day-first or month-first. '
            f"Write the date as 2025-03-07 or use {TIME_EXAMPLES}."
        )
    if not _names_a_time(cleaned):
        raise CommandError(
            f'"{cleaned}" needs a time of day like 9:00 or 9am. Try {TIME_EXAMPLES}.'
        )
    parsed = _parse(cleaned, now, timezone)
    if parsed is None:
        raise CommandError(f'I could not read "{cleaned}" as a time. Try {TIME_EXAMPLES}.')
    if _ISO_OFFSET.search(cleaned):
        moment = parsed.replace(tzinfo=UTC)
    elif _RELATIVE.match(cleaned):
        moment = _relative(cleaned, now)
    else:
        moment = _localise(parsed, tz, cleaned)
    if moment <= now:
        shown = describe_time(moment, timezone)
        raise CommandError(f"{shown} is in the past. Try {TIME_EXAMPLES}.")
    return moment


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _relative(text: str, now: datetime) -> datetime:
    """ "in 2h" is an exact duration from now, unaffected by DST changes in between."""
    match = re.match(r"^in\s+(\d+)\s*([a-z])", text.strip(), re.IGNORECASE)
    assert match is not None  # guarded by _RELATIVE
    amount, unit = int(match[1]), match[2].lower()
    return now.astimezone(UTC) + timedelta(seconds=amount * _UNITS[unit])


def _localise(local: datetime, tz: ZoneInfo, text: str) -> datetime:
    first = local.replace(tzinfo=tz, fold=0)
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local:
        raise CommandError(
            f'"{text}" does not exist on that day (the clocks go forward). Pick another time.'
        )
    second = local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        raise CommandError(
            f'"{text}" happens twice on that day (the clocks go back). '
            f"Give an offset, e.g. {local:%Y-%m-%dT%H:%M}{_offset(first)}."
        )
    return first.astimezone(UTC)


def _offset(moment: datetime) -> str:
    raw = moment.strftime("%z")
    return f"{raw[:3]}:{raw[3:]}"


def describe_time(moment: datetime, timezone: str) -> str:
    """ "Fri 7 Mar 2025, 09:00 Europe/Berlin (UTC+01:00)": exact, with the zone, for replies."""
    local = moment.astimezone(zone(timezone))
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M} {timezone} (UTC{_offset(local)})"
