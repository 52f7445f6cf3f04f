"""Composer, calendar, queue, library, approvals and leads pages: validation errors next to
their fields, the calendar's reschedule checks, and CSV exports safe to open in Excel."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from core.db.models import (
    AutomationRule,
    Conversation,
    DraftStatus,
    Lead,
    MediaAsset,
    Message,
    Post,
    ReplyDraft,
    Trigger,
    Workspace,
)
from core.domain.posts import Status
from core.domain.scope import Actor
from core.services import media
from core.settings import Settings
from core.wiring import assemble_services
from tests.media_samples import image_bytes
from tests.panel.helpers import CSRF
from tests.panel.sandbox_world import World, sandbox_world


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    made = await sandbox_world(client, container, sandbox)
    await Workspace.filter(id=made.account.workspace_id).update(timezone="Europe/Berlin")  # type: ignore[attr-defined]
    return made


async def images(container: Any, workspace_id: int, count: int) -> list[MediaAsset]:
    storage = assemble_services(container).storage
    return [
        await media.upload_bytes(
            Actor.system(workspace_id),
            storage,
            image_bytes(1080, 1080 + n),
            f"photo{n}.jpg",
        )
        for n in range(count)
    ]


async def post_form(client: Any, url: str, form: dict[str, Any]) -> Any:
    """POST a form with repeated fields (lists become several values)."""
    return await client.post(
        url,
        data=urlencode(form, doseq=True),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def error_of(page: str, field: str) -> str:
    match = re.search(rf'<small id="{re.escape(field)}-error" class="error">([^<]*)</small>', page)
    assert match, f"no error shown next to {field}"
    return match.group(1)


def tomorrow_at(hour: int) -> str:
    day = datetime.now(ZoneInfo("Europe/Berlin")).date() + timedelta(days=1)
    return f"{day.isoformat()}T{hour:02d}:00"


# ---------------------------------------------------------------- composer


async def test_carousel_for_two_accounts_is_scheduled_in_the_workspace_timezone(
    client: Any, container: Any, world: World
) -> None:
    second = await world.account.clone()
    second.ig_id, second.username = "17841400000000078", "second_shop"
    await second.save()
    assets = await images(container, world.account.workspace_id, 3)  # type: ignore[attr-defined]
    response = await post_form(
        client,
        "/compose",
        (
            {
                "csrf_token": CSRF,
                "account_ids": [str(world.account.id), str(second.id)],
                "kind": "carousel",
                "media_ids": [str(assets[2].id), str(assets[0].id)],
                "caption": "Spring is here #spring @friend",
                "action": "schedule",
                "scheduled_at": tomorrow_at(9),
            }
        ),
    )
    assert response.status_code == 302
    posts = await Post.all().order_by("account_id")
    assert [p.account_id for p in posts] == [world.account.id, second.id]  # type: ignore[attr-defined]
    for post in posts:
        assert post.status is Status.SCHEDULED and post.kind.value == "carousel"
        local = post.scheduled_at.astimezone(ZoneInfo("Europe/Berlin"))  # type: ignore[union-attr]
        assert (local.hour, local.minute) == (9, 0)
    # The calendar shows them at 09:00 workspace time.
    start = datetime.now(UTC) - timedelta(days=1)
    end = datetime.now(UTC) + timedelta(days=3)
    answer = await client.get(f"/posts/events?start={start.isoformat()}&end={end.isoformat()}")
    events = json.loads(await answer.get_data(as_text=True))
    assert len(events) == 2 and all(e["start"].endswith("T09:00:00") for e in events)
    assert events[0]["classNames"] == ["status-scheduled"] and events[0]["editable"] is True
    # The month view's thumbnail, account and the caption's first words.
    shown = events[0]["extendedProps"]
    assert shown["account"] == world.account.username and shown["items"] == 2
    assert shown["words"] == "Spring is here #spring @friend"
    assert shown["thumb"].startswith("/media/") and shown["time"].endswith(" 09:00")


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"account_ids": []}, "accounts", "at least one account"),
        ({"media_ids": "first"}, "media", "2"),
        ({"caption": " ".join(f"#t{n}" for n in range(31))}, "caption", "30"),
        ({"caption": "x" * 2201}, "caption", "2200"),
        ({"scheduled_at": ""}, "scheduled_at", "Pick the day"),
        ({"scheduled_at": "2020-01-01T09:00"}, "scheduled_at", "in the past"),
        ({"scheduled_at": "next friday"}, "scheduled_at", "Enter a date"),
        ({"kind": "image", "alt_text": "a" * 1001}, "alt_text", "1000"),
        ({"first_comment": " ".join(f"@u{n}" for n in range(21))}, "first_comment", "20"),
    ],
)
async def test_composer_errors_show_next_to_their_field(
    client: Any, container: Any, world: World, changes: dict[str, Any], field: str, words: str
) -> None:
    assets = await images(container, world.account.workspace_id, 2)  # type: ignore[attr-defined]
    form: dict[str, Any] = {
        "csrf_token": CSRF,
        "account_ids": [str(world.account.id)],
        "kind": "carousel",
        "media_ids": [str(a.id) for a in assets],
        "caption": "Hello",
        "action": "schedule",
        "scheduled_at": tomorrow_at(10),
    }
    form.update(changes)
    if form["media_ids"] == "first":
        form["media_ids"] = [str(assets[0].id)]
    if form["kind"] == "image":
        form["media_ids"] = [str(assets[0].id)]
    response = await post_form(client, "/compose", form)
    assert response.status_code == 422
    page = await response.get_data(as_text=True)
    assert words in error_of(page, field)
    assert not await Post.exists()


async def test_composer_says_how_to_turn_ai_captions_on(client: Any, world: World) -> None:
    page = await (await client.get("/compose")).get_data(as_text=True)
    # There is no settings page for the AI server: the hint names the variables.
    assert "AI is off: set OPENAI_API_KEY (or OPENAI_BASE_URL) and restart Reelay." in page


async def test_upload_answers_json_for_the_progress_bar(client: Any, world: World) -> None:
    ok = await client.post(
        "/compose/upload",
        files={"file": _file("photo.png", image_bytes(800, 800, "PNG"))},
        headers={"X-CSRF-Token": CSRF},
    )
    assert ok.status_code == 201
    body = json.loads(await ok.get_data(as_text=True))
    assert body["mime"] == "image/jpeg" and body["url"].startswith("/media/")
    bad = await client.post(
        "/compose/upload",
        files={"file": _file("notes.txt", b"just text")},
        headers={"X-CSRF-Token": CSRF},
    )
    assert bad.status_code == 422 and "error" in json.loads(await bad.get_data(as_text=True))


def _file(name: str, data: bytes) -> Any:
    from werkzeug.datastructures import FileStorage

    return FileStorage(io.BytesIO(data), filename=name)


# ---------------------------------------------------------------- calendar and queue


async def _scheduled(client: Any, container: Any, world: World) -> Post:
    assets = await images(container, world.account.workspace_id, 1)  # type: ignore[attr-defined]
    await post_form(
        client,
        "/compose",
        (
            {
                "csrf_token": CSRF,
                "account_ids": [str(world.account.id)],
                "kind": "image",
                "media_ids": [str(assets[0].id)],
                "action": "schedule",
                "scheduled_at": tomorrow_at(9),
            }
        ),
    )
    return await Post.get()


async def test_drag_reschedules_with_the_api_checks(
    client: Any, container: Any, world: World
) -> None:
    post = await _scheduled(client, container, world)
    moved = await client.post(
        f"/posts/{post.id}/reschedule",
        json={"start": tomorrow_at(18) + ":00"},
        headers={"X-CSRF-Token": CSRF},
    )
    assert moved.status_code == 200
    fresh = await Post.get(id=post.id)
    assert fresh.scheduled_at.astimezone(ZoneInfo("Europe/Berlin")).hour == 18  # type: ignore[union-attr]
    assert fresh.version == post.version + 1
    past = await client.post(
        f"/posts/{post.id}/reschedule",
        json={"start": "2020-01-01T09:00:00"},
        headers={"X-CSRF-Token": CSRF},
    )
    assert past.status_code == 422
    assert "in the past" in json.loads(await past.get_data(as_text=True))["error"]
    assert (await Post.get(id=post.id)).scheduled_at == fresh.scheduled_at
    await Post.filter(id=post.id).update(status=Status.PUBLISHED)
    published = await client.post(
        f"/posts/{post.id}/reschedule",
        json={"start": tomorrow_at(20)},
        headers={"X-CSRF-Token": CSRF},
    )
    assert published.status_code == 409
    assert "already published" in json.loads(await published.get_data(as_text=True))["error"]


async def test_failed_post_shows_its_reason_and_retries(
    client: Any, container: Any, world: World
) -> None:
    post = await _scheduled(client, container, world)
    await Post.filter(id=post.id).update(
        status=Status.FAILED, last_error="The image's aspect ratio is not supported."
    )
    page = await (await client.get("/posts/queue?status=failed")).get_data(as_text=True)
    assert "aspect ratio is not supported" in page and f"/posts/{post.id}/retry" in page
    retried = await client.post(f"/posts/{post.id}/retry", form={"csrf_token": CSRF})
    assert retried.status_code == 302
    assert (await Post.get(id=post.id)).status is Status.SCHEDULED
    detail = await (await client.get(f"/posts/{post.id}")).get_data(as_text=True)
    assert "scheduled" in detail


async def test_a_scheduled_post_can_be_published_now_from_its_page(
    client: Any, container: Any, world: World
) -> None:
    post = await _scheduled(client, container, world)
    detail = await (await client.get(f"/posts/{post.id}")).get_data(as_text=True)
    assert f'action="/posts/{post.id}/publish-now"' in detail
    before = datetime.now(UTC)
    answer = await client.post(f"/posts/{post.id}/publish-now", form={"csrf_token": CSRF})
    assert answer.status_code == 302
    fresh = await Post.get(id=post.id)
    assert fresh.status is Status.SCHEDULED
    assert fresh.scheduled_at is not None and fresh.scheduled_at <= datetime.now(UTC)
    assert fresh.scheduled_at >= before - timedelta(seconds=1)
    await Post.filter(id=post.id).update(status=Status.PUBLISHED)
    published = await (await client.get(f"/posts/{post.id}")).get_data(as_text=True)
    assert "publish-now" not in published


# ---------------------------------------------------------------- library


async def test_library_shows_usage_and_deletes_only_unused_files(
    client: Any, container: Any, world: World
) -> None:
    post = await _scheduled(client, container, world)
    used = await MediaAsset.get()
    spare = (await images(container, world.account.workspace_id, 2))[1]  # type: ignore[attr-defined]
    page = await (await client.get("/library")).get_data(as_text=True)
    assert f"/posts/{post.id}" in page and "Not used" in page
    refused = await client.post(f"/library/{used.id}/delete", form={"csrf_token": CSRF})
    assert refused.status_code == 302
    assert await MediaAsset.filter(id=used.id).exists()
    page = await (await client.get("/library")).get_data(as_text=True)
    assert f"used by post #{post.id}" in page
    storage = assemble_services(container).storage
    assert await client.post(f"/library/{spare.id}/delete", form={"csrf_token": CSRF})
    assert not await MediaAsset.filter(id=spare.id).exists()
    assert await storage.size(spare.storage_key) is None
    found = await (await client.get("/library?q=photo1&kind=image")).get_data(as_text=True)
    assert "photo0" not in found


async def test_library_upload_without_a_file_says_to_choose_one(client: Any, world: World) -> None:
    # A browser sends an empty, nameless part when no file was chosen.
    sent = await client.post("/library", form={"csrf_token": CSRF}, files={"files": _file("", b"")})
    assert sent.status_code == 302
    page = await (await client.get("/library")).get_data(as_text=True)
    assert "Choose one or more files to upload first." in page
    assert ": The file is empty." not in page


# ---------------------------------------------------------------- approvals


async def _draft(world: World, text: str = "Our price is 20 EUR.") -> ReplyDraft:
    conversation, _ = await Conversation.get_or_create(
        account_id=world.account.id, igsid="5550001", defaults={"username": "maria"}
    )
    await Message.create(conversation=conversation, direction="in", text="Hi there")
    await Message.create(conversation=conversation, direction="out", text="Hello Maria!")
    await Message.create(conversation=conversation, direction="in", text="How much is it?")
    return await ReplyDraft.create(
        workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
        account_id=world.account.id,
        conversation=conversation,
        inbound_text="How much is it?",
        proposed_text=text,
        target={"igsid": "5550001", "channel": "dm"},
        expires_at=datetime.now(UTC) + timedelta(hours=20),
    )


async def test_approvals_show_the_conversation_and_decide(client: Any, world: World) -> None:
    draft = await _draft(world)
    page = await (await client.get("/approvals")).get_data(as_text=True)
    assert "Hello Maria!" in page and "How much is it?" in page and "Our price is 20 EUR." in page
    assert (await client.get(f"/approvals/{draft.id}/state")).status_code == 204
    too_long = await client.post(
        f"/approvals/{draft.id}/edit", form={"csrf_token": CSRF, "text": "é" * 600}
    )
    assert too_long.status_code == 422
    assert "1000" in await too_long.get_data(as_text=True)
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.PENDING
    edited = await client.post(
        f"/approvals/{draft.id}/edit", form={"csrf_token": CSRF, "text": "It is 18 EUR today."}
    )
    assert edited.status_code == 200
    assert "It is 18 EUR today." in await edited.get_data(as_text=True)
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.EDITED
    again = await client.post(f"/approvals/{draft.id}/approve", form={"csrf_token": CSRF})
    assert again.status_code == 409


async def test_a_decision_made_elsewhere_replaces_the_card(client: Any, world: World) -> None:
    draft = await _draft(world)
    page = await (await client.get("/approvals")).get_data(as_text=True)
    assert f'hx-get="/approvals/{draft.id}/state"' in page
    await ReplyDraft.filter(id=draft.id).update(
        status=DraftStatus.APPROVED, final_text=draft.proposed_text, decided_at=datetime.now(UTC)
    )
    state = await client.get(f"/approvals/{draft.id}/state")
    assert state.status_code == 200
    assert state.headers["HX-Retarget"] == f"#draft-{draft.id}"
    assert "approved" in await state.get_data(as_text=True)
    newer = await _draft(world, "Another answer")
    fresh = await (await client.get(f"/approvals/new?after={draft.id}")).get_data(as_text=True)
    assert f'id="draft-{newer.id}"' in fresh and f"after={newer.id}" in fresh


# ---------------------------------------------------------------- leads


async def _leads(world: World) -> AutomationRule:
    rule = await AutomationRule.create(
        workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
        account=world.account,
        name="Price lead",
        trigger=Trigger.COMMENT,
        keywords=["price"],
        config={"lead_capture_settings": {"webhook_url": "http://127.0.0.1:9/hook"}},
    )
    for username, name, email in [
        ("alice", '=HYPERLINK("http://evil")', "alice@example.com"),
        ("bob", "+1 Bob", "@bob@example.com"),
        ("chloé", "Chloé Zoë", "-x@example.com"),
    ]:
        await Lead.create(
            workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
            account=world.account,
            rule=rule,
            igsid=f"id-{username}",
            username=username,
            name=name,
            email=email,
            custom_fields={"note": "\tcmd|' /C calc'!A0"},
            webhook_status="failed",
            webhook_error="HTTP 500",
        )
    return rule


async def test_csv_export_is_utf8_and_safe_from_formula_injection(
    client: Any, world: World
) -> None:
    await _leads(world)
    response = await client.get("/leads/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv; charset=utf-8")
    raw = await response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    by_user = {row["username"]: row for row in rows}
    assert by_user["alice"]["name"] == '\'=HYPERLINK("http://evil")'
    assert by_user["bob"]["name"] == "'+1 Bob" and by_user["bob"]["email"] == "'@bob@example.com"
    assert by_user["chloé"]["name"] == "Chloé Zoë"
    assert by_user["chloé"]["email"] == "'-x@example.com"
    assert all(row["note"].startswith("'\t") for row in rows)


async def test_leads_search_filters_and_detail(client: Any, world: World) -> None:
    rule = await _leads(world)
    page = await (await client.get("/leads?q=chlo")).get_data(as_text=True)
    assert "Chloé Zoë" in page and "alice@example.com" not in page
    today = datetime.now(ZoneInfo("Europe/Berlin")).date()
    dated = await client.get(f"/leads?rule_id={rule.id}&since={today}&until={today}")
    assert "alice@example.com" in await dated.get_data(as_text=True)
    earlier = today - timedelta(days=3)
    old = await client.get(f"/leads?since={earlier}&until={earlier}")
    assert "No leads match" in await old.get_data(as_text=True)
    export = await client.get("/leads/export.csv?q=bob")
    assert "alice" not in (await export.get_data()).decode("utf-8-sig")


async def test_a_lead_without_a_username_is_not_shown_as_one(client: Any, world: World) -> None:
    # A DM's webhook carries only the sender's id; "@17841..." would read like a username.
    lead = await Lead.create(
        workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
        account=world.account,
        igsid="7775371771",
        username="",
        email="ana@example.com",
    )
    listed = await (await client.get("/leads")).get_data(as_text=True)
    detail = await (await client.get(f"/leads/{lead.id}")).get_data(as_text=True)
    for page in (listed, detail):
        assert "@7775371771" not in page and "7775371771" in page


async def test_csv_export_identifies_a_dm_lead_by_its_instagram_id(
    client: Any, world: World
) -> None:
    # A DM lead has no username: only the sender's id tells who it was.
    for igsid in ("7775371771", "=cmd|' /C calc'!A0"):
        await Lead.create(
            workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
            account=world.account,
            igsid=igsid,
            username="",
            email=f"{len(igsid)}@example.com",
        )
    raw = await (await client.get("/leads/export.csv")).get_data()
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [(row["username"], row["igsid"]) for row in rows] == [
        ("", "7775371771"),
        ("", "'=cmd|' /C calc'!A0"),
    ]


async def test_leads_search_finds_a_dm_lead_by_the_start_of_its_instagram_id(
    client: Any, world: World
) -> None:
    # DM leads have no username: the id shown on the page and in the CSV is how they are found.
    for igsid, phone, email in [
        ("7775371771", None, "dm@example.com"),
        ("1177753000", None, "inside@example.com"),  # the id holds 77753, but not at its start
        ("555", "+49 177753", "phone@example.com"),  # a phone still matches anywhere
    ]:
        await Lead.create(
            workspace_id=world.account.workspace_id,  # type: ignore[attr-defined]
            account=world.account,
            igsid=igsid,
            username="",
            phone=phone,
            email=email,
        )
    whole = await (await client.get("/leads?q=7775371771")).get_data(as_text=True)
    assert "dm@example.com" in whole
    assert "inside@example.com" not in whole and "phone@example.com" not in whole
    start = await (await client.get("/leads?q=77753")).get_data(as_text=True)
    assert "dm@example.com" in start and "phone@example.com" in start
    assert "inside@example.com" not in start
    export = await client.get("/leads/export.csv?q=7775371")
    rows = list(csv.DictReader(io.StringIO((await export.get_data()).decode("utf-8-sig"))))
    assert [row["igsid"] for row in rows] == ["7775371771"]


async def test_resend_queues_the_webhook_again(client: Any, container: Any, world: World) -> None:
    await _leads(world)
    lead = await Lead.get(username="alice")
    page = await (await client.get(f"/leads/{lead.id}")).get_data(as_text=True)
    assert "HTTP 500" in page and "Send to the webhook again" in page
    response = await client.post(f"/leads/{lead.id}/resend", form={"csrf_token": CSRF})
    assert response.status_code == 302
    fresh = await Lead.get(id=lead.id)
    assert fresh.webhook_status == "pending" and fresh.webhook_attempts == 0
    twice = await client.post(f"/leads/{lead.id}/resend", form={"csrf_token": CSRF})
    assert twice.status_code == 302
    shown = await (await client.get(f"/leads/{lead.id}")).get_data(as_text=True)
    assert "already waiting" in shown


async def test_every_page_renders(client: Any, container: Any, world: World) -> None:
    post = await _scheduled(client, container, world)
    for path in [
        "/compose",
        "/posts",
        "/posts/queue",
        f"/posts/{post.id}",
        f"/posts/{post.id}/progress",
        "/library",
        "/approvals",
        "/leads",
        "/rules",
        "/rules/new",
    ]:
        response = await client.get(path)
        assert response.status_code == 200, path
    calendar = await (await client.get("/posts")).get_data(as_text=True)
    assert "vendor/fullcalendar/index.global.min.js" in calendar
    menu = await (await client.get("/")).get_data(as_text=True)
    for link in ('href="/posts"', 'href="/library"', 'href="/rules"', 'href="/approvals"'):
        assert link in menu
