"""The AI adapter against a local OpenAI-compatible server: request shape and typed errors."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core.adapters.openai_ai import OpenAiClient, ai_configured, build_ai_client
from core.domain.ai import AiError, AiErrorKind, ChatMessage
from core.ports.ai import JsonSchema
from tests.fake_openai import FakeOpenAI, closed_port_url, fake_openai  # noqa: F401

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Hi there")]


@pytest.fixture
async def client(fake_openai: FakeOpenAI) -> AsyncIterator[OpenAiClient]:  # noqa: F811
    made = OpenAiClient(
        base_url=fake_openai.base_url,
        api_key="sk-test",
        model="test-model",
        temperature=0.3,
        timeout_s=2.0,
        max_retries=2,
        backoff_s=0.01,
    )
    yield made
    await made.close()


async def test_request_carries_messages_model_limits_and_key(
    client: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.reply("Hello!", prompt_tokens=12, completion_tokens=3)
    completion = await client.complete(MESSAGES, max_tokens=77)
    assert completion.text == "Hello!"
    assert (completion.prompt_tokens, completion.completion_tokens) == (12, 3)
    assert completion.total_tokens == 15
    sent = fake_openai.last
    assert sent["model"] == "test-model"
    assert sent["max_tokens"] == 77
    assert sent["temperature"] == 0.3
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
    ]
    assert "response_format" not in sent
    assert fake_openai.headers[-1]["Authorization"] == "Bearer sk-test"


async def test_per_call_overrides_and_structured_output(
    client: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    schema = JsonSchema("thing", {"type": "object", "properties": {"a": {"type": "string"}}})
    fake_openai.reply('{"a": "b"}')
    completion = await client.complete(
        MESSAGES, max_tokens=10, model="other", temperature=0.0, json_schema=schema
    )
    assert completion.text == '{"a": "b"}'
    sent = fake_openai.last
    assert sent["model"] == "other"
    assert sent["temperature"] == 0.0
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema.schema, "strict": True},
    }


async def test_newer_servers_get_max_completion_tokens(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    client = OpenAiClient(
        base_url=fake_openai.base_url,
        api_key=None,
        model="m",
        length_param="max_completion_tokens",
    )
    try:
        await client.complete(MESSAGES, max_tokens=5)
    finally:
        await client.close()
    assert fake_openai.last["max_completion_tokens"] == 5
    assert "max_tokens" not in fake_openai.last
    assert fake_openai.headers[-1]["Authorization"] == "Bearer unused"


@pytest.mark.parametrize(
    ("configured", "refusal", "switched_to"),
    [
        (
            "max_tokens",
            "Unsupported parameter: 'max_tokens' is not supported with this model."
            " Use 'max_completion_tokens' instead.",
            "max_completion_tokens",
        ),
        (
            "max_completion_tokens",
            "[{'type': 'extra_forbidden', 'loc': ('body', 'max_completion_tokens'),"
            " 'msg': 'Extra inputs are not permitted'}]",
            "max_tokens",
        ),
    ],
)
async def test_a_refused_length_parameter_is_swapped_once_and_remembered(
    fake_openai: FakeOpenAI,  # noqa: F811
    configured: Any,
    refusal: str,
    switched_to: str,
) -> None:
    client = OpenAiClient(
        base_url=fake_openai.base_url, api_key="k", model="m", length_param=configured
    )
    fake_openai.fail(400, refusal)
    fake_openai.reply("First")
    fake_openai.reply("Second")
    try:
        assert (await client.complete(MESSAGES, max_tokens=9)).text == "First"
        assert (await client.complete(MESSAGES, max_tokens=9)).text == "Second"
    finally:
        await client.close()
    first, retried, later = fake_openai.requests
    assert first[configured] == 9
    for sent in (retried, later):
        assert sent[switched_to] == 9
        assert configured not in sent


async def test_a_length_refusal_that_persists_fails_after_one_swap(
    client: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.fail(400, "Unsupported parameter: 'max_tokens'")
    fake_openai.fail(400, "Unsupported parameter: 'max_completion_tokens'")
    fake_openai.reply("never asked for")
    with pytest.raises(AiError) as caught:
        await client.complete(MESSAGES, max_tokens=10)
    assert caught.value.kind is AiErrorKind.BAD_REQUEST
    assert len(fake_openai.requests) == 2


async def test_5xx_is_retried_then_succeeds(client: OpenAiClient, fake_openai: FakeOpenAI) -> None:  # noqa: F811
    fake_openai.fail(500)
    fake_openai.fail(503)
    fake_openai.reply("Finally")
    completion = await client.complete(MESSAGES, max_tokens=10)
    assert completion.text == "Finally"
    assert len(fake_openai.requests) == 3


@pytest.mark.parametrize(
    ("status", "kind", "calls"),
    [
        (500, AiErrorKind.UNAVAILABLE, 3),
        (429, AiErrorKind.RATE_LIMITED, 3),
        (401, AiErrorKind.AUTH, 1),
        (400, AiErrorKind.BAD_REQUEST, 1),
        (404, AiErrorKind.BAD_REQUEST, 1),
    ],
)
async def test_status_errors_become_typed_errors_with_bounded_retries(
    client: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    status: int,
    kind: AiErrorKind,
    calls: int,
) -> None:
    for _ in range(5):
        fake_openai.fail(status, "model says no")
    with pytest.raises(AiError) as caught:
        await client.complete(MESSAGES, max_tokens=10)
    assert caught.value.kind is kind
    assert caught.value.status == status
    assert "model says no" in caught.value.message
    assert len(fake_openai.requests) == calls


async def test_long_retry_after_is_not_waited_for(
    client: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    fake_openai.fail(429, "slow down", headers={"Retry-After": "120"})
    with pytest.raises(AiError) as caught:
        await client.complete(MESSAGES, max_tokens=10)
    assert caught.value.kind is AiErrorKind.RATE_LIMITED
    assert caught.value.retry_after_s == 120
    assert len(fake_openai.requests) == 1


async def test_short_retry_after_is_honoured(client: OpenAiClient, fake_openai: FakeOpenAI) -> None:  # noqa: F811
    fake_openai.fail(429, "slow down", headers={"retry-after-ms": "20"})
    fake_openai.reply("ok")
    assert (await client.complete(MESSAGES, max_tokens=10)).text == "ok"
    assert len(fake_openai.requests) == 2


async def test_a_hanging_server_times_out_instead_of_hanging(fake_openai: FakeOpenAI) -> None:  # noqa: F811
    client = OpenAiClient(
        base_url=fake_openai.base_url,
        api_key="k",
        model="m",
        timeout_s=0.2,
        max_retries=1,
        backoff_s=0.01,
    )
    fake_openai.hang(5)
    fake_openai.hang(5)
    started = time.monotonic()
    try:
        with pytest.raises(AiError) as caught:
            await client.complete(MESSAGES, max_tokens=10)
    finally:
        await client.close()
    assert caught.value.kind is AiErrorKind.TIMEOUT
    assert caught.value.retryable
    assert len(fake_openai.requests) == 2
    # Two attempts of 0.2 s each, far from the server's 5 s.
    assert time.monotonic() - started < 4


async def test_server_down_is_unavailable() -> None:
    client = OpenAiClient(
        base_url=closed_port_url(), api_key="k", model="m", max_retries=1, backoff_s=0.01
    )
    try:
        with pytest.raises(AiError) as caught:
            await client.complete(MESSAGES, max_tokens=10)
    finally:
        await client.close()
    assert caught.value.kind is AiErrorKind.UNAVAILABLE


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        ({"text": None, "refusal": "I can't help with that."}, AiErrorKind.REFUSED),
        ({"text": "", "finish_reason": "content_filter"}, AiErrorKind.REFUSED),
        ({"text": "   "}, AiErrorKind.EMPTY),
        ({"text": None}, AiErrorKind.EMPTY),
        ({"text": None, "finish_reason": "length"}, AiErrorKind.EMPTY),
    ],
)
async def test_refusals_and_empty_answers_are_typed_and_not_retried(
    client: OpenAiClient,
    fake_openai: FakeOpenAI,  # noqa: F811
    script: dict[str, Any],
    kind: AiErrorKind,
) -> None:
    fake_openai.reply(script.pop("text"), **script)
    with pytest.raises(AiError) as caught:
        await client.complete(MESSAGES, max_tokens=10)
    assert caught.value.kind is kind
    assert len(fake_openai.requests) == 1


async def test_unreadable_body_is_malformed(client: OpenAiClient, fake_openai: FakeOpenAI) -> None:  # noqa: F811
    fake_openai.raw('{"choices": "nope"}')
    with pytest.raises(AiError) as caught:
        await client.complete(MESSAGES, max_tokens=10)
    assert caught.value.kind in {AiErrorKind.MALFORMED, AiErrorKind.EMPTY}


async def test_missing_usage_is_estimated(client: OpenAiClient, fake_openai: FakeOpenAI) -> None:  # noqa: F811
    fake_openai.reply("x" * 40, usage=False)
    completion = await client.complete(MESSAGES, max_tokens=10)
    assert completion.estimated
    assert completion.completion_tokens == 10
    assert completion.prompt_tokens >= 1


def test_ai_is_off_without_key_or_custom_server(settings_factory: Any) -> None:
    assert not ai_configured(settings_factory())
    assert build_ai_client(settings_factory()) is None
    assert ai_configured(settings_factory(openai_api_key="sk-1"))
    assert ai_configured(settings_factory(openai_base_url="http://127.0.0.1:11434/v1"))


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_base_url_with_or_without_v1_reaches_the_server(
    settings_factory: Any,
    fake_openai: FakeOpenAI,  # noqa: F811
    suffix: str,
) -> None:
    server = fake_openai.base_url.removesuffix("/v1")
    built = build_ai_client(settings_factory(openai_base_url=server + suffix))
    assert built is not None
    try:
        fake_openai.reply("Hello!")
        assert (await built.complete(MESSAGES, max_tokens=10)).text == "Hello!"
    finally:
        await built.close()
