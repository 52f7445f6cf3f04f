"""The inbox: a workspace's conversations, read and answered by its team.

Every call takes an ``Actor`` and finds the conversation through the workspace's accounts in
the query itself (another workspace's conversation is not found). Reading needs a viewer;
answering, taking over, notes, labels, status and assignment need an editor.

- **Takeover**: :meth:`Conversations.take_over` silences every automation for the person
  until ``paused_until`` (24 h by default) or :meth:`Conversations.hand_back`; a reply from
  the inbox or from chat takes the conversation over as well (``conversation_log`` keeps
  the state the engine reads, and takes over on an Instagram-app echo).
- **Replies** go through the outbox like every send, each under its own dedupe key, so one
  reply is sent once even when Instagram's answer is lost (the outbox checks before sending
  again). Instagram takes them within 24 h of the person's last message, or up to 7 days
  tagged ``HUMAN_AGENT`` when the Meta app has that permission (``META_HUMAN_AGENT``);
  outside, the reply is refused with the reason and nothing is queued.
- **Assignment** records ``conversation.assigned``: the assignee's own linked chat accounts
  get "assigned to you", event webhooks get the event.
"""

from __future__ import annotations

import base64
import builtins
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from tortoise.expressions import Q, Subquery

from core.db.conversations import ConversationStatus, MessageSource
from core.db.models import (
    AutomationRule,
    Conversation,
    ConversationNote,
    DomainEvent,
    Membership,
    Message,
    ReplyDraft,
    User,
)
from core.domain import alerts
from core.domain.followers import Follower, follower_label
from core.domain.scope import Actor, Role
from core.errors import Forbidden, NotFound, ValidationFailed
from core.ports.clock import Clock
from core.ports.queue import JobQueue
from core.services import audit, chat_topics, conversation_log
from core.services.outbox import (
    DM_WINDOW,
    HUMAN_AGENT,
    HUMAN_AGENT_WINDOW,
    ActionKind,
    Outbox,
    Submitted,
)

logger = logging.getLogger(__name__)

DELIVER_JOB = "deliver_event"  # core.services.notifications.DELIVER_JOB: alerts go out now
MAX_TEXT_BYTES = 1000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_NOTE = 2000
MAX_LABELS = 10
MAX_LABEL = 32
MAX_TAKE_OVER_HOURS = 24 * 7
MAX_PAGE = 200
THREAD_MESSAGES = 500
SOURCES = frozenset({MessageSource.INBOX.value, MessageSource.CHAT.value})


@dataclass(frozen=True)
class Window:
    """When Instagram stops taking a reply: a rule's or anyone's (24 h), a teammate's."""

    automated_until: datetime | None
    human_until: datetime | None  # 7 days with HUMAN_AGENT when allowed, else the 24 h

    def open_for_human(self, now: datetime) -> bool:
        return self.human_until is not None and now <= self.human_until


@dataclass(frozen=True)
class Thread:
    conversation: Conversation
    messages: list[Message]
    notes: list[ConversationNote]
    drafts: list[ReplyDraft]
    window: Window
    authors: dict[int, str]  # user id → name, for messages and notes
    rules: dict[int, str]  # rule id → name, for the automations' messages


@dataclass(frozen=True)
class Page:
    conversations: list[Conversation]
    next_cursor: str | None


@dataclass(frozen=True)
class Sent:
    """A reply queued through the outbox: its actions (one per message: image, then text)."""

    submitted: list[Submitted]
    tagged: bool  # went with the HUMAN_AGENT tag

    @property
    def status(self) -> str:
        statuses = [s.status.value for s in self.submitted if s.status is not None]
        return statuses[-1] if statuses else "duplicate"


def person_label(conversation: Conversation) -> str:
    """ "@username · Name · 12.3k followers" for the conversation's person."""
    return follower_label(
        Follower(
            igsid=conversation.igsid,
            username=conversation.username,
            name=conversation.profile_name or conversation.first_name,
            follower_count=conversation.follower_count,
            verified=conversation.is_verified_user,
        )
    )


def _cursor(conversation: Conversation) -> str:
    at = conversation.last_message_at
    stamp = at.isoformat() if at is not None else ""
    return base64.urlsafe_b64encode(f"{stamp}|{conversation.id}".encode()).decode()


def _after(cursor: str) -> Q:
    try:
        stamp, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        at, last_id = datetime.fromisoformat(stamp), int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("That page of the inbox no longer exists: start again.") from exc
    return Q(last_message_at__lt=at) | Q(last_message_at=at, id__lt=last_id)


def clean_labels(labels: Sequence[str]) -> list[str]:
    """Labels as stored: trimmed, without commas, each once, at most ``MAX_LABELS``."""
    cleaned: list[str] = []
    for raw in labels:
        label = " ".join(str(raw).replace(",", " ").split())
        if not label:
            continue
        if len(label) > MAX_LABEL:
            raise ValidationFailed(
                f"A label has at most {MAX_LABEL} characters: {label[:40]!r} is longer.",
                {"labels": "too long"},
            )
        if label.casefold() not in {c.casefold() for c in cleaned}:
            cleaned.append(label)
    if len(cleaned) > MAX_LABELS:
        raise ValidationFailed(f"A conversation has at most {MAX_LABELS} labels.")
    return cleaned


def reply_messages(
    text: str, image_url: str | None, quick_replies: Sequence[str]
) -> list[dict[str, Any]]:
    """The messages a reply sends (an image first, then the text with its quick replies), or
    why Instagram would refuse them."""
    text = text.strip()
    if not text and not image_url:
        raise ValidationFailed("Write a reply or add an image.", {"text": "empty"})
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise ValidationFailed(
            f"Instagram takes at most {MAX_TEXT_BYTES} bytes in a message.", {"text": "too long"}
        )
    titles = [q.strip() for q in quick_replies if q.strip()]
    if len(titles) > MAX_QUICK_REPLIES:
        raise ValidationFailed(f"At most {MAX_QUICK_REPLIES} quick replies.")
    for title in titles:
        if len(title) > MAX_QUICK_REPLY_TITLE:
            raise ValidationFailed(
                f"A quick reply has at most {MAX_QUICK_REPLY_TITLE} characters: {title!r}.",
                {"quick_replies": "too long"},
            )
    if titles and not text:
        raise ValidationFailed("Quick replies go with a text.", {"text": "empty"})
    messages: list[dict[str, Any]] = []
    if image_url:
        parts = urlsplit(image_url.strip())
        if parts.scheme != "https" or not parts.netloc:
            raise ValidationFailed(
                "Instagram fetches the image itself: give an https:// address.",
                {"image_url": "not https"},
            )
        messages.append({"attachment": {"type": "image", "payload": {"url": image_url.strip()}}})
    if text:
        message: dict[str, Any] = {"text": text}
        if titles:
            message["quick_replies"] = [
                {"content_type": "text", "title": t, "payload": f"inbox:{t}"} for t in titles
            ]
        messages.append(message)
    return messages


class Conversations:
    """A workspace's inbox (``services.conversations``)."""

    def __init__(self, *, outbox: Outbox, clock: Clock, queue: JobQueue, human_agent: bool) -> None:
        self.outbox = outbox
        self.clock = clock
        self.queue = queue
        self.human_agent = human_agent

    # ---------------------------------------------------------------- reading

    async def _get(self, actor: Actor, conversation_id: int, needed: Role) -> Conversation:
        if not actor.allows(needed):
            raise Forbidden(f"Your role cannot do this: it takes an {needed.value} or above.")
        found = (
            await Conversation.filter(id=conversation_id, account__workspace_id=actor.workspace_id)
            .prefetch_related("account")
            .first()
        )
        if found is None:
            raise NotFound(f"No conversation {conversation_id}.")
        return found

    async def list(
        self,
        actor: Actor,
        *,
        status: str | None = None,
        assignee_id: int | None = None,
        label: str | None = None,
        query: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        account_id: int | None = None,
        unassigned: bool = False,
    ) -> Page:
        """The workspace's conversations with a message, latest first (``cursor``: the page's
        ``next_cursor``). ``assignee_id``: one teammate's; ``unassigned``: nobody's."""
        if not actor.allows(Role.VIEWER):
            raise Forbidden("Only members can read the inbox.")
        rows = Conversation.filter(
            account__workspace_id=actor.workspace_id, last_message_at__isnull=False
        )
        if status:
            if status not in {s.value for s in ConversationStatus}:
                raise ValidationFailed(f"Unknown status {status!r}: open, waiting or done.")
            rows = rows.filter(status=status)
        if account_id is not None:
            rows = rows.filter(account_id=account_id)
        if assignee_id is not None:
            rows = rows.filter(assignee_id=assignee_id)
        elif unassigned:
            rows = rows.filter(assignee_id__isnull=True)
        if label:
            rows = rows.filter(labels__icontains=f",{clean_labels([label])[0]},")
        if query and query.strip():
            words = query.strip()[:100]
            said = Message.filter(text__icontains=words).values("conversation_id")
            rows = rows.filter(
                Q(username__icontains=words.lstrip("@"))
                | Q(profile_name__icontains=words)
                | Q(igsid=words)
                | Q(id__in=Subquery(said))
            )
        if cursor:
            rows = rows.filter(_after(cursor))
        size = max(1, min(limit, MAX_PAGE))
        found = (
            await rows.order_by("-last_message_at", "-id")
            .limit(size + 1)
            .prefetch_related("account", "assignee")
        )
        more = len(found) > size
        found = found[:size]
        return Page(found, _cursor(found[-1]) if more and found else None)

    def window(self, conversation: Conversation) -> Window:
        last = conversation.last_inbound_at
        if last is None:
            return Window(None, None)
        human = HUMAN_AGENT_WINDOW if self.human_agent else DM_WINDOW
        return Window(last + DM_WINDOW, last + human)

    async def thread(self, actor: Actor, conversation_id: int) -> Thread:
        """The conversation with its latest messages (oldest first), notes and AI drafts."""
        conversation = await self._get(actor, conversation_id, Role.VIEWER)
        messages = list(
            reversed(
                await Message.filter(conversation_id=conversation.id)
                .order_by("-created_at", "-id")
                .limit(THREAD_MESSAGES)
            )
        )
        notes = await ConversationNote.filter(conversation_id=conversation.id).order_by("id")
        drafts = await ReplyDraft.filter(
            conversation_id=conversation.id, workspace_id=actor.workspace_id
        ).order_by("id")
        user_ids = {m.author_id for m in messages} | {n.author_id for n in notes}
        user_ids |= {conversation.assignee_id, conversation.paused_by_id}
        users = await User.filter(id__in=[i for i in user_ids if i is not None])
        authors = {u.id: u.name or u.email for u in users}
        rule_ids = {m.rule_id for m in messages if m.rule_id is not None}
        named = await AutomationRule.filter(id__in=rule_ids, workspace_id=actor.workspace_id)
        rules = {r.id: r.name for r in named}
        window = self.window(conversation)
        return Thread(conversation, messages, notes, drafts, window, authors, rules)

    async def members(self, actor: Actor) -> builtins.list[tuple[int, str]]:
        """The workspace's people a conversation can be assigned to: (user id, name)."""
        if not actor.allows(Role.VIEWER):
            raise Forbidden("Only members can read the inbox.")
        rows = await Membership.filter(workspace_id=actor.workspace_id).prefetch_related("user")
        return sorted(((m.user_id, m.user.name or m.user.email) for m in rows), key=lambda r: r[1])

    async def labels(self, actor: Actor) -> builtins.list[str]:
        """Every label in use in the workspace, for the filter."""
        if not actor.allows(Role.VIEWER):
            raise Forbidden("Only members can read the inbox.")
        stored = await Conversation.filter(
            account__workspace_id=actor.workspace_id, labels__not=""
        ).values_list("labels", flat=True)
        return sorted({label for row in stored for label in str(row).split(",") if label})

    async def changes(
        self, actor: Actor, after: int, *, limit: int = 100
    ) -> builtins.list[tuple[int, int]]:
        """What changed in the workspace's conversations since event ``after``: (event id,
        conversation id), oldest first (the live inbox follows it)."""
        if not actor.allows(Role.VIEWER):
            raise Forbidden("Only members can read the inbox.")
        rows = (
            await DomainEvent.filter(
                workspace_id=actor.workspace_id, id__gt=after, kind__in=alerts.CONVERSATION_KINDS
            )
            .order_by("id")
            .limit(limit)
        )
        return [(e.id, int(e.payload.get("conversation_id") or 0)) for e in rows]

    async def last_change(self, actor: Actor) -> int:
        """The id of the workspace's latest conversation event (0 when none): a live view
        starts after it."""
        if not actor.allows(Role.VIEWER):
            raise Forbidden("Only members can read the inbox.")
        latest = (
            await DomainEvent.filter(
                workspace_id=actor.workspace_id, kind__in=alerts.CONVERSATION_KINDS
            )
            .order_by("-id")
            .first()
        )
        return latest.id if latest is not None else 0

    # ---------------------------------------------------------------- takeover

    async def take_over(self, actor: Actor, conversation_id: int, *, hours: float = 24) -> datetime:
        """Silence every automation for the person for ``hours`` (or until handed back);
        returns until when."""
        conversation = await self._get(actor, conversation_id, Role.EDITOR)
        if not 0 < hours <= MAX_TAKE_OVER_HOURS:
            raise ValidationFailed(f"Take over for 1 hour up to {MAX_TAKE_OVER_HOURS} hours.")
        until = self.clock.now() + timedelta(hours=hours)
        await self._pause(actor, conversation, until)
        return until

    async def _pause(self, actor: Actor, conversation: Conversation, until: datetime) -> None:
        was = conversation_log.paused(conversation, self.clock.now())
        await Conversation.filter(id=conversation.id).update(
            paused_until=until, paused_by_id=actor.user_id
        )
        conversation.paused_until, conversation.paused_by_id = until, actor.user_id
        if not was:
            await self._announce(
                actor, conversation, alerts.CONVERSATION_TAKEN_OVER, until=until.isoformat()
            )
            await audit.record(
                "conversation.take_over",
                actor=actor.label,
                workspace_id=actor.workspace_id,
                target_type="conversation",
                target_id=conversation.id,
                account_id=conversation.account_id,
                until=until.isoformat(),
            )

    async def hand_back(self, actor: Actor, conversation_id: int) -> None:
        """Let the automations answer the person again."""
        conversation = await self._get(actor, conversation_id, Role.EDITOR)
        await Conversation.filter(id=conversation.id).update(paused_until=None, paused_by_id=None)
        if conversation_log.paused(conversation, self.clock.now()):
            await self._announce(actor, conversation, alerts.CONVERSATION_HANDED_BACK)
            await audit.record(
                "conversation.hand_back",
                actor=actor.label,
                workspace_id=actor.workspace_id,
                target_type="conversation",
                target_id=conversation.id,
                account_id=conversation.account_id,
            )

    # ---------------------------------------------------------------- triage

    async def set_status(self, actor: Actor, conversation_id: int, status: str) -> None:
        conversation = await self._get(actor, conversation_id, Role.EDITOR)
        if status not in {s.value for s in ConversationStatus}:
            raise ValidationFailed(f"Unknown status {status!r}: open, waiting or done.")
        await Conversation.filter(id=conversation.id).update(status=ConversationStatus(status))

    async def set_labels(
        self, actor: Actor, conversation_id: int, labels: Sequence[str]
    ) -> builtins.list[str]:
        conversation = await self._get(actor, conversation_id, Role.EDITOR)
        cleaned = clean_labels(labels)
        stored = f",{','.join(cleaned)}," if cleaned else ""
        if len(stored) > 512:
            raise ValidationFailed("These labels are too long together.")
        await Conversation.filter(id=conversation.id).update(labels=stored)
        return cleaned

    async def add_note(self, actor: Actor, conversation_id: int, text: str) -> ConversationNote:
        """An internal note (never sent to the person)."""
        conversation = await self._get(actor, conversation_id, Role.EDITOR)
        text = text.strip()
        if not text:
            raise ValidationFailed("Write the note first.", {"text": "empty"})
        if len(text) > MAX_NOTE:
            raise ValidationFailed(f"A note has at most {MAX_NOTE} characters.")
        return await ConversationNote.create(
            conversation_id=conversation.id, author_id=actor.user_id, text=text
        )

    async def assign(self, actor: Actor, conversation_id: int, user_id: int | None) -> None:
        """Give the conversation to a teammate (None: to nobody); they hear of it in their
        own chat."""
        conversation = await self._get(actor, conversation_id, Role.EDITOR)
        assignee = None
        if user_id is not None:
            member = (
                await Membership.filter(workspace_id=actor.workspace_id, user_id=user_id)
                .prefetch_related("user")
                .first()
            )
            if member is None:
                raise ValidationFailed("Assign the conversation to a member of this workspace.")
            assignee = member.user
        if conversation.assignee_id == user_id:
            return
        await Conversation.filter(id=conversation.id).update(assignee_id=user_id)
        await audit.record(
            "conversation.assign",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            target_type="conversation",
            target_id=conversation.id,
            account_id=conversation.account_id,
            assignee_id=user_id,
        )
        if assignee is None:
            return
        event = await self._announce(
            actor,
            conversation,
            alerts.CONVERSATION_ASSIGNED,
            assignee_id=assignee.id,
            assignee=assignee.name or assignee.email,
            assigned_by=actor.label,
            last_message=conversation.last_message_text[:200],
        )
        await self.queue.enqueue(DELIVER_JOB, event.id, job_id=f"notify:{event.id}")

    async def _announce(
        self, actor: Actor, conversation: Conversation, kind: str, **facts: Any
    ) -> DomainEvent:
        return await DomainEvent.create(
            workspace_id=actor.workspace_id,
            kind=kind,
            payload={
                "conversation_id": conversation.id,
                "account_id": conversation.account_id,
                "username": conversation.account.username,
                "person": person_label(conversation),
                "by": actor.label,
                "by_user_id": actor.user_id,
                **facts,
            },
        )

    # ---------------------------------------------------------------- replying

    async def reply(
        self,
        actor: Actor,
        conversation_id: int,
        *,
        text: str,
        image_url: str | None = None,
        quick_replies: Sequence[str] = (),
        source: str = "inbox",
        key: str | None = None,
    ) -> Sent:
        """Send a teammate's reply through the outbox and take the conversation over.

        ``source``: ``inbox`` (the panel, the API) or ``chat``. ``key``: the reply's own
        idempotency key (a form's token): the same key sends nothing twice.
        """
        if source not in SOURCES:
            raise ValidationFailed(f"Unknown reply source {source!r}.")
        conversation = await self._get(actor, conversation_id, Role.EDITOR)
        messages = reply_messages(text, image_url, quick_replies)
        now = self.clock.now()
        window = self.window(conversation)
        if not window.open_for_human(now):
            raise ValidationFailed(self._closed(conversation), {"text": "window closed"})
        tagged = window.automated_until is not None and now > window.automated_until
        until = now + conversation_log.TAKE_OVER_FOR
        await self._pause(actor, conversation, max(until, conversation.paused_until or until))
        await Conversation.filter(id=conversation.id).update(status=ConversationStatus.OPEN)
        reply_key = (key or secrets.token_urlsafe(12))[:80]
        submitted = []
        for n, message in enumerate(messages):
            submitted.append(
                await self.outbox.submit(
                    account=conversation.account,
                    kind=ActionKind.DM,
                    target=conversation.igsid,
                    message=message,
                    key=f"inbox:{conversation.id}:{reply_key}:{n}",
                    conversation_id=conversation.id,
                    conversation=conversation,
                    extra={
                        "source": source,
                        "author_id": actor.user_id,
                        **({"tag": HUMAN_AGENT} if tagged else {}),
                    },
                )
            )
        logger.info(
            "conversation %s: %s replied from %s (%d messages%s)",
            conversation.id,
            actor.label,
            source,
            len(messages),
            ", HUMAN_AGENT" if tagged else "",
        )
        await self._mirror_now()
        return Sent(submitted, tagged)

    async def _mirror_now(self) -> None:
        """The reply shows in the team chat's topic at once (the notification sweep would
        post it within seconds, and still does when this fails)."""
        try:
            await chat_topics.nudge(self.queue, self.clock.now())
        except Exception:
            logger.exception("queueing the chat mirror's posts failed; the sweep posts them")

    def _closed(self, conversation: Conversation) -> str:
        last = conversation.last_inbound_at
        if last is None:
            return "Instagram lets the account write only after the person has written to it."
        if self.human_agent:
            return (
                "Instagram takes a teammate's reply up to 7 days after the person's last "
                f"message ({last.isoformat(timespec='minutes')} UTC): wait until they write again."
            )
        return (
            "Instagram takes replies within 24 hours of the person's last message "
            f"({last.isoformat(timespec='minutes')} UTC). With the Meta app's human_agent "
            "permission (META_HUMAN_AGENT), a teammate may answer up to 7 days."
        )
