"""API: the inbox (conversations, their messages and notes, replies, takeover, assignment)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field
from quart import Blueprint
from quart_schema import validate_querystring, validate_request, validate_response

from core.db.conversations import label_list, source_of
from core.db.models import Conversation, ConversationNote, Message, Role
from core.services.conversations import (
    MAX_LABEL,
    MAX_LABELS,
    MAX_NOTE,
    MAX_QUICK_REPLIES,
    MAX_TAKE_OVER_HOURS,
    Thread,
    person_label,
)
from panel.api.auth import api_requires, current_actor
from panel.api.schemas import MAX_LIMIT, PAGE_SIZE
from panel.services import services

blueprint = Blueprint("api_conversations", __name__, url_prefix="/api/v1/conversations")

MAX_ID = 2**31 - 1


class ConversationQuery(BaseModel):
    status: Literal["open", "waiting", "done"] | None = None
    assignee_id: int | None = Field(None, ge=1, le=MAX_ID, description="One teammate's.")
    unassigned: bool = Field(False, description="Only conversations nobody has.")
    label: str | None = Field(None, max_length=MAX_LABEL)
    q: str = Field("", max_length=100, description="Part of a name, username or message.")
    account_id: int | None = Field(None, ge=1, le=MAX_ID)
    cursor: str | None = Field(
        None, max_length=200, description="The `next_cursor` of the previous answer."
    )
    limit: int = Field(PAGE_SIZE, ge=1, le=MAX_LIMIT, description="Items per answer.")


class ConversationOut(BaseModel):
    id: int
    account_id: int
    account_username: str
    igsid: str
    username: str
    name: str
    profile_pic: str
    person: str = Field(description="How Reelay names the person: @username · Name · followers.")
    status: str = Field(description="`open`, `waiting` (on the team) or `done`.")
    assignee_id: int | None
    labels: list[str]
    taken_over_until: datetime | None = Field(
        description="While ahead, a teammate has the conversation: automations stay silent."
    )
    last_message_at: datetime | None
    last_message_text: str
    last_inbound_at: datetime | None


class ConversationList(BaseModel):
    items: list[ConversationOut]
    has_next: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next items.")


class MessageOut(BaseModel):
    id: int
    direction: Literal["in", "out"]
    source: str = Field(
        description="`follower`, `automation`, `inbox`, `chat` or `instagram_app` "
        "(written in the Instagram app)."
    )
    author_id: int | None
    text: str
    media_url: str
    mid: str | None
    rule_id: int | None
    created_at: datetime


class NoteOut(BaseModel):
    id: int
    author_id: int | None
    text: str
    created_at: datetime


class ThreadOut(BaseModel):
    conversation: ConversationOut
    messages: list[MessageOut]
    notes: list[NoteOut]
    reply_until: AwareDatetime | None = Field(
        description="Until when Instagram takes a teammate's reply (24 h after the person's "
        "last message, 7 days with the Meta app's human_agent permission)."
    )


class ReplyBody(BaseModel):
    text: str = Field("", max_length=4000, description="Up to 1000 bytes.")
    image_url: str | None = Field(None, max_length=2048, description="An https:// image.")
    quick_replies: list[str] = Field(
        default_factory=list, max_length=MAX_QUICK_REPLIES, description="Titles, ≤ 20 characters."
    )
    key: str | None = Field(
        None, max_length=80, description="The reply's own key: the same key never sends twice."
    )


class ReplyOut(BaseModel):
    status: str = Field(
        description="`sent`, `pending` (checked before any retry), `skipped`, "
        "`failed` or `duplicate` (this key was used)."
    )
    tagged_human_agent: bool
    action_ids: list[int]


class TakeOverBody(BaseModel):
    hours: float = Field(24, gt=0, le=MAX_TAKE_OVER_HOURS)


class TakeOverOut(BaseModel):
    taken_over_until: datetime


class AssignBody(BaseModel):
    user_id: int | None = Field(None, ge=1, le=MAX_ID, description="None: nobody.")


class StatusBody(BaseModel):
    status: Literal["open", "waiting", "done"]


class LabelsBody(BaseModel):
    labels: list[str] = Field(max_length=MAX_LABELS)


class NoteBody(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_NOTE)


def _out(conversation: Conversation) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        account_id=conversation.account_id,
        account_username=conversation.account.username,
        igsid=conversation.igsid,
        username=conversation.username,
        name=conversation.profile_name or conversation.first_name,
        profile_pic=conversation.profile_pic,
        person=person_label(conversation),
        status=conversation.status.value,
        assignee_id=conversation.assignee_id,
        labels=label_list(conversation),
        taken_over_until=conversation.paused_until,
        last_message_at=conversation.last_message_at,
        last_message_text=conversation.last_message_text,
        last_inbound_at=conversation.last_inbound_at,
    )


def _message(message: Message) -> MessageOut:
    return MessageOut(
        id=message.id,
        direction="in" if message.direction == "in" else "out",
        source=source_of(message).value,
        author_id=message.author_id,
        text=message.text,
        media_url=message.media_url,
        mid=message.mid,
        rule_id=message.rule_id,
        created_at=message.created_at,
    )


def _note(note: ConversationNote) -> NoteOut:
    return NoteOut(id=note.id, author_id=note.author_id, text=note.text, created_at=note.created_at)


def _thread(thread: Thread) -> ThreadOut:
    return ThreadOut(
        conversation=_out(thread.conversation),
        messages=[_message(m) for m in thread.messages],
        notes=[_note(n) for n in thread.notes],
        reply_until=thread.window.human_until,
    )


@blueprint.get("")
@api_requires(Role.VIEWER)
@validate_querystring(ConversationQuery)
@validate_response(ConversationList)
async def list_conversations(query_args: ConversationQuery) -> ConversationList:
    """Conversations with a message, latest first: ``limit`` (50) after ``cursor``."""
    page = await services().conversations.list(
        current_actor(),
        status=query_args.status,
        assignee_id=query_args.assignee_id,
        unassigned=query_args.unassigned,
        label=query_args.label,
        query=query_args.q or None,
        account_id=query_args.account_id,
        cursor=query_args.cursor,
        limit=query_args.limit,
    )
    return ConversationList(
        items=[_out(c) for c in page.conversations],
        has_next=page.next_cursor is not None,
        next_cursor=page.next_cursor,
    )


@blueprint.get("/<int:conversation_id>")
@api_requires(Role.VIEWER)
@validate_response(ThreadOut)
async def get_conversation(conversation_id: int) -> ThreadOut:
    """One conversation with its latest messages (oldest first) and internal notes."""
    return _thread(await services().conversations.thread(current_actor(), conversation_id))


@blueprint.get("/<int:conversation_id>/messages")
@api_requires(Role.VIEWER)
@validate_response(list[MessageOut])
async def list_messages(conversation_id: int) -> list[MessageOut]:
    """The conversation's latest messages, oldest first."""
    thread = await services().conversations.thread(current_actor(), conversation_id)
    return [_message(m) for m in thread.messages]


@blueprint.post("/<int:conversation_id>/messages")
@api_requires(Role.EDITOR)
@validate_request(ReplyBody)
@validate_response(ReplyOut)
async def reply(conversation_id: int, data: ReplyBody) -> ReplyOut:
    """Send a teammate's reply (text, image, quick replies) and take the conversation over.
    Refused (422) outside Instagram's window; sent once per ``key``."""
    sent = await services().conversations.reply(
        current_actor(),
        conversation_id,
        text=data.text,
        image_url=data.image_url,
        quick_replies=data.quick_replies,
        key=data.key,
    )
    return ReplyOut(
        status=sent.status,
        tagged_human_agent=sent.tagged,
        action_ids=[s.action.id for s in sent.submitted if s.action is not None],
    )


@blueprint.post("/<int:conversation_id>/takeover")
@api_requires(Role.EDITOR)
@validate_request(TakeOverBody)
@validate_response(TakeOverOut)
async def take_over(conversation_id: int, data: TakeOverBody) -> TakeOverOut:
    """Silence every automation for the person for ``hours`` (24), or until handed back."""
    until = await services().conversations.take_over(
        current_actor(), conversation_id, hours=data.hours
    )
    return TakeOverOut(taken_over_until=until)


@blueprint.post("/<int:conversation_id>/handback")
@api_requires(Role.EDITOR)
@validate_response(ConversationOut)
async def hand_back(conversation_id: int) -> ConversationOut:
    """Let the automations answer the person again."""
    actor = current_actor()
    await services().conversations.hand_back(actor, conversation_id)
    return _out((await services().conversations.thread(actor, conversation_id)).conversation)


@blueprint.post("/<int:conversation_id>/assign")
@api_requires(Role.EDITOR)
@validate_request(AssignBody)
@validate_response(ConversationOut)
async def assign(conversation_id: int, data: AssignBody) -> ConversationOut:
    """Give the conversation to a member of the workspace (``null``: to nobody); they get
    "assigned to you" in their own chat."""
    actor = current_actor()
    await services().conversations.assign(actor, conversation_id, data.user_id)
    return _out((await services().conversations.thread(actor, conversation_id)).conversation)


@blueprint.post("/<int:conversation_id>/status")
@api_requires(Role.EDITOR)
@validate_request(StatusBody)
@validate_response(ConversationOut)
async def set_status(conversation_id: int, data: StatusBody) -> ConversationOut:
    """Mark the conversation open, waiting (on the team) or done."""
    actor = current_actor()
    await services().conversations.set_status(actor, conversation_id, data.status)
    return _out((await services().conversations.thread(actor, conversation_id)).conversation)


@blueprint.post("/<int:conversation_id>/labels")
@api_requires(Role.EDITOR)
@validate_request(LabelsBody)
@validate_response(ConversationOut)
async def set_labels(conversation_id: int, data: LabelsBody) -> ConversationOut:
    """Replace the conversation's labels."""
    actor = current_actor()
    await services().conversations.set_labels(actor, conversation_id, data.labels)
    return _out((await services().conversations.thread(actor, conversation_id)).conversation)


@blueprint.post("/<int:conversation_id>/notes")
@api_requires(Role.EDITOR)
@validate_request(NoteBody)
@validate_response(NoteOut)
async def add_note(conversation_id: int, data: NoteBody) -> NoteOut:
    """Add an internal note (never sent to the person)."""
    return _note(
        await services().conversations.add_note(current_actor(), conversation_id, data.text)
    )
