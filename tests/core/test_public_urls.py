"""Requests to addresses someone typed in reach public addresses only, unless PRIVATE_URLS_OK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from core.adapters.outgoing_webhooks import AiohttpWebhookPoster
from core.adapters.webhook_probe import probe_webhook
from core.ports.outgoing_webhooks import WebhookDeliveryError
from core.settings import Settings


@pytest.fixture
async def local_server(unused_tcp_port: int) -> AsyncIterator[tuple[list[str], int]]:
    """A server on 127.0.0.1 that answers anything and remembers what reached it."""
    hits: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/bounce":
            raise web.HTTPFound(f"http://127.0.0.1:{unused_tcp_port}/inside")
        return web.Response(text=request.query.get("hub.challenge", "internal secret"))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    yield hits, unused_tcp_port
    await runner.cleanup()


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.1:{port}/leads",
        "http://localhost:{port}/leads",
        "http://[::ffff:127.0.0.1]:{port}/leads",
        "http://10.1.2.3/leads",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_lead_webhooks_do_not_reach_private_addresses(
    local_server: tuple[list[str], int], link: str
) -> None:
    hits, port = local_server
    async with aiohttp.ClientSession() as http:
        poster = AiohttpWebhookPoster(http, private_ok=False)
        with pytest.raises(WebhookDeliveryError, match="private or local") as caught:
            await poster.post(link.format(port=port), b"{}", {})
    assert caught.value.status is None and "internal secret" not in caught.value.message
    assert hits == []


async def test_lead_webhooks_reach_the_lan_when_allowed(
    local_server: tuple[list[str], int],
) -> None:
    hits, port = local_server
    async with aiohttp.ClientSession() as http:
        poster = AiohttpWebhookPoster(http, private_ok=True)
        assert await poster.post(f"http://127.0.0.1:{port}/leads", b"{}", {}) == 200
    assert hits == ["/leads"]


async def test_webhook_check_does_not_reach_private_addresses(
    local_server: tuple[list[str], int],
) -> None:
    hits, port = local_server
    async with aiohttp.ClientSession() as http:
        refused = await probe_webhook(
            http, f"http://localhost:{port}/webhooks/meta", "token", private_ok=False
        )
        assert not refused.ok and "private or local" in refused.message and hits == []
        allowed = await probe_webhook(
            http, f"http://127.0.0.1:{port}/webhooks/meta", "token", private_ok=True
        )
    assert allowed.ok and hits == ["/webhooks/meta"]


def test_old_media_links_setting_still_opens_private_urls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MEDIA_LINKS_PRIVATE_OK", "true")
    assert Settings(_env_file=None).private_urls_ok is True  # type: ignore[call-arg]
    monkeypatch.delenv("MEDIA_LINKS_PRIVATE_OK")
    monkeypatch.setenv("PRIVATE_URLS_OK", "true")
    assert Settings(_env_file=None).private_urls_ok is True  # type: ignore[call-arg]
    monkeypatch.delenv("PRIVATE_URLS_OK")
    assert Settings(_env_file=None).private_urls_ok is False  # type: ignore[call-arg]
