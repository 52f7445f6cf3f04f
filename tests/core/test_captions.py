"""The caption writer against a local OpenAI-compatible server: structured output, limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from core.adapters.openai_ai import OpenAiClient
from core.db.models import AiUsage, Workspace
from core.domain.ai import AiError, AiErrorKind
from core.domain.captions import CAPTION_MAX, fit_post_limits, parse_caption_answer
from core.domain.posts import Kind, MediaFacts, PostContent, validate_content
from core.domain.scope import Actor
from core.errors import ValidationFailed
from core.services.captions import write_caption
from tests.fake_openai import FakeOpenAI, fake_openai  # noqa: F401

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)
TAGS = ["#candles", "#handmade", "lisbon", "#Soy Wax", "#gift", "#candles", "#cosyhome"]


class FixedClock:
    def now(self) -> datetime:
        return NOW


@pytest.fixture
async def ai(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAiClient]:  # noqa: F811
    client = OpenAiClient(
        base_url=fake_openai.base_url, api_key="k", model="caption-model", max_retries=0
    )
    yield client
    await client.close()


@pytest.fixture
async def workspace(sqlite_db: str) -> Workspace:
    return await Workspace.create(name="Lumen")


def answer(caption: str, hashtags: list[str]) -> str:
    return json.dumps({"caption": caption, "hashtags": hashtags}, ensure_ascii=False)


async def test_caption_comes_back_as_structured_output_within_limits(
    ai: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    workspace: Workspace,
) -> None:
    fake_openai.reply(
        answer("Spring is here 🌸 Our new lavender candle just landed.", TAGS),
        prompt_tokens=120,
        completion_tokens=60,
    )
    suggestion = await write_caption(
        Actor.system(workspace.id),
        ai,
        topic="New lavender candle",
        tone="Witty",
        context="Launch on Friday, 20% off",
        clock=FixedClock(),
        max_tokens=900,
    )
    assert suggestion.caption == "Spring is here 🌸 Our new lavender candle just landed."
    assert suggestion.hashtags == (
        "#candles",
        "#handmade",
        "#lisbon",
        "#SoyWax",
        "#gift",
        "#cosyhome",
    )
    assert suggestion.text.endswith("\n\n#candles #handmade #lisbon #SoyWax #gift #cosyhome")
    assert len(suggestion.text) <= CAPTION_MAX
    sent = fake_openai.last
    assert sent["model"] == "caption-model"
    assert sent["max_tokens"] == 900
    assert sent["response_format"]["type"] == "json_schema"
    schema = sent["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert schema["schema"]["required"] == ["caption", "hashtags"]
    system, user = sent["messages"]
    assert system["role"] == "system" and "JSON" in system["content"]
    assert user["content"].splitlines()[:2] == ["Topic: New lavender candle", "Tone: Witty"]
    assert "Context: Launch on Friday, 20% off" in user["content"]
    assert (await AiUsage.get(workspace=workspace, month="2026-05")).tokens == 180


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("Here is your caption: Spring!", "not JSON"),
        ('["caption"]', "not a JSON object"),
        ('{"hashtags": ["#a", "#b", "#c", "#d", "#e"]}', '"caption"'),
        ('{"caption": "Hi", "hashtags": "#a #b"}', "list of strings"),
        ('{"caption": "Hi", "hashtags": ["#a", "#b"]}', "2 usable hashtags"),
    ],
)
async def test_malformed_answer_gives_a_clear_error(
    ai: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    workspace: Workspace,
    body: str,
    reason: str,
) -> None:
    fake_openai.reply(body)
    with pytest.raises(AiError) as caught:
        await write_caption(
            Actor.system(workspace.id), ai, topic="t", tone="casual", clock=FixedClock()
        )
    assert caught.value.kind is AiErrorKind.MALFORMED
    assert reason in caught.value.message
    assert caught.value.message.startswith("The AI caption could not be used")


async def test_cut_off_structured_answer_is_malformed(
    ai: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    workspace: Workspace,
) -> None:
    fake_openai.reply('{"caption": "Spring is', finish_reason="length")
    with pytest.raises(AiError) as caught:
        await write_caption(
            Actor.system(workspace.id), ai, topic="t", tone="urgent", clock=FixedClock()
        )
    assert caught.value.kind is AiErrorKind.MALFORMED


async def test_bad_requests_are_refused_before_any_call(
    ai: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    workspace: Workspace,
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        await write_caption(
            Actor.system(workspace.id), ai, topic=" ", tone="sarcastic", clock=FixedClock()
        )
    assert set(caught.value.fields) == {"topic", "tone"}
    assert fake_openai.requests == []


async def test_disabled_workspace_gets_no_caption(
    ai: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    workspace: Workspace,
) -> None:
    await Workspace.filter(id=workspace.id).update(ai_enabled=False)
    with pytest.raises(AiError) as caught:
        await write_caption(
            Actor.system(workspace.id), ai, topic="t", tone="casual", clock=FixedClock()
        )
    assert caught.value.kind is AiErrorKind.DISABLED
    assert fake_openai.requests == []


def test_fenced_json_from_servers_without_structured_output_is_read() -> None:
    fenced = "```json\n" + answer("Hello", TAGS) + "\n```"
    assert parse_caption_answer(fenced).caption == "Hello"


def test_too_many_hashtags_are_cut_to_ten() -> None:
    tags = [f"#tag{i}" for i in range(14)]
    assert len(parse_caption_answer(answer("Hello", tags)).hashtags) == 10


def test_long_captions_are_fitted_to_instagram_limits() -> None:
    long_caption = "This candle smells of spring. " * 100  # ~3000 characters
    suggestion = parse_caption_answer(answer(long_caption, TAGS))
    assert len(suggestion.text) <= CAPTION_MAX
    assert suggestion.caption.endswith("spring.")
    assert len(suggestion.hashtags) == 6


def test_hashtags_in_the_caption_count_towards_thirty() -> None:
    caption = " ".join(f"#own{i}" for i in range(27))
    suggestion = fit_post_limits(caption, tuple(f"#t{i}" for i in range(8)))
    assert len(suggestion.hashtags) == 3
    with pytest.raises(AiError, match="mentions 21 accounts"):
        fit_post_limits(" ".join(f"@user{i}" for i in range(21)), ("#a",))


@pytest.mark.parametrize("length", [100, 5000])
def test_suggestions_pass_the_publishing_validation(length: int) -> None:
    many_tags = [f"#tag{i}" for i in range(12)]
    suggestion = parse_caption_answer(answer("Lovely day. " * (length // 12), many_tags))
    image = MediaFacts(asset_id=1, mime="image/jpeg", size=1000, width=1080, height=1080)
    content = validate_content(PostContent(kind=Kind.IMAGE, media=[image], caption=suggestion.text))
    assert content.caption == suggestion.text
