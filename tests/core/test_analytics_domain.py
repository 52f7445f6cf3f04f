"""Analytics arithmetic, insight parsing and spreadsheet-safe cells."""

from __future__ import annotations

from datetime import date

import pytest

from core.domain import analytics as a
from core.domain.insights import daily_values, media_kind, media_metrics_for, total_values
from core.domain.spreadsheet import safe_cell, safe_row
from core.errors import ValidationFailed


def test_engagement_rate_is_interactions_over_reach_in_percent() -> None:
    assert a.engagement_rate(37, 1000) == 3.7
    assert a.engagement_rate(1, 3) == 33.33
    assert a.engagement_rate(5, 0) is None
    assert a.engagement_rate(None, 100) is None
    assert a.engagement_rate(0, 250) == 0.0


def test_change_between_periods() -> None:
    up = a.compare(150, 100)
    assert up is not None and up.delta == 50 and up.percent == 50.0 and up.direction == "up"
    down = a.compare(75, 100)
    assert down is not None and down.percent == -25.0 and down.direction == "down"
    from_zero = a.compare(10, 0)
    assert from_zero is not None and from_zero.percent is None and from_zero.delta == 10
    assert a.compare(None, 3) is None and a.compare(3, None) is None
    negative_base = a.compare(-5, -10)
    assert negative_base is not None and negative_base.percent == 50.0


def test_ranges_and_previous_period() -> None:
    week = a.DateRange.last(7, ending=date(2025, 3, 19))
    assert week.start == date(2025, 3, 13) and week.days == 7
    before = week.previous()
    assert before == a.DateRange(date(2025, 3, 6), date(2025, 3, 12))
    days = list(week)
    assert len(days) == 7 and days[0] == week.start and days[-1] == week.end
    assert date(2025, 3, 13) in week and date(2025, 3, 12) not in week
    with pytest.raises(ValidationFailed):
        a.DateRange(date(2025, 3, 2), date(2025, 3, 1))
    with pytest.raises(ValidationFailed):
        a.DateRange(date(2024, 1, 1), date(2025, 3, 1))
    default = a.DateRange.last(28, ending=date(2025, 3, 19))
    assert a.parse_range("", None, default=default) == default
    assert a.parse_range("2025-03-01", "2025-03-02", default=default).days == 2
    with pytest.raises(ValidationFailed):
        a.parse_range("03/01/2025", "", default=default)


def test_period_totals_and_comparison() -> None:
    days = {
        date(2025, 3, 1): {"reach": 100, "views": 300, "total_interactions": 10},
        date(2025, 3, 2): {
            "reach": 200,
            "views": 500,
            "total_interactions": 20,
            "followers_count": 1000,
            "follower_count": 4,
        },
        date(2025, 3, 3): {"followers_count": 1012, "follower_count": 15},
        date(2025, 3, 4): {
            "reach": 50,
            "views": 60,
            "total_interactions": 30,
            "followers_count": 1030,
        },
        date(2025, 2, 27): {
            "reach": 100,
            "views": 100,
            "total_interactions": 2,
            "followers_count": 990,
        },
        date(2025, 2, 28): {
            "reach": 100,
            "views": 100,
            "total_interactions": 2,
            "followers_count": 995,
        },
    }
    current = a.period_totals(days, a.DateRange(date(2025, 3, 1), date(2025, 3, 4)))
    assert current.reach == 350 and current.views == 860 and current.interactions == 60
    assert current.followers == 1030 and current.follower_change == 30
    assert current.new_follows == 19
    assert current.engagement_rate == round(60 * 100 / 350, 2)

    previous = a.period_totals(days, a.DateRange(date(2025, 2, 25), date(2025, 2, 28)))
    assert previous.engagement_rate == 2.0 and previous.follower_change == 5
    comparison = a.Comparison(current, previous)
    assert comparison.reach is not None and comparison.reach.percent == 75.0
    assert comparison.followers is not None and comparison.followers.delta == 35
    assert comparison.engagement_rate is not None
    assert comparison.engagement_rate.delta == pytest.approx(17.14 - 2.0)

    empty = a.period_totals({}, a.DateRange(date(2025, 1, 1), date(2025, 1, 2)))
    assert empty.reach is None and empty.engagement_rate is None and empty.followers is None


def test_follower_change_needs_two_known_days() -> None:
    assert a.follower_change([(date(2025, 1, 2), 10)]) is None
    series = [(date(2025, 1, 3), 25), (date(2025, 1, 1), 10), (date(2025, 1, 2), None)]
    assert a.follower_change(series) == 15


def test_top_posts_rank_by_interactions_then_reach() -> None:
    posts = [
        a.post_performance("1", "FEED", "", {"total_interactions": 5, "reach": 50}),
        a.post_performance("2", "REELS", "", {"likes": 10, "comments": 3, "saved": 1, "reach": 9}),
        a.post_performance("3", "FEED", "", {"total_interactions": 14, "reach": 80}),
        a.post_performance("4", "FEED", "", {"like_count": 2, "comments_count": 1}),
    ]
    ranked = a.top_posts(posts, limit=3)
    assert [p.ig_media_id for p in ranked] == ["3", "2", "1"]
    assert ranked[1].interactions == 14 and ranked[1].engagement_rate == round(1400 / 9, 2)
    assert posts[3].interactions == 3 and posts[3].engagement_rate is None


def test_short_caption() -> None:
    assert a.short_caption("Hello\nsecond line") == "Hello"
    assert a.short_caption("x" * 80, limit=10) == "xxxxxxxxx…"
    assert a.short_caption("   ") == ""


def test_insight_rows_are_read_in_both_shapes() -> None:
    rows = [
        {"name": "reach", "period": "day", "total_value": {"value": 120}},
        {"name": "views", "values": [{"value": 7}]},
        {"name": "likes", "total_value": {"value": "n/a"}},
        {"title": "no name"},
    ]
    assert total_values(rows) == {"reach": 120, "views": 7}
    series = [
        {
            "name": "follower_count",
            "values": [
                {"value": 3, "end_time": "2025-03-02T08:00:00+0000"},
                {"value": 5, "end_time": "2025-03-03T07:00:00+0000"},
                {"value": 1, "end_time": "garbage"},
            ],
        }
    ]
    assert daily_values(series, "follower_count") == {date(2025, 3, 1): 3, date(2025, 3, 2): 5}


def test_media_metric_sets() -> None:
    assert media_kind({"media_product_type": "REELS", "media_type": "VIDEO"}) == "REELS"
    assert media_kind({"media_type": "CAROUSEL_ALBUM", "media_product_type": "FEED"}) == "FEED"
    assert media_kind({"media_product_type": "STORY"}) == "STORY"
    reels = media_metrics_for("REELS")
    assert {"views", "reach", "ig_reels_avg_watch_time"} <= set(reels)
    assert "ig_reels_avg_watch_time" not in media_metrics_for("FEED")
    assert "impressions" not in {*reels, *media_metrics_for("STORY")}


@pytest.mark.parametrize(
    ("raw", "cell"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tlead", "'\tlead"),
        ("\rlead", "'\rlead"),
        ("plain text", "plain text"),
        (-5, -5),
        (3.5, 3.5),
        (None, ""),
    ],
)
def test_cells_that_would_run_as_formulas_are_quoted(raw: object, cell: object) -> None:
    assert safe_cell(raw) == cell


def test_safe_row() -> None:
    assert safe_row(["=1", 2, None]) == ["'=1", 2, ""]
