"""Conversations' threads on Discord: what the team writes in a conversation's thread of the
mirror channel goes to ``ChatDesk`` (a reply to the person, or a command acting on the
conversation), and ``/mirror`` chooses the channel. Reading the thread's messages needs the
gateway's Message Content intent (Developer Portal → Bot → Privileged Gateway Intents)."""

from __future__ import annotations

import logging
from typing import Any, Literal

import discord
from discord import app_commands
from discord.ext import commands

from core.db.models import Platform
from core.domain.chat import Reply
from core.services.chat_members import ChatUser
from core.services.chat_mirror import ChatDesk
from core.services.chatops import IncomingFile

logger = logging.getLogger(__name__)

MAX_TEXT = 2000


def thread_author(message: discord.Message) -> tuple[ChatUser, str] | None:
    """Who wrote ``message`` and in which thread, as the mirror sees it: the chat is the
    thread's channel; None outside a thread."""
    channel = message.channel
    parent_id = getattr(channel, "parent_id", None)
    if parent_id is None:
        return None
    author = message.author
    who = ChatUser(
        platform=Platform.DISCORD,
        chat_id=str(parent_id),
        user_id=str(author.id),
        name=author.display_name,
        chat_title=str(getattr(channel, "name", "") or ""),
    )
    return who, str(channel.id)


def image_of(message: discord.Message) -> IncomingFile | None:
    """The first image attached to ``message``, downloaded only once the sender may send."""
    for attachment in message.attachments:
        if (attachment.content_type or "").startswith("image/"):
            return IncomingFile(
                filename=attachment.filename,
                mime=attachment.content_type or "image/jpeg",
                fetch=attachment.read,
                size=attachment.size,
            )
    return None


async def route_thread_message(desk: ChatDesk, message: discord.Message) -> Reply | None:
    """Hand a message written in a conversation's thread to the desk; None for any other."""
    if message.author.bot:
        return None
    found = thread_author(message)
    if found is None:
        return None
    who, thread_id = found
    if not await desk.mirrored(who, thread_id):
        return None
    return await desk.handle(
        who, thread_id, str(message.id), message.content or "", image_of(message)
    )


class ThreadMessages(commands.Cog):
    """Messages in the conversations' threads, and ``/mirror``."""

    def __init__(self, desk: ChatDesk) -> None:
        self.desk = desk

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A teammate's message in a conversation's thread: a reply, or a command."""
        reply = await route_thread_message(self.desk, message)
        if reply is not None:
            await message.reply(reply.text[:MAX_TEXT], mention_author=False)

    @app_commands.command(name="mirror", description="Mirror conversations to this channel")
    async def mirror(
        self, interaction: discord.Interaction[Any], state: Literal["here", "off"] = "here"
    ) -> None:
        """/mirror here (or off): one thread per conversation in this channel (admins)."""
        user = interaction.user
        who = ChatUser(
            platform=Platform.DISCORD,
            chat_id=str(interaction.channel_id),
            user_id=str(user.id),
            name=user.display_name,
            direct=interaction.guild_id is None,
        )
        reply = await self.desk.switch(who, str(interaction.id), f"/mirror {state}")
        if reply is not None:
            await interaction.response.send_message(reply.text[:MAX_TEXT])
