"""The AI adapter: chat completions over the ``openai`` package's ``AsyncOpenAI``.

Works with any OpenAI-compatible server (OpenAI, Azure's OpenAI-compatible endpoint, a
local server) through ``OPENAI_BASE_URL``. The SDK's own retries are off: this adapter
retries timeouts, 429 and 5xx a bounded number of times (``OPENAI_MAX_RETRIES``) with
exponential back-off and jitter, honours a short ``Retry-After``, and turns every failure
into an ``AiError`` with a kind. Each attempt is bounded by ``OPENAI_TIMEOUT`` twice over
(the SDK's timeout and an ``asyncio`` deadline), so no call can hang a worker.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import openai
from openai import AsyncOpenAI

from core.domain.ai import AiError, AiErrorKind, ChatMessage
from core.domain.backoff import backoff_s
from core.ports.ai import Completion, JsonSchema
from core.settings import Settings

logger = logging.getLogger(__name__)

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the SDK refuses to start without one.
KEYLESS_PLACEHOLDER = "unused"
LengthParam = Literal["max_tokens", "max_completion_tokens"]


class OpenAiClient:
    """``AiClient`` over ``AsyncOpenAI``; see the module docstring for the failure rules."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        temperature: float = 0.7,
        timeout_s: float = 20.0,
        max_retries: int = 2,
        length_param: LengthParam = "max_tokens",
        backoff_s: float = 0.5,
        max_retry_after_s: float = 10.0,
    ) -> None:
        self._client = AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or KEYLESS_PLACEHOLDER,
            timeout=timeout_s,
            max_retries=0,
        )
        self._model = model
        self._temperature = temperature
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._length_param = length_param
        self._backoff_s = backoff_s
        self._max_retry_after_s = max_retry_after_s

    @property
    def model(self) -> str:
        return self._model

    async def close(self) -> None:
        await self._client.close()

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        model: str | None = None,
        temperature: float | None = None,
        timeout_s: float | None = None,
        json_schema: JsonSchema | None = None,
    ) -> Completion:
        if not messages:
            raise ValueError("a completion needs at least one message")
        params: dict[str, Any] = {
            "model": model or self._model,
            "messages": [message.as_json() for message in messages],
            "temperature": self._temperature if temperature is None else temperature,
            self._length_param: max_tokens,
        }
        if json_schema is not None:
            params["response_format"] = json_schema.as_response_format()
        timeout = timeout_s or self._timeout_s
        attempts = self._max_retries + 1
        started = time.monotonic()
        switched = False
        attempt = 0
        while attempt < attempts:
            attempt += 1
            try:
                response = await self._attempt(params, timeout)
            except AiError as error:
                if not switched and _refuses_length_param(error, self._length_param):
                    # Newer OpenAI models refuse max_tokens and some compatible servers
                    # refuse max_completion_tokens: switch once, for this process too.
                    switched = True
                    attempt -= 1
                    old_param = self._length_param
                    self._length_param = _other_length_param(old_param)
                    params[self._length_param] = params.pop(old_param)
                    logger.warning(
                        "The AI server refuses %s; using %s instead (set OPENAI_TOKEN_PARAM=%s)",
                        old_param,
                        self._length_param,
                        self._length_param,
                    )
                    continue
                delay = self._retry_delay(error, attempt)
                if attempt >= attempts or delay is None:
                    logger.warning(
                        "AI call failed: model=%s kind=%s status=%s attempts=%d in %.2fs",
                        params["model"],
                        error.kind.value,
                        error.status,
                        attempt,
                        time.monotonic() - started,
                    )
                    raise
                logger.info(
                    "AI call attempt %d failed (%s, status %s); retrying in %.2fs",
                    attempt,
                    error.kind.value,
                    error.status,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            completion = _completion_from(response, params, json_schema is not None)
            logger.info(
                "AI call done: model=%s tokens=%d+%d%s attempts=%d in %.2fs",
                completion.model,
                completion.prompt_tokens,
                completion.completion_tokens,
                " (estimated)" if completion.estimated else "",
                attempt,
                time.monotonic() - started,
            )
            return completion
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _attempt(self, params: dict[str, Any], limit_s: float) -> Any:
        try:
            # The SDK's timeout covers each phase; the outer deadline covers the whole call.
            async with asyncio.timeout(limit_s + 1.0):
                return await self._client.chat.completions.create(**params, timeout=limit_s)
        except (TimeoutError, openai.APITimeoutError):
            raise AiError(
                f"The AI server did not answer within {limit_s:g} s", kind=AiErrorKind.TIMEOUT
            ) from None
        except openai.APIConnectionError as exc:
            raise AiError(
                f"The AI server could not be reached: {exc}", kind=AiErrorKind.UNAVAILABLE
            ) from None
        except openai.APIStatusError as exc:
            raise _status_error(exc) from None
        except openai.APIResponseValidationError as exc:
            raise AiError(
                f"The AI server sent an answer Reelay cannot read: {exc}",
                kind=AiErrorKind.MALFORMED,
                status=exc.status_code,
            ) from None

    def _retry_delay(self, error: AiError, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None when retrying is pointless."""
        if not error.retryable:
            return None
        if error.retry_after_s is not None:
            if error.retry_after_s > self._max_retry_after_s:
                return None
            return error.retry_after_s
        return backoff_s(attempt, base_s=self._backoff_s, spread=(0.5, 1.5))


def _other_length_param(param: LengthParam) -> LengthParam:
    return "max_completion_tokens" if param == "max_tokens" else "max_tokens"


def _refuses_length_param(error: AiError, param: LengthParam) -> bool:
    """A 400 naming the answer-length parameter as one the model or server does not take."""
    if error.kind is not AiErrorKind.BAD_REQUEST or error.status != 400:
        return False
    message = error.message.lower()
    refused = ("unsupported", "not supported", "unrecognized", "unknown", "extra", "not permitted")
    return param in message and any(word in message for word in refused)


def _status_error(exc: openai.APIStatusError) -> AiError:
    status = exc.status_code
    detail = _error_detail(exc)
    if status == 429:
        return AiError(
            f"The AI server is rate limiting Reelay: {detail}",
            kind=AiErrorKind.RATE_LIMITED,
            status=status,
            retry_after_s=_retry_after(exc.response.headers),
        )
    if status >= 500:
        return AiError(
            f"The AI server had an error ({status}): {detail}",
            kind=AiErrorKind.UNAVAILABLE,
            status=status,
            retry_after_s=_retry_after(exc.response.headers),
        )
    if status in (401, 403):
        return AiError(
            f"The AI server refused the API key ({status}): {detail}",
            kind=AiErrorKind.AUTH,
            status=status,
        )
    return AiError(
        f"The AI server refused the request ({status}): {detail}",
        kind=AiErrorKind.BAD_REQUEST,
        status=status,
    )


def _error_detail(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return exc.message[:300]


def _retry_after(headers: Any) -> float | None:
    """``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if present."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _completion_from(response: Any, params: dict[str, Any], structured: bool) -> Completion:
    """Check the answer's shape and turn it into a ``Completion`` (or a typed error)."""
    try:
        choices = list(response.choices or [])
        if not choices:
            raise AiError("The AI server returned no answer", kind=AiErrorKind.EMPTY)
        choice = choices[0]
        message = choice.message
        finish_reason = str(choice.finish_reason or "stop")
        refusal = getattr(message, "refusal", None)
        content = message.content
        model = str(response.model or params["model"])
        usage = response.usage
    except (AttributeError, TypeError) as exc:
        raise AiError(
            f"The AI server sent an answer Reelay cannot read: {exc}", kind=AiErrorKind.MALFORMED
        ) from None
    if refusal:
        raise AiError(f"The model refused: {str(refusal)[:300]}", kind=AiErrorKind.REFUSED)
    if finish_reason == "content_filter":
        raise AiError("The AI server's content filter stopped the answer", kind=AiErrorKind.REFUSED)
    if not isinstance(content, str) or not content.strip():
        if finish_reason == "length":
            raise AiError(
                "The answer was cut off before any text (the token limit is too small)",
                kind=AiErrorKind.EMPTY,
            )
        raise AiError("The AI server returned an empty answer", kind=AiErrorKind.EMPTY)
    if structured and finish_reason == "length":
        raise AiError(
            "The structured answer was cut off at the token limit", kind=AiErrorKind.MALFORMED
        )
    prompt_tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
    completion_tokens = getattr(usage, "completion_tokens", None) if usage is not None else None
    if isinstance(prompt_tokens, int) and isinstance(completion_tokens, int):
        return Completion(
            text=content,
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason=finish_reason,
        )
    # Some compatible servers report no usage: estimate (about 4 characters per token) so
    # the workspace quota still holds.
    prompt_chars = sum(len(m["content"]) for m in params["messages"])
    return Completion(
        text=content,
        model=model,
        prompt_tokens=max(1, prompt_chars // 4),
        completion_tokens=max(1, len(content) // 4),
        finish_reason=finish_reason,
        estimated=True,
    )


def ai_configured(settings: Settings) -> bool:
    """AI is available when a key is set or the base URL points at another server."""
    base_url = str(settings.openai_base_url).rstrip("/")
    return settings.openai_api_key is not None or base_url != OPENAI_DEFAULT_BASE_URL


def api_base_url(configured: str) -> str:
    """The base URL the SDK is given: a bare server address gets ``/v1``.

    vLLM, Ollama, LM Studio and llama.cpp serve the OpenAI API under ``/v1``, and people
    often paste just ``http://host:port``; a URL with a path is used as written.
    """
    base = configured.rstrip("/")
    return base if urlsplit(base).path else f"{base}/v1"


def build_ai_client(settings: Settings) -> OpenAiClient | None:
    """The configured AI client, or None when no AI server is configured (AI is off)."""
    if not ai_configured(settings):
        return None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return OpenAiClient(
        base_url=api_base_url(str(settings.openai_base_url)),
        api_key=key,
        model=settings.openai_model,
        temperature=settings.openai_temperature,
        timeout_s=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
        length_param=settings.openai_token_param,
    )
