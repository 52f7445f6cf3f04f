"""What the chat layer remembers between messages, in Redis with a time to live.

- **Command results**, keyed by (platform, chat, message id): Telegram delivers an update
  again when its answer was lost, and Discord may repeat an interaction. The first delivery
  claims the key and stores its reply; a repeat gets that reply back and acts no second
  time. A claim whose command died (an unexpected error) is released, so the command can
  be tried again: nothing is known to have happened.
- **Pending edits**, keyed by (platform, chat, person): after Edit, only that person's reply
  to the prompt is taken as the new text, and it is shown back with Send / Cancel before
  anything goes out.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from core.domain.chat import Reply
from core.domain.scope import instance_level
from core.services.chat_members import ChatUser

# Telegram redelivers an unconfirmed update for up to 24 hours.
RESULT_TTL_S = 2 * 24 * 3600
# A command still running after this long is taken for dead.
CLAIM_TTL_S = 10 * 60
WORKING = "working"
PENDING_EDIT_TTL_S = 15 * 60


class CommandResults:
    """One result per delivered command: a repeat returns it and does not act again."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def key(who: ChatUser, message_id: str) -> str:
        return f"reelay:chatops:done:{who.platform.value}:{who.chat_id}:{message_id}"

    @instance_level("keyed by the chat message, before anyone's workspace is known")
    async def once(
        self, who: ChatUser, message_id: str, run: Callable[[], Awaitable[Reply]]
    ) -> Reply | None:
        """``run()``'s reply, or the first delivery's; None while the first is still at work."""
        key = self.key(who, message_id)
        if not await self.redis.set(key, WORKING, nx=True, ex=CLAIM_TTL_S):
            stored = await self.redis.get(key)
            if stored is None or _text(stored) == WORKING:
                return None
            return Reply.from_json(_text(stored))
        try:
            reply = await run()
        except BaseException:
            await self.redis.delete(key)
            raise
        await self.redis.set(key, reply.to_json(), ex=RESULT_TTL_S)
        return reply


@dataclass(frozen=True)
class PendingEdit:
    draft_id: int
    prompt_id: str = ""  # the prompt's message id, once sent
    text: str = ""  # the new text, once replied, until Send or Cancel


class PendingEdits:
    """The draft a person is editing in a chat, the prompt they must reply to, their text."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def key(who: ChatUser) -> str:
        return f"reelay:chatops:edit:{who.platform.value}:{who.chat_id}:{who.user_id}"

    @instance_level("keyed by the chat and the person in it, who edits only their own")
    async def get(self, who: ChatUser) -> PendingEdit | None:
        raw = await self.redis.get(self.key(who))
        if raw is None:
            return None
        data = json.loads(_text(raw))
        return PendingEdit(int(data["draft_id"]), str(data["prompt_id"]), str(data["text"]))

    @instance_level("keyed by the chat and the person in it, who edits only their own")
    async def put(self, who: ChatUser, edit: PendingEdit) -> None:
        payload = {"draft_id": edit.draft_id, "prompt_id": edit.prompt_id, "text": edit.text}
        await self.redis.set(self.key(who), json.dumps(payload), ex=PENDING_EDIT_TTL_S)

    @instance_level("keyed by the chat and the person in it, who edits only their own")
    async def drop(self, who: ChatUser) -> None:
        await self.redis.delete(self.key(who))


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
