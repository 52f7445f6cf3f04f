"""Graph writes whose answer never came back: refused before leaving (not sent), or lost
after Meta may have acted (maybe sent), against the sandbox's lost-answer faults."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from core.adapters.graph import GraphClient
from core.domain.graph_errors import ErrorKind, GraphError
from core.ports.instagram import AccountRef
from core.settings import Settings
from tests.core.test_graph_client import ACCOUNT, Sleeps


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_write_refused_before_it_left_is_not_sent(http: aiohttp.ClientSession) -> None:
    closed = Settings(_env_file=None, meta_app_id="1", graph_host="http://127.0.0.1:9")  # type: ignore[call-arg]
    graph = GraphClient(http, closed, sleep=Sleeps(), jitter=lambda: 0.5)
    with pytest.raises(GraphError) as caught:
        await graph.reply_to_comment(ACCOUNT, "c1", "Thanks!")
    assert caught.value.kind is ErrorKind.TRANSIENT
    assert caught.value.maybe_sent is False


LOST = ["drop", "502", "504", "timeout"]


@pytest.fixture
async def lossy(
    http: aiohttp.ClientSession, settings_factory: Any, sandbox: Any
) -> tuple[GraphClient, AccountRef, Any]:
    """A client of the sandbox waiting 0.5 s for answers, its account and a follower's comment."""
    sandbox.state.add_account("1784", "shop")
    comment = sandbox.state.add_comment(
        sandbox.state.add_media("1784").id, from_id="u1", username="ann", text="price?"
    )
    account = AccountRef(
        ig_id="1784", token=sandbox.state.issue_token("1784"), login_kind="sandbox"
    )
    graph = GraphClient(http, settings_factory(sandbox_url=sandbox.url), timeout_s=0.5)
    return graph, account, comment


@pytest.mark.parametrize("how", LOST)
async def test_a_write_whose_answer_was_lost_is_maybe_sent(
    lossy: tuple[GraphClient, AccountRef, Any], sandbox: Any, how: str
) -> None:
    graph, account, comment = lossy
    sandbox.faults.lost_answer(how, seconds=2)
    with pytest.raises(GraphError) as caught:
        await graph.reply_to_comment(account, comment.id, "Thanks!")
    assert caught.value.maybe_sent is True
    assert [s.payload for s in sandbox.state.sent_to(comment.id)] == [{"message": "Thanks!"}]
    replies = await graph.comment_replies(account, comment.id)
    assert [(r["text"], r["from"]["id"]) for r in replies] == [("Thanks!", "1784")]


@pytest.mark.parametrize("how", LOST)
async def test_a_hide_whose_answer_was_lost_is_safe_to_repeat(
    lossy: tuple[GraphClient, AccountRef, Any], sandbox: Any, how: str
) -> None:
    graph, account, comment = lossy
    sandbox.faults.lost_answer(how, path=rf"/{comment.id}$", seconds=2)
    with pytest.raises(GraphError) as caught:
        await graph.hide_comment(account, comment.id)
    assert caught.value.maybe_sent is True
    assert comment.hidden is True
    # Hiding sets a state: repeating it leaves the one effect as it is.
    await graph.hide_comment(account, comment.id)
    assert comment.hidden is True
