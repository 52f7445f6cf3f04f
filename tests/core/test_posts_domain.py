from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.domain.posts import (
    Kind,
    MediaFacts,
    PostContent,
    Status,
    can_transition,
    check_editable,
    check_transition,
    clean_text,
    count_hashtags,
    count_mentions,
    local_time,
    validate_content,
    validate_schedule,
)
from core.errors import Conflict, ValidationFailed

JPEG = MediaFacts(asset_id=1, mime="image/jpeg", size=200_000, width=1080, height=1350)
VIDEO = MediaFacts(
    asset_id=2, mime="video/mp4", size=5_000_000, width=1080, height=1920, duration_s=12
)


def refused(content: PostContent) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as info:
        validate_content(content)
    return info.value.fields


def test_clean_text_strips_control_characters_but_keeps_lines_and_emoji() -> None:
    raw = "Hello\x00 world\x07\r\nline two\u200b 👨\u200d👩\u200d👧 \x1b[31m"
    assert clean_text(raw) == "Hello world\nline two 👨\u200d👩\u200d👧 [31m"


def test_counts_hashtags_and_mentions_like_instagram() -> None:
    text = "#one #two email@me.com a#b @anna @bob.smith #três"
    assert count_hashtags(text) == 3
    assert count_mentions(text) == 2


def test_valid_image_post_is_cleaned() -> None:
    content = validate_content(
        PostContent(
            kind=Kind.IMAGE,
            media=[JPEG],
            caption="  Sunny\x00 day #beach  ",
            collaborators=["@anna", "Anna", "bob"],
            alt_text="A beach",
        )
    )
    assert content.caption == "Sunny day #beach"
    assert content.collaborators == ("anna", "bob")


@pytest.mark.parametrize(
    ("caption", "words"),
    [
        ("x" * 2201, "2201 characters"),
        (" ".join(f"#t{i}" for i in range(31)), "31 hashtags"),
        (" ".join(f"@u{i}" for i in range(21)), "21 accounts"),
    ],
)
def test_caption_limits_say_what_to_change(caption: str, words: str) -> None:
    fields = refused(PostContent(kind=Kind.IMAGE, media=[JPEG], caption=caption))
    assert words in fields["caption"]


def test_caption_at_the_limits_is_accepted() -> None:
    caption = " ".join(f"#t{i}" for i in range(30)) + " " + " ".join(f"@u{i}" for i in range(20))
    validate_content(PostContent(kind=Kind.IMAGE, media=[JPEG], caption=caption))
    validate_content(PostContent(kind=Kind.IMAGE, media=[JPEG], caption="x" * 2200))


@pytest.mark.parametrize(
    ("kind", "media", "field_words"),
    [
        (Kind.IMAGE, [], "exactly one image"),
        (Kind.IMAGE, [VIDEO], "exactly one image"),
        (Kind.IMAGE, [JPEG, JPEG], "exactly one image"),
        (Kind.REEL, [JPEG], "exactly one video"),
        (Kind.CAROUSEL, [JPEG], "2 to 10"),
        (Kind.CAROUSEL, [JPEG] * 11, "it has 11"),
        (Kind.STORY, [JPEG, VIDEO], "one image or one video"),
    ],
)
def test_media_counts_per_kind(kind: Kind, media: list[MediaFacts], field_words: str) -> None:
    assert field_words in refused(PostContent(kind=kind, media=media))["media"]


def test_each_kind_accepts_its_media() -> None:
    validate_content(PostContent(kind=Kind.REEL, media=[VIDEO], cover=JPEG))
    validate_content(PostContent(kind=Kind.CAROUSEL, media=[JPEG, VIDEO] * 5))
    validate_content(PostContent(kind=Kind.STORY, media=[VIDEO]))
    tall_story = MediaFacts(asset_id=3, mime="image/jpeg", size=1000, width=1080, height=1920)
    validate_content(PostContent(kind=Kind.STORY, media=[tall_story]))


def test_media_limits() -> None:
    png = MediaFacts(asset_id=3, mime="image/png", size=1000, width=100, height=100)
    assert "not a JPEG" in refused(PostContent(kind=Kind.IMAGE, media=[png]))["media"]
    big = MediaFacts(asset_id=3, mime="image/jpeg", size=9 * 1024 * 1024, width=1000, height=1000)
    assert "9 MB" in refused(PostContent(kind=Kind.IMAGE, media=[big]))["media"]
    tall = MediaFacts(asset_id=3, mime="image/jpeg", size=1000, width=1080, height=1920)
    assert "too tall" in refused(PostContent(kind=Kind.IMAGE, media=[tall]))["media"]
    short = MediaFacts(asset_id=4, mime="video/mp4", size=1000, duration_s=1.5)
    assert "1.5 s" in refused(PostContent(kind=Kind.REEL, media=[short]))["media"]
    long_story = MediaFacts(asset_id=4, mime="video/mp4", size=1000, duration_s=61)
    assert "60 s" in refused(PostContent(kind=Kind.STORY, media=[long_story]))["media"]
    story_big = MediaFacts(asset_id=4, mime="video/mp4", size=101 * 1024 * 1024, duration_s=10)
    assert "101 MB" in refused(PostContent(kind=Kind.STORY, media=[story_big]))["media"]
    item = refused(PostContent(kind=Kind.CAROUSEL, media=[JPEG, short]))["media"]
    assert item.startswith("Item 2")


def test_other_fields() -> None:
    fields = refused(
        PostContent(
            kind=Kind.IMAGE,
            media=[JPEG],
            alt_text="a" * 1001,
            collaborators=["a", "b", "c", "d"],
            location_id="Berlin",
        )
    )
    assert set(fields) == {"alt_text", "collaborators", "location_id"}
    story = refused(PostContent(kind=Kind.STORY, media=[JPEG], caption="hi", first_comment="x"))
    assert set(story) == {"caption", "first_comment"}
    assert "cover" in refused(PostContent(kind=Kind.IMAGE, media=[JPEG], cover=JPEG))


def test_summary_names_the_first_problem_and_counts_the_rest() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate_content(PostContent(kind=Kind.IMAGE, caption="x" * 2300, alt_text="a" * 1001))
    assert "2300 characters" in info.value.message
    assert "and 2 more problems" in info.value.message


def test_schedule_must_not_be_in_the_past() -> None:
    now = datetime(2025, 3, 7, 8, 0, tzinfo=UTC)
    with pytest.raises(ValidationFailed) as info:
        validate_schedule(now - timedelta(hours=1), now, "Europe/Berlin")
    assert (
        "Fri 7 Mar 2025 08:00 (Europe/Berlin) is in the past" in info.value.fields["scheduled_at"]
    )
    later = validate_schedule(now + timedelta(minutes=1), now)
    assert later.tzinfo is not None and later.utcoffset() == timedelta(0)
    assert validate_schedule(now - timedelta(seconds=2), now) == now - timedelta(seconds=2)
    with pytest.raises(ValidationFailed):
        validate_schedule(datetime(2030, 1, 1), now)


def test_local_time_uses_the_workspace_zone_and_falls_back_to_utc() -> None:
    when = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    assert local_time(when, "America/New_York") == "Tue 1 Jul 2025 08:00 (America/New_York)"
    assert local_time(when, "Mars/Olympus") == "Tue 1 Jul 2025 12:00 (UTC)"


def test_state_machine() -> None:
    assert can_transition(Status.SCHEDULED, Status.PUBLISHING)
    assert can_transition(Status.PUBLISHING, Status.PUBLISHED)
    assert not can_transition(Status.PUBLISHED, Status.SCHEDULED)
    assert not can_transition(Status.DRAFT, Status.PUBLISHED)
    assert not can_transition(Status.PUBLISHING, Status.CANCELLED)
    with pytest.raises(Conflict, match="already published, so it cannot be cancelled"):
        check_transition(Status.PUBLISHED, Status.CANCELLED, "cancelled")
    with pytest.raises(Conflict, match="being published right now"):
        check_editable(Status.PUBLISHING)
    check_editable(Status.FAILED)
