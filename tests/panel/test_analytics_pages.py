"""The analytics pages, exports and the chat summary, on real data in the database."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.bootstrap import Container
from core.db.models import (
    AccountInsight,
    AutomationRule,
    InstagramAccount,
    Lead,
    LoginKind,
    MediaInsight,
    Membership,
    OutboundAction,
    OutboundStatus,
    Role,
    RuleStats,
    SyncState,
    Trigger,
    Workspace,
)
from core.domain.scope import Actor
from core.services import analytics, users
from tests.fake_meta_insights import FixedClock

NOW = datetime(2025, 3, 20, 10, 0, tzinfo=UTC)
YESTERDAY = date(2025, 3, 19)
ROOT = Path(__file__).parents[2]


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
async def shop(container: Container) -> dict[str, Any]:
    """A workspace with one account, 14 days of numbers, posts, a rule with results."""
    container.clock = FixedClock(NOW)
    owner, workspace = await users.create_owner("owner@example.com", "long enough pw")
    viewer = await users.create_user("viewer@example.com", "long enough pw")
    await Membership.create(workspace=workspace, user=viewer, role=Role.VIEWER)
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1784",
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="x",
    )
    # Days 1..14 before today: reach 100+n, views 300+n, interactions 10, followers growing.
    for n in range(1, 15):
        day = YESTERDAY - timedelta(days=n - 1)
        await AccountInsight.create(
            account=account,
            date=day,
            metrics={
                "reach": 100 + n,
                "views": 300 + n,
                "total_interactions": 10,
                "likes": 7,
                "followers_count": 1000 - n,
                "follower_count": 2,
            },
        )
    await MediaInsight.create(
        account=account,
        ig_media_id="m1",
        date=YESTERDAY,
        media_type="REELS",
        permalink="https://instagram.test/p/m1",
        metrics={
            "views": 900,
            "reach": 400,
            "total_interactions": 40,
            "ig_reels_avg_watch_time": 4200,
            "info": {"caption": "Spring drop is here", "timestamp": "2025-03-17T12:00:00+0000"},
        },
    )
    await MediaInsight.create(
        account=account,
        ig_media_id="m2",
        date=YESTERDAY,
        media_type="FEED",
        permalink="https://instagram.test/p/m2",
        metrics={
            "views": 100,
            "reach": 80,
            "total_interactions": 4,
            "info": {"caption": '=HYPERLINK("http://evil")', "timestamp": "2025-03-10T09:00:00Z"},
        },
    )
    rule = await AutomationRule.create(
        workspace=workspace, account=account, name="Price keyword", trigger=Trigger.COMMENT
    )
    await RuleStats.create(rule=rule, total_triggers=9, total_leads_captured=3)
    for n, kind in enumerate(["public_reply", "public_reply", "private_reply", "dm"]):
        action = await OutboundAction.create(
            account=account,
            kind=kind,
            dedupe_key=f"k{n}",
            target="t",
            payload={"rule_id": rule.id},
            status=OutboundStatus.SENT,
        )
        action.sent_at = NOW - timedelta(days=2, hours=n)
        await action.save(update_fields=["sent_at"])
    lead = await Lead.create(workspace=workspace, account=account, rule=rule, igsid="p1")
    await Lead.filter(id=lead.id).update(created_at=NOW - timedelta(days=3))
    await SyncState.create(
        account=account, kind="daily", last_success_at=NOW, next_run_at=NOW + timedelta(hours=23)
    )
    await SyncState.create(
        account=account,
        kind="media",
        last_error="waiting: hourly call budget for insights used up",
        next_run_at=NOW + timedelta(minutes=40),
    )
    return {"workspace": workspace, "account": account, "rule": rule, "owner": owner}


async def _sign_in(client: Any, email: str = "viewer@example.com") -> None:
    page = await (await client.get("/login")).get_data(as_text=True)
    response = await client.post(
        "/login", form={"csrf_token": _csrf(page), "email": email, "password": "long enough pw"}
    )
    assert response.status_code == 302


async def test_analytics_page_needs_sign_in(client: Any, shop: dict[str, Any]) -> None:
    response = await client.get("/analytics/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


async def test_viewer_sees_cards_charts_top_posts_automations_and_sync(
    client: Any, shop: dict[str, Any]
) -> None:
    await _sign_in(client)
    start = (YESTERDAY - timedelta(days=6)).isoformat()
    response = await client.get(f"/analytics/?start={start}&end={YESTERDAY.isoformat()}")
    page = await response.get_data(as_text=True)
    assert response.status_code == 200

    # Followers: 999 yesterday, 993 seven days before: +6.
    assert "999" in page and "+6 in the period" in page
    # Reach over the last 7 days: n = 1..7 → 7 * 100 + 28.
    assert "728" in page
    # Engagement rate: 70 interactions / 728 reach.
    assert f"{70 * 100 / 728:.2f} %" in page
    # Previous 7 days (n = 8..14) reach 777: 728 is 6.3 % lower.
    assert "-6.3 %" in page and "was 777" in page

    data = json.loads(re.search(r'id="analytics-data">(.*?)</script>', page, re.S).group(1))
    assert data["labels"][0] == start and data["labels"][-1] == YESTERDAY.isoformat()
    assert data["reach"][-1] == 101 and data["followers"][-1] == 999
    assert data["automation"]["comments_replied"][-2] == 2
    assert data["automation"]["leads_by_rule"] == {"Price keyword": [0, 0, 0, 0, 1, 0, 0]}
    assert "vendor/chartjs/chart.umd.js" in page and "cdn" not in page.lower()

    assert "Spring drop is here" in page
    assert "/analytics/posts/m1" in page
    assert "/analytics/posts/m2" not in page  # posted before the period
    assert "Price keyword" in page
    assert "Comments replied" in page and "DMs sent" in page
    assert "Daily account metrics" in page and "hourly call budget" in page


async def test_automation_results_include_today_while_instagram_numbers_end_yesterday(
    client: Any, shop: dict[str, Any]
) -> None:
    # A new user's first automated reply and lead, an hour ago: today in the workspace.
    action = await OutboundAction.create(
        account=shop["account"],
        kind="public_reply",
        dedupe_key="today",
        target="t",
        payload={"rule_id": shop["rule"].id},
        status=OutboundStatus.SENT,
    )
    await OutboundAction.filter(id=action.id).update(sent_at=NOW - timedelta(hours=1))
    lead = await Lead.create(
        workspace=shop["workspace"], account=shop["account"], rule=shop["rule"], igsid="p2"
    )
    await Lead.filter(id=lead.id).update(created_at=NOW - timedelta(hours=1))
    await _sign_in(client)
    page = await (await client.get("/analytics/")).get_data(as_text=True)
    data = json.loads(re.search(r'id="analytics-data">(.*?)</script>', page, re.S).group(1))
    assert data["labels"][-1] == YESTERDAY.isoformat()
    assert data["automation"]["labels"][-1] == NOW.date().isoformat()
    assert data["automation"]["comments_replied"][-1] == 1
    assert data["automation"]["leads_by_rule"]["Price keyword"][-1] == 1
    results = page[page.index("<h2>Automation results</h2>") :]
    assert "today included" in results and "end yesterday" in results
    rule_row = re.search(r"<tr>\s*<td>(?:<a[^>]*>)?Price keyword.*?</tr>", results, re.S)
    assert rule_row, results
    # The trigger in the rule list's words, not the stored name.
    assert "A comment on a post or reel" in rule_row.group(0)
    assert "<td>comment</td>" not in rule_row.group(0)


async def test_comparing_two_chosen_periods(client: Any, shop: dict[str, Any]) -> None:
    await _sign_in(client)
    response = await client.get(
        "/analytics/?start=2025-03-19&end=2025-03-19"
        "&compare_start=2025-03-06&compare_end=2025-03-06"
    )
    page = await response.get_data(as_text=True)
    # 2025-03-19 is n=1 (reach 101); 2025-03-06 is n=14 (reach 114).
    assert "101" in page and "was 114" in page and "-11.4 %" in page
    assert "compared with 2025-03-06 \u2013 2025-03-06" in page


async def test_bad_dates_fall_back_with_a_message(client: Any, shop: dict[str, Any]) -> None:
    await _sign_in(client)
    response = await client.get("/analytics/?start=yesterday&end=2025-03-19")
    page = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Dates must look like 2025-01-31" in page
    assert "(28 days)" in page


async def test_post_detail_and_other_workspaces_posts(client: Any, shop: dict[str, Any]) -> None:
    await _sign_in(client)
    response = await client.get("/analytics/posts/m1")
    page = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Spring drop is here" in page and "4,200" in page and "10.00 %" in page

    other = await Workspace.create(name="Other")
    stranger = await InstagramAccount.create(
        workspace=other,
        ig_id="55",
        username="other",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="x",
    )
    await MediaInsight.create(account=stranger, ig_media_id="x9", date=YESTERDAY, metrics={})
    assert (await client.get("/analytics/posts/x9")).status_code == 404
    assert (await client.get("/analytics/posts/nope")).status_code == 404


async def test_account_csv_export(client: Any, shop: dict[str, Any]) -> None:
    await _sign_in(client)
    response = await client.get("/analytics/export/account.csv?start=2025-03-18&end=2025-03-19")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert (
        "reelay-account-metrics-2025-03-18-2025-03-19.csv"
        in response.headers["Content-Disposition"]
    )
    rows = list(csv.reader(io.StringIO(await response.get_data(as_text=True))))
    header = rows[0]
    assert header[:6] == [
        "date",
        "account",
        "followers_count",
        "follows_count",
        "media_count",
        "new_followers",
    ]
    assert "impressions" not in header and header[-1] == "engagement_rate_percent"
    assert len(rows) == 3
    first = dict(zip(header, rows[1], strict=True))
    assert first["date"] == "2025-03-18" and first["account"] == "shop"
    assert first["reach"] == "102" and first["followers_count"] == "998"
    assert first["new_followers"] == "2" and first["engagement_rate_percent"] == "9.8"
    assert first["shares"] == ""


async def test_post_csv_export_is_safe_for_spreadsheets(client: Any, shop: dict[str, Any]) -> None:
    await _sign_in(client)
    response = await client.get("/analytics/export/posts.csv?start=2025-03-01&end=2025-03-19")
    rows = list(csv.reader(io.StringIO(await response.get_data(as_text=True))))
    header = rows[0]
    posts = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert [p["media_id"] for p in posts] == ["m2", "m1"]  # oldest first
    assert posts[0]["caption"] == '\'=HYPERLINK("http://evil")'
    assert posts[1]["views"] == "900" and posts[1]["ig_reels_avg_watch_time"] == "4200"
    assert posts[1]["engagement_rate_percent"] == "10.0"

    later = await client.get("/analytics/export/posts.csv?start=2025-03-15&end=2025-03-19")
    assert [r[1] for r in csv.reader(io.StringIO(await later.get_data(as_text=True)))][1:] == ["m1"]


async def test_summary_for_chat(container: Container, shop: dict[str, Any]) -> None:
    stats = await analytics.summary(Actor.system(shop["workspace"].id), 7, clock=container.clock)
    assert stats.days == 7 and stats.end == YESTERDAY
    assert stats.reach == 728 and stats.followers == 999 and stats.follower_change == 6
    assert stats.reach_change_percent == -6.3
    assert stats.engagement_rate == round(70 * 100 / 728, 2)
    assert stats.comments_replied == 2 and stats.dms_sent == 2 and stats.leads == 1
    assert stats.top_post is not None and stats.top_post.caption == "Spring drop is here"
    assert stats.top_post.interactions == 40 and stats.top_post.engagement_rate == 10.0

    empty = await Workspace.create(name="Empty")
    nothing = await analytics.summary(Actor.system(empty.id), 30, clock=container.clock)
    assert nothing.accounts == 0 and nothing.reach is None and nothing.top_post is None


def test_chart_js_is_vendored_with_its_licence() -> None:
    vendor = ROOT / "panel/static/vendor/chartjs"
    script = (vendor / "chart.umd.js").read_text()
    assert script.startswith("/*!\n * Chart.js v4.4.9")
    assert "MIT" in (vendor / "LICENSE.md").read_text()
    assert "4.4.9" in (vendor / "README.md").read_text()
