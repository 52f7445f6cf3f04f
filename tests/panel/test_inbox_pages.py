"""The inbox pages and the inbox API over the sandbox Instagram: a follower's DM in the list
and the thread, a reply from the Instagram app taking the conversation over, a teammate's
reply sent through Instagram, notes, labels and assignment, and the live-update stream."""

from __future__ import annotations

import html
from typing import Any

import pytest

from core.db.models import Conversation, ConversationNote, Message, Role, Trigger
from core.services.sandbox_console import follower_id
from core.settings import Settings
from tests.panel.helpers import CSRF, token_for
from tests.panel.sandbox_world import World, run_pending_events, sandbox_world, webhooks_into


@pytest.fixture
def settings(settings_factory: Any, sandbox: Any) -> Settings:
    made: Settings = settings_factory(sandbox_url=sandbox.url)
    return made


@pytest.fixture
async def world(client: Any, container: Any, sandbox: Any) -> World:
    made = await sandbox_world(client, container, sandbox)
    await made.account.workspace.fetch_related()  # type: ignore[attr-defined]
    from core.db.models import AutomationRule

    await AutomationRule.create(
        workspace_id=made.account.workspace_id,  # type: ignore[attr-defined]
        account=made.account,
        name="Price DM",
        trigger=Trigger.DM,
        keywords=["price"],
        config={"message_variations": ["Prices start at $10."]},
    )
    return made


async def _text(response: Any) -> str:
    return html.unescape(await response.get_data(as_text=True))


async def _act(client: Any, world: World, path: str, text: str) -> None:
    answer = await client.post(
        path,
        form={
            "csrf_token": CSRF,
            "account_id": str(world.account.id),
            "username": "ana.silva",
            "text": text,
        },
    )
    assert answer.status_code == 302, await answer.get_data(as_text=True)


async def test_a_dm_an_app_reply_and_a_teammate_reply_in_the_inbox(
    client: Any, container: Any, world: World
) -> None:
    async with webhooks_into(client, world.sandbox):
        await _act(client, world, "/sandbox/dm", "What's the price?")
        assert await run_pending_events(container) == 1
        conversation = await Conversation.get(igsid=follower_id("ana.silva"))
        listing = await _text(await client.get("/inbox"))
        assert "Prices start at $10." in listing and "waiting on us" in listing
        assert 'href="/inbox/comments"' in listing and 'sse-connect="/inbox/events' in listing
        thread = await _text(await client.get(f"/inbox/{conversation.id}"))
        assert "Prices start at $10." in thread and "automation · rule Price DM" in thread
        assert "Automations answer this person." in thread

        # The owner answers from the Instagram app: Reelay sees the echo and steps back.
        await _act(client, world, "/sandbox/app-reply", "Hi Ana, it's Sam!")
        assert await run_pending_events(container) == 1
        thread = await _text(await client.get(f"/inbox/{conversation.id}"))
        assert "Hi Ana, it's Sam!" in thread and "Instagram app" in thread
        part = await _text(await client.get(f"/inbox/{conversation.id}/messages"))
        assert "Hi Ana, it's Sam!" in part and 'name="csrf_token"' in part
        assert "A teammate has this conversation" in thread
        await _act(client, world, "/sandbox/dm", "price of the blue one?")
        assert await run_pending_events(container) == 1
        answers = [s for s in world.sandbox.state.sent if not s.payload.get("from_app")]
        assert len(answers) == 1  # the rule stayed silent

        # A teammate's reply from the inbox goes out through Instagram, once per form.
        form = {"csrf_token": CSRF, "text": "The blue one is $12.", "key": "form-1"}
        for _ in range(2):
            sent = await client.post(f"/inbox/{conversation.id}/reply", form=form)
            assert sent.status_code == 302
        texts = [s.payload["message"].get("text") for s in world.sandbox.state.sent]
        assert texts.count("The blue one is $12.") == 1
        out = await Message.get(conversation_id=conversation.id, text="The blue one is $12.")
        assert out.source == "inbox" and out.author_id == world.owner.user_id

        for path, fields in (
            ("notes", {"text": "Wants the blue one"}),
            ("labels", {"labels": "vip, blue"}),
            ("assign", {"user_id": str(world.owner.user_id)}),
            ("status", {"status": "done"}),
            ("handback", {}),
        ):
            changed = await client.post(
                f"/inbox/{conversation.id}/{path}", form={"csrf_token": CSRF, **fields}
            )
            assert changed.status_code == 302, path
    fresh = await Conversation.get(id=conversation.id)
    assert (fresh.labels, fresh.status.value, fresh.assignee_id) == (
        ",vip,blue,",
        "done",
        world.owner.user_id,
    )
    assert fresh.paused_until is None
    assert [n.text for n in await ConversationNote.all()] == ["Wants the blue one"]
    filtered = await _text(await client.get("/inbox?label=vip&assignee=me&status=done"))
    assert f'data-conversation="{conversation.id}"' in filtered
    assert 'data-conversation="' not in await _text(await client.get("/inbox?q=nothing-like"))


async def test_the_live_stream_names_the_conversations_that_changed(
    client: Any, container: Any, world: World
) -> None:
    async with webhooks_into(client, world.sandbox):
        await _act(client, world, "/sandbox/dm", "hello")
        assert await run_pending_events(container) == 1
    conversation = await Conversation.get(igsid=follower_id("ana.silva"))
    stream = await client.get("/inbox/events?after=0")
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    body = await stream.get_data(as_text=True)
    assert "event: changed" in body and f"data: {conversation.id}\n" in body
    quiet = await client.get("/inbox/events")  # from now on: nothing changed yet
    assert "event: changed" not in await quiet.get_data(as_text=True)


async def test_the_inbox_api(client: Any, container: Any, world: World) -> None:
    _, editor = await token_for(world.owner, Role.EDITOR)
    _, viewer = await token_for(world.owner, Role.VIEWER)
    auth = {"Authorization": f"Bearer {editor}"}
    async with webhooks_into(client, world.sandbox):
        await _act(client, world, "/sandbox/dm", "hello")
        assert await run_pending_events(container) == 1
    listed = await (await client.get("/api/v1/conversations", headers=auth)).get_json()
    (item,) = listed["items"]
    assert item["last_message_text"] == "hello" and item["status"] == "waiting"
    path = f"/api/v1/conversations/{item['id']}"
    taken = await client.post(f"{path}/takeover", json={"hours": 2}, headers=auth)
    assert taken.status_code == 200 and (await taken.get_json())["taken_over_until"]
    sent = await client.post(f"{path}/messages", json={"text": "Hello Ana!"}, headers=auth)
    assert (await sent.get_json())["status"] == "sent"
    note = await client.post(f"{path}/notes", json={"text": "Called back"}, headers=auth)
    assert (await note.get_json())["text"] == "Called back"
    back = await client.post(f"{path}/handback", json={}, headers=auth)
    assert (await back.get_json())["taken_over_until"] is None
    thread = await (await client.get(path, headers=auth)).get_json()
    assert [(m["direction"], m["source"]) for m in thread["messages"]] == [
        ("in", "follower"),
        ("out", "inbox"),
    ]
    assert [n["text"] for n in thread["notes"]] == ["Called back"]
    refused = await client.post(
        f"{path}/messages", json={"text": "hi"}, headers={"Authorization": f"Bearer {viewer}"}
    )
    assert refused.status_code == 403
