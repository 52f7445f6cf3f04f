"""The AI port: one chat completion against any OpenAI-compatible server.

The adapter is ``core.adapters.openai_ai.OpenAiClient``. Every failure is raised as
``core.domain.ai.AiError`` (a ``ReelayError``) with a ``kind``; nothing else escapes, and no
call outlives its timeout and bounded retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.domain.ai import (
    AiDisabled,
    AiError,
    AiErrorKind,
    AiQuotaReached,
    ChatMessage,
)

__all__ = [
    "AiClient",
    "AiDisabled",
    "AiError",
    "AiErrorKind",
    "AiQuotaReached",
    "ChatMessage",
    "Completion",
    "JsonSchema",
]


@dataclass(frozen=True)
class JsonSchema:
    """Ask for structured output: the answer must be JSON matching ``schema``."""

    name: str
    schema: dict[str, Any] = field(hash=False)
    strict: bool = True

    def as_response_format(self) -> dict[str, Any]:
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": self.strict},
        }


@dataclass(frozen=True)
class Completion:
    """The answer's text and what it cost. ``estimated`` when the server reported no usage."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class AiClient(Protocol):
    @property
    def model(self) -> str:
        """The default model name."""
        ...

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
        """One chat completion.

        ``model``, ``temperature`` and ``timeout_s`` default to the configured ones;
        ``timeout_s`` bounds each attempt. With ``json_schema`` the server is asked for
        structured output; the text is returned as is (the caller parses it).
        Raises ``AiError``.
        """
        ...

    async def close(self) -> None: ...
