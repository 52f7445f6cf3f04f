"""Posts: what Instagram accepts, checked before anything is stored, and the status machine.

Pure: the current time is an argument, media are described by ``MediaFacts``. Every refusal
is a ``ValidationFailed`` whose ``fields`` name the field and say, in plain words, what to
change.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import Conflict, ValidationFailed

CAPTION_MAX = 2200
HASHTAGS_MAX = 30
MENTIONS_MAX = 20
ALT_TEXT_MAX = 1000
COLLABORATORS_MAX = 3
CAROUSEL_MIN = 2
CAROUSEL_MAX = 10

IMAGE_MAX_BYTES = 8 * 1024 * 1024
REEL_MAX_BYTES = 300 * 1024 * 1024
STORY_VIDEO_MAX_BYTES = 100 * 1024 * 1024
REEL_MIN_S, REEL_MAX_S = 3.0, 15 * 60.0
STORY_MIN_S, STORY_MAX_S = 3.0, 60.0
# Feed images: from 4:5 (portrait) to 1.91:1 (landscape); a little slack for rounding.
ASPECT_MIN, ASPECT_MAX = 4 / 5 - 0.005, 1.91 + 0.005

# A scheduled time this far in the past still counts as "now" (clock skew, slow typing).
PAST_GRACE = timedelta(seconds=5)
# Far enough from the ends of datetime's range that a time shows in every time zone.
SCHEDULE_RANGE = (datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC))

_CONTROL = {"Cc", "Cf", "Co", "Cs"}
_KEEP = {"\n", "\u200d"}  # line breaks, and the joiner inside emoji sequences
_HASHTAG = re.compile(r"(?<![\w#])#\w+")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9._]+")
_USERNAME = re.compile(r"^[A-Za-z0-9._]{1,30}$")
_LOCATION = re.compile(r"^\d{1,32}$")


class Kind(StrEnum):
    IMAGE = "image"
    REEL = "reel"
    CAROUSEL = "carousel"
    STORY = "story"


class Status(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PUBLISHING = "publishing"
    RETRYING = "retrying"
    PUBLISHED = "published"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Which status may follow which. Scheduled -> scheduled is a reschedule; publishing ->
# publishing is a worker resuming a post whose lease ran out.
TRANSITIONS: Mapping[Status, frozenset[Status]] = {
    Status.DRAFT: frozenset({Status.SCHEDULED, Status.CANCELLED}),
    Status.SCHEDULED: frozenset(
        {Status.SCHEDULED, Status.DRAFT, Status.PUBLISHING, Status.CANCELLED}
    ),
    Status.PUBLISHING: frozenset(
        {Status.PUBLISHING, Status.PUBLISHED, Status.RETRYING, Status.FAILED}
    ),
    Status.RETRYING: frozenset(
        {Status.PUBLISHING, Status.SCHEDULED, Status.CANCELLED, Status.FAILED}
    ),
    Status.FAILED: frozenset({Status.SCHEDULED, Status.DRAFT, Status.CANCELLED}),
    Status.CANCELLED: frozenset({Status.SCHEDULED, Status.DRAFT}),
    Status.PUBLISHED: frozenset(),
}

# Statuses a person may change the content of (a post being published is the worker's).
EDITABLE = frozenset({Status.DRAFT, Status.SCHEDULED, Status.FAILED, Status.CANCELLED})

_STATUS_WORDS = {
    Status.DRAFT: "a draft",
    Status.SCHEDULED: "scheduled",
    Status.PUBLISHING: "being published right now",
    Status.RETRYING: "waiting to be tried again",
    Status.PUBLISHED: "already published",
    Status.FAILED: "failed",
    Status.CANCELLED: "cancelled",
}


def sources_of(target: Status) -> frozenset[Status]:
    """Every status from which ``target`` may be reached."""
    return frozenset(s for s, allowed in TRANSITIONS.items() if target in allowed)


def can_transition(current: Status | str, target: Status | str) -> bool:
    return Status(target) in TRANSITIONS[Status(current)]


def check_transition(current: Status | str, target: Status | str, action: str) -> None:
    """Raise ``Conflict`` with a sentence a person understands when the move is not allowed."""
    if not can_transition(current, target):
        raise Conflict(f"This post is {_STATUS_WORDS[Status(current)]}, so it cannot be {action}.")


def check_editable(current: Status | str) -> None:
    if Status(current) not in EDITABLE:
        raise Conflict(f"This post is {_STATUS_WORDS[Status(current)]}, so it cannot be edited.")


@dataclass(frozen=True)
class MediaFacts:
    """What validation needs to know about one uploaded file."""

    asset_id: int
    mime: str
    size: int
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None

    @property
    def is_image(self) -> bool:
        return self.mime.startswith("image/")

    @property
    def is_video(self) -> bool:
        return self.mime.startswith("video/")


@dataclass(frozen=True)
class PostContent:
    """Everything a person writes into a post (the media in order)."""

    kind: Kind
    media: Sequence[MediaFacts] = ()
    caption: str = ""
    first_comment: str = ""
    alt_text: str = ""
    collaborators: Sequence[str] = field(default_factory=tuple)
    location_id: str | None = None
    share_to_feed: bool = True
    cover: MediaFacts | None = None


def clean_text(text: str) -> str:
    """Drop control and invisible formatting characters; keep line breaks and emoji joiners."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return "".join(
        ch for ch in text if ch in _KEEP or unicodedata.category(ch) not in _CONTROL
    ).strip()


def count_hashtags(text: str) -> int:
    return len(_HASHTAG.findall(text))


def count_mentions(text: str) -> int:
    return len(_MENTION.findall(text))


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def _seconds(s: float) -> str:
    return f"{s / 60:g} min" if s > 60 else f"{s:g} s"


def _check_caption(text: str, name: str, errors: dict[str, str]) -> None:
    label = "The caption" if name == "caption" else "The first comment"
    if len(text) > CAPTION_MAX:
        errors[name] = (
            f"{label} is {len(text)} characters long; Instagram allows up to {CAPTION_MAX}. "
            f"Shorten it by {len(text) - CAPTION_MAX}."
        )
    elif (tags := count_hashtags(text)) > HASHTAGS_MAX:
        errors[name] = (
            f"{label} has {tags} hashtags; Instagram allows up to {HASHTAGS_MAX}. "
            f"Remove {tags - HASHTAGS_MAX}."
        )
    elif (mentions := count_mentions(text)) > MENTIONS_MAX:
        errors[name] = (
            f"{label} mentions {mentions} accounts; Instagram allows up to {MENTIONS_MAX} "
            f"@mentions. Remove {mentions - MENTIONS_MAX}."
        )


def check_caption(text: str) -> None:
    """Refuse a caption Instagram would refuse (length, hashtags, mentions), before any media
    is looked at."""
    errors: dict[str, str] = {}
    _check_caption(clean_text(text), "caption", errors)
    if errors:
        raise ValidationFailed(errors["caption"], errors)


def _check_image(item: MediaFacts, where: str, feed: bool) -> str | None:
    if item.mime != "image/jpeg":
        return f"{where} is not a JPEG; upload it again so Reelay can convert it."
    if item.size > IMAGE_MAX_BYTES:
        return f"{where} is {_size(item.size)}; Instagram takes images up to 8 MB."
    if feed and item.width and item.height:
        ratio = item.width / item.height
        if ratio < ASPECT_MIN:
            return (
                f"{where} is too tall ({item.width}x{item.height}); feed images must be "
                "between 4:5 (portrait) and 1.91:1 (landscape). Crop it and upload it again."
            )
        if ratio > ASPECT_MAX:
            return (
                f"{where} is too wide ({item.width}x{item.height}); feed images must be "
                "between 4:5 (portrait) and 1.91:1 (landscape). Crop it and upload it again."
            )
    return None


def _check_video(
    item: MediaFacts, where: str, max_bytes: int, min_s: float, max_s: float
) -> str | None:
    if item.mime not in {"video/mp4", "video/quicktime"}:
        return f"{where} is not an MP4 or MOV video."
    if item.size > max_bytes:
        return f"{where} is {_size(item.size)}; Instagram takes up to {_size(max_bytes)} here."
    if item.duration_s is not None and not min_s <= item.duration_s <= max_s:
        return (
            f"{where} lasts {item.duration_s:.1f} s; it must last between {_seconds(min_s)} "
            f"and {_seconds(max_s)}."
        )
    return None


def _check_carousel(media: Sequence[MediaFacts]) -> str | None:
    if not CAROUSEL_MIN <= len(media) <= CAROUSEL_MAX:
        return (
            f"A carousel needs {CAROUSEL_MIN} to {CAROUSEL_MAX} images or videos; "
            f"it has {len(media)}."
        )
    for n, item in enumerate(media, start=1):
        where = f"Item {n}"
        if item.is_image:
            problem = _check_image(item, where, feed=True)
        elif item.is_video:
            problem = _check_video(item, where, REEL_MAX_BYTES, REEL_MIN_S, REEL_MAX_S)
        else:
            problem = f"{where} is neither an image nor a video."
        if problem:
            return problem
    return None


def _check_media(content: PostContent, errors: dict[str, str]) -> None:
    media = list(content.media)
    kind = content.kind
    problem: str | None = None
    if kind is Kind.IMAGE:
        if len(media) != 1 or not media[0].is_image:
            problem = "An image post needs exactly one image."
        else:
            problem = _check_image(media[0], "The image", feed=True)
    elif kind is Kind.REEL:
        if len(media) != 1 or not media[0].is_video:
            problem = "A reel needs exactly one video."
        else:
            problem = _check_video(media[0], "The video", REEL_MAX_BYTES, REEL_MIN_S, REEL_MAX_S)
    elif kind is Kind.STORY:
        if len(media) != 1 or not (media[0].is_image or media[0].is_video):
            problem = "A story needs exactly one image or one video."
        elif media[0].is_image:
            problem = _check_image(media[0], "The image", feed=False)
        else:
            problem = _check_video(
                media[0], "The video", STORY_VIDEO_MAX_BYTES, STORY_MIN_S, STORY_MAX_S
            )
    else:
        problem = _check_carousel(media)
    if problem:
        errors["media"] = problem
    if content.cover is not None:
        if kind is not Kind.REEL:
            errors["cover"] = "Only reels have a cover image."
        elif (cover_problem := _check_image(content.cover, "The cover", feed=False)) is not None:
            errors["cover"] = cover_problem


def clean_collaborators(names: Sequence[str]) -> tuple[str, ...]:
    """Usernames without '@' or spaces, each once, in the order given."""
    seen: dict[str, None] = {}
    for raw in names:
        name = clean_text(raw).lstrip("@").strip()
        if name:
            seen.setdefault(name.lower(), None)
    return tuple(seen)


def validate_content(content: PostContent) -> PostContent:
    """The content cleaned (control characters stripped), or ``ValidationFailed``."""
    cleaned = replace(
        content,
        caption=clean_text(content.caption),
        first_comment=clean_text(content.first_comment),
        alt_text=clean_text(content.alt_text),
        collaborators=clean_collaborators(content.collaborators),
        location_id=(content.location_id or "").strip() or None,
    )
    errors: dict[str, str] = {}
    _check_caption(cleaned.caption, "caption", errors)
    _check_caption(cleaned.first_comment, "first_comment", errors)
    if len(cleaned.alt_text) > ALT_TEXT_MAX:
        errors["alt_text"] = (
            f"The alt text is {len(cleaned.alt_text)} characters long; Instagram allows up "
            f"to {ALT_TEXT_MAX}."
        )
    if len(cleaned.collaborators) > COLLABORATORS_MAX:
        errors["collaborators"] = (
            f"You can invite up to {COLLABORATORS_MAX} collaborators; this post has "
            f"{len(cleaned.collaborators)}."
        )
    elif bad := [n for n in cleaned.collaborators if not _USERNAME.match(n)]:
        errors["collaborators"] = f'"{bad[0]}" is not an Instagram username.'
    if cleaned.location_id is not None and not _LOCATION.match(cleaned.location_id):
        errors["location_id"] = "The location must be an Instagram location id (digits only)."
    if cleaned.kind is Kind.STORY:
        if cleaned.caption:
            errors["caption"] = "Instagram stories have no caption; remove it."
        if cleaned.first_comment:
            errors["first_comment"] = "Stories cannot be commented on; remove the first comment."
        if cleaned.collaborators:
            errors["collaborators"] = "Stories cannot have collaborators."
        if cleaned.location_id:
            errors["location_id"] = "Stories published through the API cannot have a location."
    if cleaned.alt_text and cleaned.kind is not Kind.IMAGE:
        errors["alt_text"] = "Alt text can be set for image posts only."
    _check_media(cleaned, errors)
    if errors:
        raise ValidationFailed(_summary(errors), errors)
    return cleaned


def _summary(errors: Mapping[str, str]) -> str:
    first = next(iter(errors.values()))
    more = len(errors) - 1
    return first if not more else f"{first} (and {more} more problem{'s' if more > 1 else ''})"


def zone(name: str) -> ZoneInfo:
    """The workspace's timezone; UTC when the stored name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(when: datetime, timezone: str) -> str:
    """``when`` as people in the workspace read it: "Fri 7 Mar 09:00 (Europe/Berlin)"."""
    tz = zone(timezone)
    local = when.astimezone(tz)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} ({tz.key})"


def validate_schedule(when: datetime, now: datetime, timezone: str = "UTC") -> datetime:
    """The time in UTC; refused when it is naive, in the past or beyond what a calendar shows."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValidationFailed(
            "The time has no timezone.", {"scheduled_at": "The time has no timezone."}
        )
    earliest, latest = SCHEDULE_RANGE
    try:
        utc = when.astimezone(UTC)
    except OverflowError:
        utc = latest
    if not earliest <= utc < latest:
        message = "That time is out of range; pick one before the year 9999."
        raise ValidationFailed(message, {"scheduled_at": message})
    if utc < now - PAST_GRACE:
        message = (
            f"{local_time(utc, timezone)} is in the past (it is now {local_time(now, timezone)})"
            ". Pick a later time, or publish now."
        )
        raise ValidationFailed(message, {"scheduled_at": message})
    return utc
