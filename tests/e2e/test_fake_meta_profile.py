"""The fake Meta of the live test serves the messenger profile and comment moderation as Meta
documents them."""

from __future__ import annotations

import time

import aiohttp
import pytest

from core.adapters.graph import GraphClient
from core.domain.graph_errors import GraphError, object_gone
from core.ports.instagram import AccountRef
from core.settings import Settings
from tests.e2e.fake_meta import FakeMeta


async def test_the_fake_meta_sets_and_deletes_the_messenger_profile() -> None:
    fake = FakeMeta(app_id="1", app_secret="s")
    url = await fake.start()
    try:
        fake.add_account("1784", "shop")
        fake.long_tokens["tok"] = ("1784", time.time())
        settings = Settings(_env_file=None, meta_app_id="1", graph_host=url)  # type: ignore[call-arg]
        account = AccountRef(ig_id="1784", token="tok")
        body = {"platform": "instagram", "ice_breakers": [{"call_to_actions": []}]}
        async with aiohttp.ClientSession() as http:
            graph = GraphClient(http, settings)
            assert await graph.set_messenger_profile(account, body) is True
            assert "ice_breakers" in fake.profiles["1784"]
            assert await graph.delete_messenger_profile(account, ["ice_breakers"]) is True
        assert fake.profiles["1784"] == {}
    finally:
        await fake.stop()


async def test_the_fake_meta_hides_and_deletes_a_comment_as_meta_documents_it() -> None:
    fake = FakeMeta(app_id="1", app_secret="s")
    url = await fake.start()
    try:
        fake.add_account("1784", "shop")
        fake.long_tokens["tok"] = ("1784", time.time())
        fake.comment("1784", "m1", "spam", igsid="555", username="spam_bot")
        [comment_id] = list(fake.comments)
        settings = Settings(_env_file=None, meta_app_id="1", graph_host=url)  # type: ignore[call-arg]
        account = AccountRef(ig_id="1784", token="tok")
        async with aiohttp.ClientSession() as http:
            graph = GraphClient(http, settings)
            await graph.hide_comment(account, comment_id)
            assert (await graph.comment(account, comment_id))["hidden"] is True
            await graph.delete_comment(account, comment_id)
            with pytest.raises(GraphError) as caught:
                await graph.comment(account, comment_id)
        assert object_gone(caught.value)
    finally:
        await fake.stop()
