"""The Telegram adapter: an aiogram dispatcher over core's command layer.

Handlers only translate: a message (text or caption, attached photos, videos and documents)
or a button press goes to ``ChatOps``, and its ``Reply`` comes back as a message with an
inline keyboard. ``TelegramNotifier`` is the notifier port over the Bot API, used by the
worker to deliver alerts without the polling process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from aiogram import BaseMiddleware, Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatAction
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandStart
from aiogram.types import (
    BotCommand,
    CallbackQuery,
    Chat,
    ErrorEvent,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    User,
)

from bot.telegram_mirror import TelegramThreads, delivery_error
from bot.telegram_replies import (
    ReplyNotSent,
    answer,
    not_modified,
    rendered,
    retrying_after,
    with_links_as_text_if_refused,
)
from core.bootstrap import Container
from core.db.models import Platform
from core.domain.chat import Reply
from core.domain.commands import command_name
from core.errors import SettingsError
from core.ports.notifier import ChatDeliveryError
from core.services import chat_links
from core.services.chat_members import ChatUser
from core.services.chatops import ChatOps, IncomingFile
from core.wiring import Services

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds between tries while the Bot API cannot be reached at startup; the last repeats.
STARTUP_RETRY_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# Seconds to wait for the rest of an album (Telegram sends each item as its own message).
ALBUM_WAIT_S = 1.0
NO_TOPICS = (
    "Conversations are mirrored one topic per person: turn on Topics in this group's "
    "settings, make me an admin allowed to manage topics, then send /mirror here again."
)
# Telegram shows "typing…" for about 5 s per sendChatAction: sent again while work goes on.
TYPING_EVERY_S = 4.0

BOT_COMMANDS = [
    BotCommand(command="schedule", description="Schedule the attached photo/video: WHEN CAPTION"),
    BotCommand(command="queue", description="The next scheduled posts"),
    BotCommand(command="post", description="Publish a post now: ID now"),
    BotCommand(command="cancel", description="Cancel a scheduled post: ID"),
    BotCommand(command="reschedule", description="Move a post: ID WHEN"),
    BotCommand(command="caption", description="Write a caption: TOPIC"),
    BotCommand(command="leads", description="The latest leads"),
    BotCommand(command="stats", description="Posts, automations and leads in numbers"),
    BotCommand(command="health", description="Whether each account is working"),
    BotCommand(command="approvals", description="AI replies waiting for approval"),
    BotCommand(command="approvepost", description="Approve an editor's post: ID [WHEN]"),
    BotCommand(command="rejectpost", description="Reject an editor's post: ID REASON"),
    BotCommand(command="timezone", description="Time zones: ZONE (team's) or me ZONE (yours)"),
    BotCommand(command="link", description="Link yourself: your personal CODE"),
    BotCommand(command="mirror", description="Mirror conversations to this forum group: here|off"),
    BotCommand(command="takeover", description="In a conversation's topic: silence automations"),
    BotCommand(command="release", description="In a conversation's topic: hand it back"),
    BotCommand(command="done", description="In a conversation's topic: mark it done"),
    BotCommand(command="assign", description="In a conversation's topic: @name, me or nobody"),
    BotCommand(command="help", description="What Reelay can do"),
]


def create_bot(token: str, api_server: str) -> Bot:
    """A Bot talking to ``api_server`` (Telegram's or a local Bot API server)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_server.rstrip("/")))
    return Bot(token=token, session=session)


def chat_user(chat: Chat, user: User, bot_username: str = "") -> ChatUser:
    title = chat.title or user.full_name
    return ChatUser(
        platform=Platform.TELEGRAM,
        chat_id=str(chat.id),
        user_id=str(user.id),
        name=user.username or user.full_name,
        chat_title=title,
        direct=chat.type == "private",
        bot_username=bot_username,
    )


def attached_files(bot: Bot, messages: list[Message]) -> list[IncomingFile]:
    """Photos (largest size), videos and documents of ``messages``, downloaded on demand."""
    files: list[IncomingFile] = []
    for message in messages:
        if message.photo:
            largest = max(
                message.photo, key=lambda size: (size.width * size.height, size.file_size or 0)
            )
            files.append(
                _file(
                    bot,
                    largest.file_id,
                    f"photo-{largest.file_unique_id}.jpg",
                    "image/jpeg",
                    largest.file_size,
                )
            )
        elif message.video:
            video = message.video
            name = video.file_name or f"video-{video.file_unique_id}.mp4"
            files.append(
                _file(bot, video.file_id, name, video.mime_type or "video/mp4", video.file_size)
            )
        elif message.document:
            doc = message.document
            name = doc.file_name or f"file-{doc.file_unique_id}"
            mime = doc.mime_type or "application/octet-stream"
            files.append(_file(bot, doc.file_id, name, mime, doc.file_size))
    return files


def _file(bot: Bot, file_id: str, filename: str, mime: str, size: int | None) -> IncomingFile:
    async def fetch() -> bytes:
        downloaded = await bot.download(file_id)
        if downloaded is None:
            raise ChatDeliveryError("Telegram returned no file")
        return downloaded.read()

    return IncomingFile(filename=filename, mime=mime, fetch=fetch, size=size)


async def respond(message: Message, reply: Reply | None, chatops: ChatOps, who: ChatUser) -> None:
    """Show a command's reply (None: a repeated delivery still at work says nothing); an
    edit prompt's message id is handed back, so only replies to it count."""
    if reply is None:
        return
    sent = await answer(message, reply)
    if reply.awaits_reply:
        await chatops.prompt_sent(who, str(sent.message_id))


# ---------------------------------------------------------------- middleware and routers


class ReelayMiddleware(BaseMiddleware):
    """Injects the command layer and ``who`` (the chat user) by name.

    ``who`` carries the bot's username (``getMe``, asked once and kept by aiogram) for the
    deep link that lets a person link themselves privately.
    """

    def __init__(self, chatops: ChatOps) -> None:
        self.chatops = chatops

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["chatops"] = self.chatops
        chat: Chat | None = data.get("event_chat")
        user: User | None = data.get("event_from_user")
        bot: Bot | None = data.get("bot")
        if chat is not None and user is not None:
            me = await bot.me() if bot is not None else None
            data["who"] = chat_user(chat, user, (me.username or "") if me else "")
        return await handler(event, data)


class AlbumCollector:
    """Gathers the messages of one album so ``/schedule`` sees every item at once."""

    def __init__(self, wait_s: float = ALBUM_WAIT_S) -> None:
        self.wait_s = wait_s
        self._albums: dict[str, list[Message]] = {}

    async def collect(self, message: Message) -> list[Message] | None:
        """The whole album for the first message of it; None for the later ones."""
        group = message.media_group_id
        if group is None:
            return [message]
        if group in self._albums:
            self._albums[group].append(message)
            return None
        self._albums[group] = [message]
        await asyncio.sleep(self.wait_s)
        return sorted(self._albums.pop(group), key=lambda item: item.message_id)


def linking_router() -> Router:
    router = Router(name="linking")

    @router.message(CommandStart())
    @router.message(Command("help", "link"))
    async def linking(message: Message, chatops: ChatOps, who: ChatUser) -> None:
        """Help, /link CODE and /start CODE (the deep link that links a person)."""
        reply = await chatops.handle_once(who, str(message.message_id), message.text or "")
        await respond(message, reply, chatops, who)

    return router


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """Show "typing…" in the chat while slow work runs (Telegram shows it about 5 s a call).

    A refused action only costs the indicator: the command goes on."""

    async def keep_typing() -> None:
        while True:
            try:
                await bot.send_chat_action(chat_id=chat_id, action=ChatAction.TYPING)
            except TelegramAPIError as exc:
                logger.info("typing action refused in chat %s: %s", chat_id, exc)
                return
            await asyncio.sleep(TYPING_EVERY_S)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def with_quoted_caption(text: str, message: Message) -> str:
    """``/schedule WHEN`` sent as a reply to a text message takes that text as its caption, so
    a caption longer than Telegram's 1024 characters for media can still be scheduled."""
    quoted = message.reply_to_message
    long_caption = (quoted.text or quoted.caption or "") if quoted is not None else ""
    if not long_caption or command_name(text) != "schedule" or long_caption.startswith("/"):
        return text
    return f"{text.rstrip()}\n{long_caption}"


def posts_router(albums: AlbumCollector) -> Router:
    router = Router(name="posts")

    @router.message(F.media_group_id)
    async def album(message: Message, bot: Bot, chatops: ChatOps, who: ChatUser) -> None:
        """An album item: the captioned item runs /schedule with every item attached."""
        items = await albums.collect(message)
        if items is None:
            return
        captioned = next((item for item in items if item.caption), None)
        if captioned is None or not (captioned.caption or "").lstrip().startswith("/"):
            return
        command = with_quoted_caption(captioned.caption or "", captioned)
        files = attached_files(bot, items)
        async with typing(bot, message.chat.id):
            reply = await chatops.handle_once(who, str(items[0].message_id), command, files)
        await respond(message, reply, chatops, who)

    @router.message(Command("schedule", "queue", "post", "cancel", "reschedule"))
    async def posts(message: Message, bot: Bot, chatops: ChatOps, who: ChatUser) -> None:
        """Schedule (with attached media), queue, post now, cancel, reschedule."""
        text = with_quoted_caption(message.text or message.caption or "", message)
        files = attached_files(bot, [message])
        if files:  # downloading and storing media takes a while
            async with typing(bot, message.chat.id):
                reply = await chatops.handle_once(who, str(message.message_id), text, files)
        else:
            reply = await chatops.handle_once(who, str(message.message_id), text, files)
        await respond(message, reply, chatops, who)

    return router


def approvals_router() -> Router:
    router = Router(name="approvals")

    @router.message(Command("approvals", "approve", "reject", "edit", "approvepost", "rejectpost"))
    async def approvals(message: Message, chatops: ChatOps, who: ChatUser) -> None:
        """List drafts and decide them by command."""
        reply = await chatops.handle_once(who, str(message.message_id), message.text or "")
        await respond(message, reply, chatops, who)

    @router.callback_query(F.data)
    async def pressed(query: CallbackQuery, chatops: ChatOps, who: ChatUser) -> None:
        """A button under a message: approve, edit, reject, post now, cancel, page."""
        reply = await chatops.press(who, query.data or "")
        message = query.message if isinstance(query.message, Message) else None
        if reply.private or message is None:
            await query.answer(reply.text[:200], show_alert=True)
            return
        # Answered once, after the reply is shown: when showing it fails, the errors router
        # answers with an alert instead (a query cannot be answered twice).
        if reply.replace:
            text, markup = rendered(reply)
            if reply.line_of is not None:
                text, markup = with_line_replaced(message, reply.line_of, text)
            try:
                await retrying_after(lambda: message.edit_text(text, reply_markup=markup))
            except TelegramBadRequest as exc:
                if not not_modified(exc):
                    raise
        else:
            await respond(message, reply, chatops, who)
        await query.answer()

    return router


def with_line_replaced(
    message: Message, target: int, line: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    """``message`` with the line of ``target`` (``#<target>: …``) replaced by ``line`` and the
    buttons acting on ``target`` dropped; every other line and button stays as it is."""
    prefix = f"#{target}:"
    lines = [line if old.startswith(prefix) else old for old in (message.text or "").split("\n")]
    rows = []
    for row in message.reply_markup.inline_keyboard if message.reply_markup else []:
        kept = [b for b in row if not (b.callback_data or "").endswith(f":{target}")]
        if kept:
            rows.append(kept)
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def insights_router() -> Router:
    router = Router(name="insights")

    @router.message(Command("leads", "stats", "health", "caption"))
    async def insights(message: Message, bot: Bot, chatops: ChatOps, who: ChatUser) -> None:
        """Leads, stats, account health and the caption writer (which may take a minute:
        "typing…" meanwhile)."""
        async with typing(bot, message.chat.id):
            reply = await chatops.handle_once(who, str(message.message_id), message.text or "")
        await respond(message, reply, chatops, who)

    return router


async def in_mirrored_topic(message: Message, who: ChatUser, services: Services) -> bool:
    """Whether ``message`` was written in a conversation's topic of the mirror group."""
    thread = message.message_thread_id
    if not message.is_topic_message or thread is None:
        return False
    return await services.chat_desk.mirrored(who, str(thread))


def mirror_router() -> Router:
    router = Router(name="mirror")

    @router.message(Command("mirror"))
    async def switch(message: Message, chatops: ChatOps, who: ChatUser, services: Services) -> None:
        """/mirror here (or off): mirror the conversations to this forum group."""
        if message.chat.type == "supergroup" and not message.chat.is_forum:
            await answer(message, Reply(NO_TOPICS))
            return
        reply = await services.chat_desk.switch(who, str(message.message_id), message.text or "")
        await respond(message, reply, chatops, who)

    @router.message(in_mirrored_topic)
    async def in_topic(
        message: Message, bot: Bot, chatops: ChatOps, who: ChatUser, services: Services
    ) -> None:
        """A teammate's text or photo in a conversation's topic (sent to the person), or a
        command acting on that conversation."""
        photos = attached_files(bot, [message]) if message.photo else []
        reply = await services.chat_desk.handle(
            who,
            str(message.message_thread_id),
            str(message.message_id),
            message.text or message.caption or "",
            photos[0] if photos else None,
        )
        await respond(message, reply, chatops, who)

    return router


def conversation_router() -> Router:
    router = Router(name="conversation")

    @router.message(F.text)
    async def text(message: Message, chatops: ChatOps, who: ChatUser) -> None:
        """Plain text: a reply to an edit prompt, or an unknown command; else nothing."""
        replied = message.reply_to_message
        reply = await chatops.handle_message(
            who,
            message.text or "",
            message_id=str(message.message_id),
            reply_to=str(replied.message_id) if replied is not None else "",
        )
        await respond(message, reply, chatops, who)

    return router


def errors_router() -> Router:
    router = Router(name="errors")

    @router.error()
    async def failed(event: ErrorEvent) -> None:
        """Log what went wrong and tell the user, once, in plain words: "try again" only when
        nothing happened (an answer that could not be shown is only logged)."""
        if isinstance(event.exception, ReplyNotSent):
            logger.error(
                "telegram update %s: the command ran but its answer could not be sent (%s)",
                event.update.update_id,
                event.exception,
            )
            return
        logger.error("telegram update %s failed", event.update.update_id, exc_info=event.exception)
        message = event.update.message
        query = event.update.callback_query
        if query is not None:
            await query.answer("Something went wrong; please try again.", show_alert=True)
        elif message is not None:
            await message.reply("Something went wrong on our side; please try again.")

    return router


def create_dispatcher(
    services: Services,
    *,
    chatops: ChatOps | None = None,
    album_wait_s: float = ALBUM_WAIT_S,
) -> Dispatcher:
    """The dispatcher with every feature router, in order, and the injecting middleware.

    ``services`` is workflow data (handlers take it by name); ``chatops`` replaces the
    services' command layer.
    """
    dispatcher = Dispatcher(services=services)
    middleware = ReelayMiddleware(chatops or services.chatops)
    dispatcher.message.outer_middleware(middleware)
    dispatcher.callback_query.outer_middleware(middleware)
    dispatcher.include_routers(
        linking_router(),
        mirror_router(),
        posts_router(AlbumCollector(album_wait_s)),
        approvals_router(),
        insights_router(),
        conversation_router(),
        errors_router(),
    )
    dispatcher.startup.register(_register_commands)
    return dispatcher


async def _register_commands(bot: Bot) -> None:
    # The command menu is a convenience: a failure to set it must not stop the bot.
    try:
        await bot.set_my_commands(BOT_COMMANDS)
    except TelegramAPIError as exc:
        logger.warning("telegram: could not register the command menu: %s", exc.message)


# ---------------------------------------------------------------- notifier


class TelegramNotifier(TelegramThreads):
    """The notifier port over the Bot API: alerts and approval messages in linked chats (and,
    as ``TelegramThreads``, conversations' topics in the mirror group)."""

    async def send(self, chat_id: str, reply: Reply) -> str:
        async def send(links_as_text: bool) -> Message:
            text, markup = rendered(reply, links_as_text=links_as_text)
            return await self.bot.send_message(chat_id=int(chat_id), text=text, reply_markup=markup)

        try:
            sent = await with_links_as_text_if_refused(send)
        except TelegramAPIError as exc:
            raise delivery_error(exc) from exc
        return str(sent.message_id)

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        async def edit(links_as_text: bool) -> None:
            text, markup = rendered(reply, links_as_text=links_as_text)
            await self.bot.edit_message_text(
                chat_id=int(chat_id), message_id=int(message_id), text=text, reply_markup=markup
            )

        try:
            await with_links_as_text_if_refused(edit)
        except TelegramBadRequest as exc:
            if not_modified(exc):
                return
            raise delivery_error(exc) from exc
        except TelegramAPIError as exc:
            raise delivery_error(exc) from exc


# ---------------------------------------------------------------- running


def webhook_secret(container: Container) -> str:
    """The secret Telegram echoes in each webhook call, derived from the instance's key."""
    digest = hmac.new(container.secret_key.encode(), b"telegram-webhook", hashlib.sha256)
    return digest.hexdigest()


async def _reach(api_server: str, call: Callable[[], Awaitable[T]]) -> T:
    """``call``'s result once the Bot API answers; a refused token is a settings error."""
    for attempt in itertools.count():
        try:
            return await call()
        except TelegramUnauthorizedError as exc:
            raise SettingsError(
                f"Telegram ({api_server}) refused TELEGRAM_TOKEN (401 Unauthorized): "
                "copy the bot's token from @BotFather again."
            ) from exc
        except (TelegramNetworkError, TelegramServerError, ClientDecodeError) as exc:
            delay = STARTUP_RETRY_S[min(attempt, len(STARTUP_RETRY_S) - 1)]
            problem = exc.message if isinstance(exc, TelegramAPIError) else type(exc).__name__
            logger.warning(
                "telegram: the Bot API at %s did not answer (%s); trying again in %.1f s",
                api_server,
                problem,
                delay,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def run_telegram(services: Services, token: str) -> None:
    """Long-poll Telegram until cancelled, or serve webhooks when TELEGRAM_WEBHOOK_URL is set.

    Waits while the Bot API cannot be reached at startup (so a Telegram outage does not stop
    ``reelay run``); a token or webhook URL that Telegram refuses is a ``SettingsError``.
    """
    settings = services.container.settings
    api_server = str(settings.telegram_api_server)
    bot = create_bot(token, api_server)
    dispatcher = create_dispatcher(services)
    try:
        me = await _reach(api_server, bot.me)
        await chat_links.remember_bot_username(me.username or "")
        if settings.telegram_webhook_url is None:
            await _reach(api_server, bot.delete_webhook)
            await dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
        else:
            await _serve_webhook(
                services.container, bot, dispatcher, str(settings.telegram_webhook_url)
            )
    finally:
        await bot.session.close()


async def _serve_webhook(container: Container, bot: Bot, dispatcher: Dispatcher, url: str) -> None:
    from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
    from aiohttp import web

    settings = container.settings
    secret = webhook_secret(container)
    app = web.Application()
    path = "/telegram/webhook"
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret).register(app, path)
    setup_application(app, dispatcher, bot=bot)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, settings.telegram_webhook_host, settings.telegram_webhook_port)
    await site.start()
    hook = url.rstrip("/") + path
    try:
        try:
            await _reach(
                str(settings.telegram_api_server),
                lambda: bot.set_webhook(hook, secret_token=secret, drop_pending_updates=False),
            )
        except TelegramBadRequest as exc:
            raise SettingsError(
                f"Telegram refused TELEGRAM_WEBHOOK_URL {hook}: {exc.message}"
            ) from exc
        logger.info(
            "telegram webhook listening on %s:%s",
            settings.telegram_webhook_host,
            settings.telegram_webhook_port,
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
