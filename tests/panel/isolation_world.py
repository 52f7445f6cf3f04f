"""Two workspaces with one of everything: A acts, B must stay out of its reach.

Every text of B carries ``SECRET``; ``fill_ids`` puts ids of A or B into a request and
``snapshot`` records every row a refused request must leave alone.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from PIL import Image

from core.db.models import (
    ApiToken,
    AutomationRule,
    ChatIdentity,
    ChatLink,
    Conversation,
    ConversationNote,
    EventStatus,
    EventWebhook,
    EventWebhookDelivery,
    InstagramAccount,
    Invite,
    Lead,
    LoginKind,
    MediaAsset,
    MediaInsight,
    Membership,
    Message,
    Platform,
    Post,
    PostMedia,
    PublishJob,
    ReplyDraft,
    Role,
    User,
    WebhookEvent,
    Workspace,
)
from core.domain.posts import Kind, Status
from core.domain.scope import Actor
from core.services import media, rule_editor, team, users
from core.wiring import assemble_services
from panel.rule_form import read_form
from tests.actors import acting
from tests.panel.helpers import token_for

# Every text of workspace B contains this word; none of A's does.
SECRET = "bravo"


@dataclass
class Side:
    workspace: Workspace
    owner: User
    membership: Membership
    member: Membership
    account: InstagramAccount
    rule: AutomationRule
    post: Post
    asset: MediaAsset
    lead: Lead
    draft: ReplyDraft
    event: WebhookEvent
    chat: ChatLink
    token: ApiToken
    secret: str
    invite: Invite
    ig_media: str
    hook: EventWebhook
    hook_delivery: EventWebhookDelivery
    comment: str
    conversation: Conversation

    def ids(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace.id,
            "account": self.account.id,
            "rule": self.rule.id,
            "post": self.post.id,
            "asset": self.asset.id,
            "media_key": self.asset.storage_key,
            "lead": self.lead.id,
            "draft": self.draft.id,
            "event_key": self.event.dedupe_key,
            "chat": self.chat.id,
            "token": self.token.id,
            "member": self.member.id,
            "invite": self.invite.id,
            "ig_media": self.ig_media,
            "hook": self.hook.id,
            "hook_delivery": self.hook_delivery.id,
            "comment": self.comment,
            "conversation": self.conversation.id,
        }


def rule_form(account: Any, name: str = "Alpha price rule") -> dict[str, str | list[str]]:
    return {
        "name": name,
        "account_id": str(account),
        "trigger": "comment",
        "keywords": "price",
        "match_mode": "whole_word",
        "priority": "0",
        "cooldown_minutes": "0",
        "delay_minutes": "0",
        "active": "on",
        "comment_reply": "Sent you a DM!",
        "dm_type": "text",
        "dm_variation": "Here is the price list.",
    }


async def make_side(container: Any, name: str, ig_id: str, colour: tuple[int, int, int]) -> Side:
    """A workspace with one of everything; B's texts all carry ``SECRET``."""
    word = name.lower()
    owner, workspace = await users.create_owner(f"owner@{word}.example", "long enough pw")
    workspace.name = f"{name} Studio"
    await workspace.save()
    membership = await Membership.get(user=owner, workspace=workspace)
    member_user = await users.create_user(f"viewer@{word}.example", "long enough pw")
    member = await Membership.create(workspace=workspace, user=member_user, role=Role.VIEWER)
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id=ig_id,
        username=f"{word}_shop",
        login_kind=LoginKind.SANDBOX,
        token_encrypted=container.secrets.encrypt("token"),
    )
    definition, _ = read_form(
        {
            k: [v] if isinstance(v, str) else v
            for k, v in rule_form(account.id, f"{name} rule").items()
        }
    )
    rule = await rule_editor.save_rule(
        await acting(membership), definition, redis=container.redis, secrets=container.secrets
    )
    asset = await media.upload_bytes(
        Actor.system(workspace.id),
        assemble_services(container).storage,
        jpeg(colour),
        f"{word}-photo.jpg",
    )
    now = datetime.now(UTC)
    ig_media = f"179{ig_id[-6:]}0001"
    post = await Post.create(
        workspace=workspace,
        account=account,
        kind=Kind.IMAGE,
        status=Status.DRAFT,
        caption=f"{name} caption",
    )
    await PostMedia.create(post=post, asset=asset, position=0)
    await Post.create(
        workspace=workspace,
        account=account,
        kind=Kind.IMAGE,
        status=Status.PUBLISHED,
        caption=f"{name} published caption",
        ig_media_id=ig_media,
        published_at=now - timedelta(days=2),
    )
    await MediaInsight.create(
        account=account,
        ig_media_id=ig_media,
        date=(now - timedelta(days=1)).date(),
        media_type="IMAGE",
        permalink=f"https://instagram.example/p/{word}",
        metrics={"views": 10, "reach": 5, "info": {"caption": f"{name} insight caption"}},
    )
    lead = await Lead.create(
        workspace=workspace,
        account=account,
        rule=rule,
        igsid=f"{ig_id}9",
        username=f"{word}_fan",
        email=f"fan@{word}.example",
    )
    draft = await ReplyDraft.create(
        workspace=workspace,
        account=account,
        rule=rule,
        inbound_text=f"{name} question",
        proposed_text=f"{name} proposed answer",
        target={"igsid": f"{ig_id}9"},
        expires_at=now + timedelta(days=1),
    )
    event = await WebhookEvent.create(
        dedupe_key=f"{ig_id}:message:m.{ig_id[-4:]}",
        account_ig_id=ig_id,
        kind="message",
        payload={},
        status=EventStatus.DONE,
        error=f"lead flow completed for fan@{word}.example",
        rule_name=f"{name} rule",
    )
    comment = f"180{ig_id[-6:]}0001"
    await WebhookEvent.create(
        dedupe_key=f"{ig_id}:comment:{comment}",
        account_ig_id=ig_id,
        kind="comment",
        payload={},
        status=EventStatus.IGNORED,
        event={
            "kind": "comment",
            "comment_id": comment,
            "media_id": ig_media,
            "text": f"{word} comment",
            "sender_id": f"{ig_id}9",
            "sender_username": f"{word}_fan",
        },
    )
    chat = await ChatLink.create(
        workspace=workspace,
        platform=Platform.TELEGRAM,
        chat_id=f"-100{ig_id[-3:]}",
        title=f"{name} chat",
    )
    token, secret = await token_for(membership, Role.OWNER)
    made = await team.create_invite(await acting(membership), Role.VIEWER, now)
    hook = await EventWebhook.create(
        workspace=workspace,
        url=f"https://{word}.example/hooks",
        events=["post.failed"],
        description=f"{name} hook",
        secret_encrypted=container.secrets.encrypt(f"whsec_{word}"),
    )
    hook_delivery = await EventWebhookDelivery.create(
        webhook=hook, kind="post.failed", payload={"id": f"evt_{word}", "data": {}}
    )
    conversation = await Conversation.create(
        account=account,
        igsid=f"{ig_id}9",
        username=f"{word}_fan",
        last_inbound_at=now,
        last_message_at=now,
        last_message_text=f"{name} hello",
        labels=f",{word},",
    )
    await Message.create(
        conversation=conversation, direction="in", source="follower", text=f"{name} hello"
    )
    await ConversationNote.create(conversation=conversation, text=f"{name} internal note")
    return Side(
        workspace,
        owner,
        membership,
        member,
        account,
        rule,
        post,
        asset,
        lead,
        draft,
        event,
        chat,
        token,
        secret,
        made.invite,
        ig_media,
        hook,
        hook_delivery,
        comment,
        conversation,
    )


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1080, 1080), colour).save(out, "JPEG")
    return out.getvalue()


@dataclass
class Two:
    a: Side
    b: Side


async def two_workspaces(container: Any) -> Two:
    return Two(
        a=await make_side(container, "Alpha", "17841400000000101", (200, 40, 120)),
        b=await make_side(container, "Bravo", "17841400000000202", (40, 200, 120)),
    )


_PLACEHOLDER = re.compile(r"\{([ab])\.(\w+)\}")


def fill_ids(value: Any, sides: dict[str, dict[str, Any]]) -> Any:
    """``value`` with ``{a.x}``/``{b.x}`` replaced (a whole placeholder keeps its type)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and isinstance(sides[whole[1]][whole[2]], int):
            return sides[whole[1]][whole[2]]
        return _PLACEHOLDER.sub(lambda m: str(sides[m[1]][m[2]]), value)
    if isinstance(value, list):
        return [fill_ids(v, sides) for v in value]
    if isinstance(value, dict):
        return {k: fill_ids(v, sides) for k, v in value.items()}
    return value


TABLES = (
    Workspace, Membership, Invite, ChatLink, ChatIdentity, InstagramAccount, MediaAsset, Post,
    PostMedia, PublishJob, AutomationRule, Lead, ReplyDraft, WebhookEvent, EventWebhook,
    EventWebhookDelivery, Conversation, Message, ConversationNote,
)  # fmt: skip


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row that a refused request must leave alone (tokens without their last use)."""
    found = {
        model.__name__: await model.all().order_by(model._meta.pk_attr).values() for model in TABLES
    }
    found["ApiToken"] = (
        await ApiToken.all()
        .order_by("id")
        .values("id", "workspace_id", "name", "role", "revoked_at")
    )
    return found
