"""The chat command layer: one place that authorises and executes chat commands.

Telegram and Discord adapters hand over who wrote what (``ChatUser``, text, attached files)
or which button was pressed, and send back the ``Reply``. Every command is authorised by the
role of the panel user the chat user is linked to: viewers read, editors schedule and decide
drafts, admins link chats (the link code's creator must be an admin).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.bootstrap import Container
from core.db.models import (
    AccountStatus,
    ChatLink,
    DraftStatus,
    InstagramAccount,
    MediaAsset,
    ReplyDraft,
    Role,
)
from core.domain import alerts, commands as cmd
from core.domain.chat import (
    LINK_CODES_PATH,
    PERSONAL_CODES_PATH,
    Action,
    ActionVerb,
    Button,
    ButtonStyle,
    Reply,
    decode_action,
)
from core.domain.posts import Kind, Status, check_caption, validate_schedule
from core.domain.scope import Actor, instance_level
from core.errors import Conflict, Forbidden, NotFound, ReelayError, ValidationFailed
from core.ports.storage import MediaStorage
from core.services import (
    chat_members,
    chat_reads,
    comment_alerts,
    library,
    media,
    notifications,
    time_zones,
)
from core.services.accounts import account_ref
from core.services.captions import write_caption
from core.services.chat_members import (
    ChatMember,
    ChatUser,
)
from core.services.chat_reads import snippet
from core.services.chat_state import CommandResults, PendingEdit, PendingEdits
from core.services.comment_moderation import CommentModeration
from core.services.health import Health
from core.services.publishing import PostInput, Publishing
from core.services.smart_replies import SmartReplies

logger = logging.getLogger(__name__)


# The least role each command needs.
NEEDS: dict[type[cmd.Command], Role] = {
    cmd.Help: Role.VIEWER,
    cmd.Queue: Role.VIEWER,
    cmd.Leads: Role.VIEWER,
    cmd.Stats: Role.VIEWER,
    cmd.Health: Role.VIEWER,
    cmd.Approvals: Role.VIEWER,
    cmd.TimeZone: Role.VIEWER,  # the team's zone needs an admin: checked by the service
    cmd.Schedule: Role.EDITOR,
    cmd.PostNow: Role.EDITOR,
    cmd.Cancel: Role.EDITOR,
    cmd.Reschedule: Role.EDITOR,
    cmd.Caption: Role.EDITOR,
    cmd.Approve: Role.EDITOR,
    cmd.Reject: Role.EDITOR,
    cmd.Edit: Role.EDITOR,
    cmd.ApprovePost: Role.ADMIN,
    cmd.RejectPost: Role.ADMIN,
}
PRESS_NEEDS: dict[ActionVerb, Role] = {
    ActionVerb.QUEUE: Role.VIEWER,
    ActionVerb.APPROVE: Role.EDITOR,
    ActionVerb.EDIT: Role.EDITOR,
    ActionVerb.REJECT: Role.EDITOR,
    ActionVerb.POST_NOW: Role.EDITOR,
    ActionVerb.CANCEL: Role.EDITOR,
    ActionVerb.LIST_APPROVE: Role.EDITOR,
    ActionVerb.LIST_REJECT: Role.EDITOR,
    ActionVerb.SEND_EDIT: Role.EDITOR,
    ActionVerb.DROP_EDIT: Role.EDITOR,
    ActionVerb.POST_APPROVE: Role.ADMIN,
    **dict.fromkeys(comment_alerts.VERBS, Role.EDITOR),
}

HELP_TEXT = f"""Reelay runs your Instagram from this chat.

/schedule WHEN CAPTION: attach one photo or video (or several for a carousel); add "story" \
after /schedule for a story. WHEN: "tomorrow 9am", "in 2h", "fri 18:00", "2025-03-07 09:00".
/queue [page]: the next posts
/post ID now, /cancel ID, /reschedule ID WHEN
/caption [witty|professional|casual|urgent] TOPIC: a caption with hashtags
/leads [n]: the latest leads
/stats: this week in numbers
/health: whether each account is working (webhooks, sends, token, quota)
/approvals: AI replies waiting for a decision (/approve ID, /reject ID, /edit ID TEXT)
/approvepost ID [WHEN], /rejectpost ID REASON: an editor's post waiting for approval
/timezone [me] ZONE: the team's time zone (owners, admins) or yours, e.g. Europe/Berlin
/mirror here|off: answer Instagram DMs from this chat, one topic or thread per person (admins); \
in a person's topic, write to answer them, or /takeover [hours], /release, /done, /assign @name
/link CODE: link yourself (personal code from {PERSONAL_CODES_PATH}) or, \
as an admin, this chat (code from the panel → {LINK_CODES_PATH})"""


# (workspace id, topic, tone) -> the caption text with its hashtags
CaptionWriter = Callable[[int, str, str], Awaitable[str]]


@dataclass(frozen=True)
class IncomingFile:
    """A file attached to a chat message; ``fetch`` downloads it (only once authorised)."""

    filename: str
    mime: str
    fetch: Callable[[], Awaitable[bytes]]
    size: int | None = None


class ChatOps:
    """Executes chat commands and button presses; adapters only translate."""

    def __init__(
        self,
        container: Container,
        *,
        publishing: Publishing,
        storage: MediaStorage,
        smart_replies: SmartReplies | None = None,
        captions: CaptionWriter | None = None,
        health: Health | None = None,
        comments: CommentModeration | None = None,
    ) -> None:
        self.container = container
        self.health = health
        self.comments = comments
        self.publishing = publishing
        self.storage = storage
        self.smart_replies = smart_replies
        self.captions = captions or self._write_caption
        self.results = CommandResults(container.redis)
        self.edits = PendingEdits(container.redis)

    # ------------------------------------------------------------ entry points

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def handle_message(
        self,
        who: ChatUser,
        text: str,
        files: Sequence[IncomingFile] = (),
        *,
        message_id: str = "",
        reply_to: str = "",
    ) -> Reply | None:
        """Answer a chat message; None when it is neither a command nor an awaited edit.

        ``message_id`` makes a repeated delivery return the first reply (see
        ``handle_once``); ``reply_to`` is the id of the message it replies to: only a reply
        to an edit prompt, by the person who pressed Edit, is taken as the new text.
        """
        if cmd.command_name(text) is not None and text.strip().startswith("/"):
            if message_id:
                return await self.handle_once(who, message_id, text, files)
            return await self.handle_command(who, text, files)
        pending = await self.edits.get(who)
        if pending is None or not reply_to or reply_to != pending.prompt_id or pending.text:
            return None
        await self.edits.put(who, PendingEdit(pending.draft_id, pending.prompt_id, text))
        return edit_preview(pending.draft_id, text)

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def handle_once(
        self, who: ChatUser, message_id: str, text: str, files: Sequence[IncomingFile] = ()
    ) -> Reply | None:
        """``handle_command`` keyed by (platform, chat, message id): a repeated delivery gets
        the first reply back and acts no second time; None while the first is at work."""
        return await self.results.once(
            who, message_id, lambda: self.handle_command(who, text, files)
        )

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def prompt_sent(self, who: ChatUser, message_id: str) -> None:
        """The edit prompt for ``who`` went out as ``message_id``: only replies to it count."""
        pending = await self.edits.get(who)
        if pending is not None and not pending.prompt_id:
            await self.edits.put(who, PendingEdit(pending.draft_id, message_id))

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def handle_command(
        self, who: ChatUser, text: str, files: Sequence[IncomingFile] = ()
    ) -> Reply:
        """Parse, authorise and run one command; every failure becomes a polite reply."""
        now = self.container.clock.now()
        try:
            name = cmd.command_name(text)
            argument = text.strip().partition(" ")[2].strip()
            if name == "link" or (name == "start" and who.direct and argument):
                return await chat_members.link(who, argument, now)
            member = await self.resolve(who)
            if member is None:
                refusal = await chat_members.refusal(who)
                if name in {"help", "start"}:
                    return Reply(f"{HELP_TEXT}\n\n{refusal.text}", refusal.buttons)
                return refusal
            command = cmd.parse_command(text, now=now, timezone=member.zone)
            chat_members.authorise(member, NEEDS[type(command)], who)
            return await self._run(member, who, command, files, now)
        except Forbidden as exc:
            return Reply(str(exc), private=True)
        except ValidationFailed as exc:
            return Reply(problem_lines(exc), private=True)
        except ReelayError as exc:
            return Reply(str(exc), private=True)

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def press(self, who: ChatUser, data: str) -> Reply:
        """Run the action behind a button (approve, edit, reject, post now, cancel, page)."""
        now = self.container.clock.now()
        try:
            action = decode_action(data)
            member = await self.resolve(who)
            if member is None:
                refusal = await chat_members.refusal(who)
                return Reply(refusal.text, private=True)
            chat_members.authorise(member, PRESS_NEEDS[action.verb], who)
            return await self._run_action(member, who, action, now)
        except Forbidden as exc:
            return Reply(str(exc), private=True)
        except ValidationFailed as exc:
            return Reply(exc.message, private=True)
        except ReelayError as exc:
            return Reply(str(exc), private=True)

    # ------------------------------------------------------------ identity

    @instance_level("a chat entry point: it finds the sender's membership first")
    async def resolve(self, who: ChatUser) -> ChatMember | None:
        """The person behind ``who`` and their role in this chat's workspace."""
        return await chat_members.resolve(who)

    # ------------------------------------------------------------ commands

    async def _run(
        self,
        member: ChatMember,
        who: ChatUser,
        command: cmd.Command,
        files: Sequence[IncomingFile],
        now: datetime,
    ) -> Reply:
        match command:
            case cmd.Help():
                return Reply(HELP_TEXT)
            case cmd.Queue(page=page):
                return await chat_reads.queue(member.actor, member.zone, page)
            case cmd.Leads(count=count):
                return await chat_reads.leads(member.actor, member.zone, count)
            case cmd.Stats(days=days):
                return await chat_reads.stats(
                    member.actor, member.workspace.name, days, self.container.clock
                )
            case cmd.Health():
                return await chat_reads.health(member.actor, member.zone, self._health())
            case cmd.Approvals():
                return await self.approvals(member)
            case cmd.TimeZone():
                return Reply(await time_zones.chat_answer(member.actor, command))
            case _:
                return await self._run_change(member, who, command, files, now)

    async def _run_action(
        self, member: ChatMember, who: ChatUser, action: Action, now: datetime
    ) -> Reply:
        if action.verb is ActionVerb.QUEUE:
            reply = await chat_reads.queue(member.actor, member.zone, action.target)
            return Reply(reply.text, reply.buttons, replace=True)
        if comment_alerts.is_comment_press(action.verb):
            return await self._comment_press(member, action, now)
        if action.verb is ActionVerb.EDIT:
            return await self.start_edit(member, who, action.target)
        if action.verb in (ActionVerb.SEND_EDIT, ActionVerb.DROP_EDIT):
            return await self._finish_edit(member, who, action)
        if action.verb in (ActionVerb.LIST_APPROVE, ActionVerb.LIST_REJECT):
            drafts = self._drafts()
            if action.verb is ActionVerb.LIST_APPROVE:
                await drafts.approve(member.actor, action.target)
            else:
                await drafts.reject(member.actor, action.target)
            return await self._decided_line(member, action.target)
        command: cmd.Command
        if action.verb is ActionVerb.APPROVE:
            command = cmd.Approve(action.target)
        elif action.verb is ActionVerb.REJECT:
            command = cmd.Reject(action.target)
        elif action.verb is ActionVerb.POST_NOW:
            command = cmd.PostNow(action.target)
        elif action.verb is ActionVerb.POST_APPROVE:
            command = cmd.ApprovePost(action.target)
        else:
            command = cmd.Cancel(action.target)
        return await self._run_change(member, who, command, (), now)

    async def _comment_press(self, member: ChatMember, action: Action, now: datetime) -> Reply:
        """Hide, show or delete the comment of an alert, as the presser."""
        if self.comments is None:
            raise NotFound("Comment moderation is not available in this process.")
        ctx = alerts.AlertContext(
            timezone=member.zone,
            panel_url=self.container.settings.base_url,
            workspace=member.workspace.name,
            now=now,
        )
        presser = (member.user.name or member.user.email) if member.user else member.chat_name
        return await comment_alerts.press(
            self.comments, member.actor, presser, member.zone, action, ctx
        )

    def _health(self) -> Health:
        return self.health or Health(
            instagram=self.container.graph,
            account_ref=lambda account: account_ref(self.container, account),
            clock=self.container.clock,
            redis=self.container.redis,
        )

    async def approvals(self, member: ChatMember) -> Reply:
        """Drafts waiting for a decision, each on its own line with its own buttons."""
        drafts = (
            await ReplyDraft.filter(workspace_id=member.workspace.id, status=DraftStatus.PENDING)
            .order_by("created_at", "id")
            .limit(10)
        )
        if not drafts:
            return Reply("No AI replies are waiting for approval.")
        lines = [f"{len(drafts)} AI repl{'ies' if len(drafts) != 1 else 'y'} waiting:"]
        rows: list[tuple[Button, ...]] = []
        for draft in drafts:
            lines.append(_draft_line(draft))
            rows.append(list_buttons(draft.id))
        return Reply("\n".join(lines), tuple(rows))

    async def start_edit(self, member: ChatMember, who: ChatUser, draft_id: int) -> Reply:
        """Ask the presser (by name) to reply to the prompt with the draft's new text."""
        draft = await ReplyDraft.get_or_none(id=draft_id, workspace_id=member.workspace.id)
        if draft is None:
            raise NotFound(f"There is no draft #{draft_id}.")
        if draft.status is not DraftStatus.PENDING:
            raise Conflict(f"Draft #{draft_id} was already {draft.status.value}.")
        await self.edits.put(who, PendingEdit(draft_id))
        name = who.name or "you"
        return Reply(
            f"{name}: reply to this message with the new text for draft #{draft_id} (within "
            f"15 minutes); I'll show it to you before it is sent. It currently says:\n"
            f"{draft.proposed_text}",
            awaits_reply=True,
            mention=(who.user_id, name),
        )

    async def _finish_edit(self, member: ChatMember, who: ChatUser, action: Action) -> Reply:
        """Send or drop the presser's own edited text; anyone else's press changes nothing."""
        pending = await self.edits.get(who)
        if pending is None or pending.draft_id != action.target or not pending.text:
            raise Conflict(
                "Only the person who wrote this text can send or cancel it, within 15 minutes "
                "of pressing Edit."
            )
        await self.edits.drop(who)
        if action.verb is ActionVerb.DROP_EDIT:
            return Reply(
                f"Not sent. Draft #{action.target} still waits for a decision.", replace=True
            )
        await self._drafts().edit(member.actor, action.target, pending.text)
        return await self._decided(member, action.target)

    async def _decided_line(self, member: ChatMember, draft_id: int) -> Reply:
        """The decided draft's own line in the /approvals list, for that line only."""
        draft = await ReplyDraft.get(id=draft_id, workspace_id=member.workspace.id)
        who = member.user.name or member.user.email if member.user else member.chat_name
        return Reply(
            f"{_draft_line(draft)} · {draft.status.value} by {who}",
            replace=True,
            line_of=draft_id,
        )

    async def _run_change(
        self,
        member: ChatMember,
        who: ChatUser,
        command: cmd.Command,
        files: Sequence[IncomingFile],
        now: datetime,
    ) -> Reply:
        tz = member.zone
        match command:
            case cmd.Schedule():
                return await self.schedule(member, command, files)
            case cmd.PostNow(post_id=post_id):
                await self.publishing.publish_now(member.actor, post_id)
                if await self._gets_alerts(member, who):
                    return Reply(f"Publishing post #{post_id} now. I'll say here when it is live.")
                return Reply(
                    f"Publishing post #{post_id} now. This chat gets no alerts, so see /queue "
                    "or the panel's Posts page for when it is live."
                )
            case cmd.Cancel(post_id=post_id):
                await self.publishing.cancel(
                    member.actor, post_id, reason=f"cancelled by {member.actor.label}"
                )
                return Reply(f"Post #{post_id} is cancelled; it will not be published.")
            case cmd.Reschedule(post_id=post_id, when=when):
                if (await self.publishing.get(member.actor, post_id)).status is Status.CANCELLED:
                    raise Conflict(
                        f"Post #{post_id} was cancelled, so I won't bring it back. To post it "
                        "after all, schedule it again in the panel (Posts)."
                    )
                post = await self.publishing.reschedule(member.actor, post_id, when)
                assert post.scheduled_at is not None
                if post.status is Status.PENDING_APPROVAL:
                    return Reply(
                        f"Post #{post_id} is planned for {cmd.describe_time(post.scheduled_at, tz)}"
                        " and waits for an owner's or admin's approval."
                    )
                return Reply(
                    f"Post #{post_id} moved to {cmd.describe_time(post.scheduled_at, tz)}.",
                    post_buttons(post_id),
                )
            case cmd.Approve(draft_id=draft_id):
                draft = await self._drafts().approve(member.actor, draft_id)
                return await self._decided(member, draft.id)
            case cmd.Reject(draft_id=draft_id):
                draft = await self._drafts().reject(member.actor, draft_id)
                return await self._decided(member, draft.id)
            case cmd.Edit(draft_id=draft_id, text=""):
                return await self.start_edit(member, who, draft_id)
            case cmd.Edit(draft_id=draft_id, text=text):
                draft = await self._drafts().edit(member.actor, draft_id, text)
                return await self._decided(member, draft.id)
            case cmd.Caption(topic=topic, tone=tone):
                return await self.caption(member, topic, tone)
            case cmd.ApprovePost(post_id=post_id, when=when):
                post = await self.publishing.approve(member.actor, post_id, when)
                assert post.scheduled_at is not None
                return Reply(
                    f"Approved post #{post_id}: it goes out "
                    f"{cmd.describe_time(post.scheduled_at, tz)}.",
                    post_buttons(post_id),
                    replace=True,
                )
            case cmd.RejectPost(post_id=post_id, reason=reason):
                await self.publishing.reject(member.actor, post_id, reason)
                return Reply(f"Rejected post #{post_id}: {reason}. It will not be published.")
        raise ValidationFailed(f"/{type(command).__name__.lower()} is not something I can do.")

    async def schedule(
        self,
        member: ChatMember,
        command: cmd.Schedule,
        files: Sequence[IncomingFile],
    ) -> Reply:
        """Store the attached media in the library and schedule a post with it."""
        if not files:
            raise ValidationFailed(
                "Attach the photo or video to the message: send it with "
                "/schedule WHEN CAPTION as its caption (several for a carousel)."
            )
        account = await self._account(member, command.account)
        # Everything that can be checked without the files is checked before they are
        # downloaded and stored: a refused /schedule leaves nothing behind.
        check_caption(command.caption)
        validate_schedule(command.when, self.container.clock.now(), member.zone)
        assets, added = await self._store_files(member, files)
        if command.story:
            kind = Kind.STORY
        elif len(assets) > 1:
            kind = Kind.CAROUSEL
        elif assets[0].mime.startswith("video/"):
            kind = Kind.REEL
        else:
            kind = Kind.IMAGE
        try:
            post = await self.publishing.create(
                member.actor,
                account_id=account.id,
                content=PostInput(
                    kind=kind.value, media_ids=[a.id for a in assets], caption=command.caption
                ),
                scheduled_at=command.when,
                source="chat",
            )
        except ReelayError:
            await self._forget_files(member, added)
            raise
        assert post.scheduled_at is not None
        items = f"{len(assets)} items" if len(assets) > 1 else "1 item"
        if post.status is Status.PENDING_APPROVAL:
            return Reply(
                f"Post #{post.id} ({kind.value}, {items}) on @{account.username} for "
                f"{cmd.describe_time(post.scheduled_at, member.zone)} waits for "
                "an owner's or admin's approval; it is published only once approved."
            )
        return Reply(
            f"Scheduled #{post.id} ({kind.value}, {items}) on @{account.username} for "
            f"{cmd.describe_time(post.scheduled_at, member.zone)}.",
            post_buttons(post.id),
        )

    async def _store_files(
        self, member: ChatMember, files: Sequence[IncomingFile]
    ) -> tuple[list[MediaAsset], list[MediaAsset]]:
        """The files in the media library, and those of them new to it (removed again when
        the command is refused)."""
        known = {a.id for a in await MediaAsset.filter(workspace_id=member.workspace.id).only("id")}
        assets: list[MediaAsset] = []
        try:
            for incoming in files:
                data = await incoming.fetch()
                assets.append(
                    await media.upload_bytes(member.actor, self.storage, data, incoming.filename)
                )
        except ReelayError:
            await self._forget_files(member, [a for a in assets if a.id not in known])
            raise
        return assets, [a for a in assets if a.id not in known]

    async def _forget_files(self, member: ChatMember, added: Sequence[MediaAsset]) -> None:
        """Remove the files a refused command added to the library."""
        for asset in {a.id: a for a in added}.values():
            try:
                await library.delete_media(member.actor, self.storage, asset.id)
            except ReelayError as exc:
                logger.warning("media %s of a refused /schedule kept: %s", asset.id, exc)

    async def caption(self, member: ChatMember, topic: str, tone: str) -> Reply:
        """A caption with hashtags from the AI caption writer, ready to paste."""
        text = await self.captions(member.workspace.id, topic, tone)
        return Reply(f"{text}\n\n(Copy it into /schedule, or ask again for another.)")

    async def _write_caption(self, workspace_id: int, topic: str, tone: str) -> str:
        suggestion = await write_caption(
            Actor.system(workspace_id),
            self.container.ai,
            topic=topic,
            tone=tone,
            clock=self.container.clock,
        )
        return suggestion.text

    async def _gets_alerts(self, member: ChatMember, who: ChatUser) -> bool:
        """Whether this chat is linked to the member's workspace, so its alerts arrive here."""
        return await ChatLink.exists(
            platform=who.platform,
            chat_id=who.chat_id,
            active=True,
            workspace_id=member.workspace.id,
        )

    async def _account(self, member: ChatMember, username: str) -> InstagramAccount:
        accounts = await InstagramAccount.filter(
            workspace_id=member.workspace.id, status=AccountStatus.ACTIVE
        ).order_by("id")
        if username:
            for account in accounts:
                if account.username.lower() == username.lower():
                    return account
            raise NotFound(f"@{username} is not a connected account of this workspace.")
        if not accounts:
            raise NotFound("Connect an Instagram account in the panel first.")
        if len(accounts) > 1:
            names = ", ".join(f"@{a.username}" for a in accounts)
            raise ValidationFailed(
                f"This workspace has several accounts ({names}): say which, e.g. "
                f"/schedule @{accounts[0].username} tomorrow 9am Caption"
            )
        return accounts[0]

    def _drafts(self) -> SmartReplies:
        if self.smart_replies is None:
            raise ValidationFailed("AI replies are not set up in this process.")
        return self.smart_replies

    async def _decided(self, member: ChatMember, draft_id: int) -> Reply:
        facts = await notifications.draft_facts(member.actor, draft_id)
        if facts is None:
            raise NotFound(f"There is no draft #{draft_id}.")
        ctx = alerts.AlertContext(
            timezone=member.zone,
            panel_url=self.container.settings.base_url,
            workspace=member.workspace.name,
            now=self.container.clock.now(),
        )
        reply = alerts.render_draft(facts, ctx)
        return Reply(reply.text, reply.buttons, replace=True)


def post_buttons(post_id: int) -> tuple[tuple[Button, ...], ...]:
    return (
        (
            Button("Post now", Action(ActionVerb.POST_NOW, post_id), style=ButtonStyle.PRIMARY),
            Button("Cancel", Action(ActionVerb.CANCEL, post_id), style=ButtonStyle.DANGER),
        ),
    )


def list_buttons(draft_id: int) -> tuple[Button, ...]:
    """A draft's buttons in the /approvals list: deciding changes only its line."""
    return (
        Button(
            f"Approve #{draft_id}",
            Action(ActionVerb.LIST_APPROVE, draft_id),
            style=ButtonStyle.SUCCESS,
        ),
        Button(f"Edit #{draft_id}", Action(ActionVerb.EDIT, draft_id), style=ButtonStyle.PRIMARY),
        Button(
            f"Reject #{draft_id}",
            Action(ActionVerb.LIST_REJECT, draft_id),
            style=ButtonStyle.DANGER,
        ),
    )


def edit_preview(draft_id: int, text: str) -> Reply:
    """The new text shown back to its writer, with Send / Cancel, before anything goes out."""
    return Reply(
        f"This goes to the follower instead of draft #{draft_id}'s reply:\n{text}",
        (
            (
                Button("Send", Action(ActionVerb.SEND_EDIT, draft_id), style=ButtonStyle.SUCCESS),
                Button("Cancel", Action(ActionVerb.DROP_EDIT, draft_id), style=ButtonStyle.DANGER),
            ),
        ),
    )


def _draft_line(draft: ReplyDraft) -> str:
    return (
        f"#{draft.id}: they wrote {snippet(draft.inbound_text)!r} → "
        f"{snippet(draft.proposed_text)!r}"
    )


def problem_lines(exc: ValidationFailed) -> str:
    """Each problem once: the summary, then the fields' messages that say something more."""
    lines = [exc.message]
    for name, message in exc.fields.items():
        if message not in lines and message != exc.message:
            lines.append(message if message in exc.message else f"{name}: {message}")
    return "\n".join(dict.fromkeys(line for line in lines if line)).strip()
