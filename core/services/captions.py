"""The caption writer: topic, tone and optional context in, a caption and 5 to 10 hashtags out.

Used by the panel composer and the chat ``/caption`` command. The answer is asked for as
structured output (JSON schema), counted against the workspace's AI quota, and fitted to
Instagram's post limits (see ``core.domain.captions``). Errors: ``ValidationFailed`` for a
bad request, ``AiError`` (``AiDisabled``, ``AiQuotaReached``, timeouts, a malformed answer…)
for everything the AI side did; each carries a message for people.
"""

from __future__ import annotations

import logging

from core.domain.captions import (
    CAPTION_SCHEMA,
    CaptionSuggestion,
    caption_prompt,
    caption_request,
    parse_caption_answer,
)
from core.domain.scope import Actor
from core.ports.ai import AiClient, JsonSchema
from core.ports.clock import Clock
from core.services.ai_usage import complete_for_workspace

logger = logging.getLogger(__name__)

SCHEMA = JsonSchema("instagram_caption", CAPTION_SCHEMA)


async def write_caption(
    actor: Actor,
    ai: AiClient | None,
    *,
    topic: str,
    tone: str,
    context: str = "",
    clock: Clock,
    max_tokens: int = 1000,
) -> CaptionSuggestion:
    """A caption suggestion for the composer; nothing is stored or posted.

    ``tone`` is one of professional, witty, casual, urgent.
    """
    request = caption_request(topic, tone, context)
    completion = await complete_for_workspace(
        actor,
        ai,
        caption_prompt(request),
        now=clock.now(),
        max_tokens=max_tokens,
        json_schema=SCHEMA,
    )
    suggestion = parse_caption_answer(completion.text)
    logger.info(
        "caption written for workspace %s (%d characters, %d hashtags)",
        actor.workspace_id,
        len(suggestion.text),
        len(suggestion.hashtags),
    )
    return suggestion
