"""The MCP server at /mcp, driven by the SDK's own streamable-HTTP client against the panel
served by uvicorn: tools act with the token's role in its workspace."""

from __future__ import annotations

import asyncio
import io
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
import uvicorn
from aiohttp import web
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from core.db.models import (
    AutomationRule,
    DraftStatus,
    InstagramAccount,
    LoginKind,
    Post,
    PostMedia,
    ReplyDraft,
    Role,
)
from core.domain.posts import Kind, Status
from core.settings import Settings
from tests.panel.helpers import team_of_four, token_for


@pytest.fixture
def settings(settings_factory: Any) -> Settings:
    """Media links on this machine are allowed here, as on a LAN install."""
    made: Settings = settings_factory(private_urls_ok=True)
    return made


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def panel_url(app: Any) -> AsyncIterator[str]:
    """The test app served over real HTTP (its startup already ran)."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def images(unused_tcp_port: int) -> AsyncIterator[list[str]]:
    """Three JPEG images served on this machine."""
    app = web.Application()
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]

    def serve(colour: tuple[int, int, int]) -> Any:
        async def handler(_: web.Request) -> web.Response:
            out = io.BytesIO()
            Image.new("RGB", (1080, 1080), colour).save(out, "JPEG")
            return web.Response(body=out.getvalue(), content_type="image/jpeg")

        return handler

    for n, colour in enumerate(colours):
        app.router.add_get(f"/photo-{n}.jpg", serve(colour))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    yield [f"http://127.0.0.1:{unused_tcp_port}/photo-{n}.jpg" for n in range(3)]
    await runner.cleanup()


@asynccontextmanager
async def mcp_session(url: str, secret: str) -> AsyncIterator[ClientSession]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    async with (
        http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def _data(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        found = result.structured_content
        return found.get("result", found) if isinstance(found, dict) else found
    return json.loads(result.content[0].text)


async def _pending_draft(account: InstagramAccount) -> ReplyDraft:
    return await ReplyDraft.create(
        workspace_id=account.workspace_id,  # type: ignore[attr-defined]
        account_id=account.id,
        inbound_text="How much is it?",
        proposed_text="It is 20 EUR.",
        target={"igsid": "5550001", "channel": "dm"},
        expires_at=datetime.now(UTC) + timedelta(hours=20),
    )


async def test_an_agent_schedules_a_carousel_and_approves_a_draft(
    panel_url: str, images: list[str], container: Any
) -> None:
    members = await team_of_four()
    owner = members[Role.OWNER]
    account = await InstagramAccount.create(
        workspace_id=owner.workspace_id,
        ig_id="17841400000000001",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )
    draft = await _pending_draft(account)
    _, editor = await token_for(owner, Role.EDITOR)
    when = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)

    async with mcp_session(panel_url, editor) as session:
        tools = {tool.name for tool in (await session.list_tools()).tools}
        assert {"schedule_post", "add_media_from_url", "decide_draft", "create_rule"} <= tools
        media_ids = []
        for link in images:
            asset = _data(await session.call_tool("add_media_from_url", {"url": link}))
            media_ids.append(asset["id"])
        post = _data(
            await session.call_tool(
                "schedule_post",
                {
                    "account_id": account.id,
                    "kind": "carousel",
                    "media_ids": media_ids,
                    "caption": "Three colours #reelay",
                    "scheduled_at": when.isoformat(),
                },
            )
        )
        pending = _data(await session.call_tool("list_drafts", {}))
        decided = _data(
            await session.call_tool("decide_draft", {"draft_id": draft.id, "decision": "approve"})
        )
        queue = await session.read_resource("reelay://queue")

    stored = await Post.get(id=post["id"])
    assert stored.kind is Kind.CAROUSEL and stored.status is Status.SCHEDULED
    assert stored.scheduled_at == when and stored.source == "mcp"
    assert (
        await PostMedia.filter(post_id=stored.id)
        .order_by("position")
        .values_list("asset_id", flat=True)
        == media_ids
    )
    assert [d["id"] for d in pending] == [draft.id]
    assert decided["status"] == "approved"
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.APPROVED
    assert [p["id"] for p in json.loads(queue.contents[0].text)] == [stored.id]


async def test_a_viewer_token_reads_but_is_refused_changes(panel_url: str, container: Any) -> None:
    members = await team_of_four()
    owner = members[Role.OWNER]
    account = await InstagramAccount.create(
        workspace_id=owner.workspace_id,
        ig_id="17841400000000002",
        username="shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )
    draft = await _pending_draft(account)
    _, viewer = await token_for(owner, Role.VIEWER)
    _, editor = await token_for(owner, Role.EDITOR)

    async with mcp_session(panel_url, viewer) as session:
        assert [d["id"] for d in _data(await session.call_tool("list_drafts", {}))] == [draft.id]
        refused = await session.call_tool(
            "decide_draft", {"draft_id": draft.id, "decision": "approve"}
        )
        assert refused.is_error and "needs editor" in refused.content[0].text
        rule = {"account_id": account.id, "name": "Price", "trigger": "dm", "keywords": ["price"]}
        assert (await session.call_tool("create_rule", {"rule": rule})).is_error
    assert (await ReplyDraft.get(id=draft.id)).status is DraftStatus.PENDING
    assert not await AutomationRule.exists()

    # An editor's rule is checked by the rule model and stored switched off.
    async with mcp_session(panel_url, editor) as session:
        bad = await session.call_tool(
            "create_rule", {"rule": {"account_id": account.id, "trigger": "sometimes"}}
        )
        assert bad.is_error
        made = _data(
            await session.call_tool(
                "create_rule",
                {
                    "rule": {
                        "account_id": account.id,
                        "name": "Price",
                        "trigger": "dm",
                        "keywords": ["price"],
                        "dm_variations": ["It is 20 EUR."],
                        "active": True,
                    }
                },
            )
        )
        listed = await session.read_resource("reelay://rules")
    rule_row = await AutomationRule.get(id=made["id"])
    assert rule_row.active is False and made["active"] is False
    assert [r["id"] for r in json.loads(listed.contents[0].text)] == [rule_row.id]

    # No token, or a wrong one: refused before the SDK sees the request.
    async with httpx2.AsyncClient() as http:
        answer = await http.post(f"{panel_url}/mcp", json={})
        assert answer.status_code == 401 and "Bearer" in answer.headers["www-authenticate"]
        wrong = await http.post(
            f"{panel_url}/mcp", json={}, headers={"Authorization": "Bearer rly_nope"}
        )
        assert wrong.status_code == 401
