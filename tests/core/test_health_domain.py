"""The health verdict, one case per verdict, and the chat lines naming the zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from core.domain.health import WEBHOOKS_CAUSE, Figures, Level, chat_lines, verdict

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
WORKING = Figures(
    now=NOW,
    active=True,
    last_webhook_at=NOW - timedelta(minutes=3),
    events_per_hour=(2,) * 24,
    comments=40,
    swept=1,
    sends={"sent": 30, "skipped": 1},
    reasons={"skipped: private reply already sent": 1},
    token_expires_at=NOW + timedelta(days=40),
    quota_used=3,
    quota_total=100,
)


def test_a_healthy_account_is_working() -> None:
    judged = verdict(WORKING)
    assert (judged.level, judged.text, judged.problems) == (Level.WORKING, "Working", ())


def test_many_comments_caught_by_the_sweep_mean_webhooks_are_missing() -> None:
    judged = verdict(replace(WORKING, comments=20, swept=12))
    assert judged.text == "Webhooks missing — check the Meta app's subscriptions"
    assert judged.level is Level.BROKEN
    assert "12 of 20 comments" in judged.problems[0] and WEBHOOKS_CAUSE in judged.problems[0]
    # One straggler among many is not a broken webhook.
    assert verdict(replace(WORKING, comments=20, swept=1)).text == "Working"


def test_an_account_not_subscribed_to_webhooks_is_missing_them() -> None:
    judged = verdict(replace(WORKING, webhook_subscribed=False))
    assert judged.text == "Webhooks missing — check the Meta app's subscriptions"
    assert "not subscribed" in judged.problems[0]


def test_a_token_close_to_expiry_asks_for_a_reconnect() -> None:
    judged = verdict(replace(WORKING, token_expires_at=NOW + timedelta(days=3, hours=2)))
    assert (judged.level, judged.text) == (Level.WARNING, "Token expires in 3 days — reconnect")
    one = verdict(replace(WORKING, token_expires_at=NOW + timedelta(hours=30)))
    assert one.text == "Token expires in 1 day — reconnect"


def test_a_dead_or_expired_token_needs_a_reconnect() -> None:
    dead = verdict(replace(WORKING, active=False, status_reason="Error validating access token"))
    assert (dead.level, dead.text) == (Level.BROKEN, "Needs reconnect")
    assert "Error validating access token" in dead.problems[0]
    expired = verdict(replace(WORKING, token_expires_at=NOW - timedelta(minutes=1)))
    assert expired.text == "Needs reconnect" and "expired" in expired.problems[0]


def test_sends_failing_names_the_most_common_reason() -> None:
    figures = replace(
        WORKING,
        sends={"sent": 2, "failed": 4, "unconfirmed": 1},
        reasons={"failed: (#10) outside the window": 3, "failed: spam": 1, "unconfirmed: x": 1},
    )
    judged = verdict(figures)
    assert (judged.level, judged.text) == (Level.BROKEN, "Sends failing")
    assert "5 of 7" in judged.problems[0] and "(#10) outside the window" in judged.problems[0]
    # A few failures among many sends are not "failing".
    assert verdict(replace(figures, sends={"sent": 50, "failed": 4})).text == "Working"


def test_the_verdict_is_the_most_urgent_problem_and_all_are_listed() -> None:
    judged = verdict(
        replace(
            WORKING,
            active=False,
            webhook_subscribed=False,
            token_expires_at=NOW + timedelta(days=2),
        )
    )
    assert judged.text == "Needs reconnect"
    assert len(judged.problems) == 2  # the expiry warning is moot once the token is refused


def test_chat_lines_show_times_in_the_workspace_zone() -> None:
    text = "\n".join(chat_lines("shop", WORKING, ZoneInfo("Europe/Berlin")))
    assert "@shop: Working" in text
    assert "Last webhook: 2026-12-04 09:57 (Europe/Berlin)" in text
    assert "Events: 48 in 24 h, 2 in the last hour" in text
    assert "Comments caught by the sweep: 1 of 40" in text
    assert "Sends in 24 h: 30 sent, 1 skipped" in text
    assert "Token expires: 2027-01-13 10:00 (Europe/Berlin)" in text
    assert "Publishing quota: 3 of 100 in 24 h" in text
