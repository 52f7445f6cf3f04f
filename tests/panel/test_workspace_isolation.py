"""Workspace isolation: A's owner (signed in, or with A's API token) never reaches B's objects.

Every row of ``ATTEMPTS`` is one request made as workspace A with identifiers of workspace
B: in the address, the query, the form or the JSON body, or inside an object being created.
Each must be refused (404 or 403, or 422 where the identifier names a part of a new object),
change nothing in the database, and show nothing of B. Rows with ``control`` are run again
with A's own identifiers, which must be accepted: the refusal is then about ownership, not
about a malformed request. Add a row for every new route that takes an identifier.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image

from core.db.models import (
    ApiToken,
    AutomationRule,
    ChatIdentity,
    ChatLink,
    EventStatus,
    InstagramAccount,
    Invite,
    Lead,
    LoginKind,
    MediaAsset,
    MediaInsight,
    Membership,
    Platform,
    Post,
    PostKind,
    PostMedia,
    PostStatus,
    PublishJob,
    ReplyDraft,
    Role,
    User,
    WebhookEvent,
    Workspace,
)
from core.services import chat_links, media, rule_editor, team, users
from core.services.chatops import ChatOps, ChatUser, IncomingFile
from core.services.smart_replies import OutgoingReply, SmartReplies
from tests.panel.helpers import CSRF, sign_in_as, token_for

# Every text of workspace B contains this word; none of A's does.
SECRET = "bravo"

REFUSED = frozenset({403, 404})
# An identifier of another workspace inside a new or changed object: refused as invalid.
INVALID = REFUSED | {422}
# A flash message and a redirect (the team and token pages answer refusals this way).
FLASHED = REFUSED | {302, 303}
# A filter: the page is served, narrowed to nothing of B.
FILTERED = frozenset({200})


@dataclass(frozen=True)
class Attempt:
    """One request as workspace A; ``{b.x}`` / ``{a.x}`` are filled with ids of B or A."""

    name: str
    method: str
    path: str
    form: dict[str, str | list[str]] | None = None
    json: dict[str, Any] | None = None
    api: bool = False
    answers: frozenset[int] = REFUSED
    control: bool = False  # with A's identifiers the same request is accepted
    a_side: dict[str, str] = field(default_factory=dict)  # names the control swaps to A


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


def rule_body(account: Any) -> dict[str, Any]:
    return {
        "name": "Alpha price rule",
        "account_id": account,
        "trigger": "comment",
        "keywords": ["price"],
        "comment_replies": ["Sent you a DM!"],
        "dm_type": "text",
        "dm_variations": ["Here is the price list."],
    }


LATER = "2030-06-01T10:00:00+00:00"

# Pages and lists without identifiers: A's own, nothing of B.
INDEXES = [
    "/", "/accounts", "/analytics/", "/approvals", "/posts/queue", "/leads", "/leads/export.csv",
    "/library", "/logs/audit", "/logs/events", "/rules", "/team", "/settings/api-tokens",
    "/setup", "/sandbox", "/compose", "/account",
]  # fmt: skip
API_INDEXES = ["/api/v1/posts", "/api/v1/rules", "/api/v1/leads", "/api/v1/drafts"]

ATTEMPTS: list[Attempt] = [
    *(Attempt(f"list {path}", "GET", path, answers=FILTERED) for path in INDEXES),
    *(
        Attempt(f"API: list {path}", "GET", path, api=True, answers=FILTERED)
        for path in API_INDEXES
    ),
    # accounts
    Attempt("pace of B's account", "POST", "/accounts/{b.account}/pace", {"dm_pace_per_hour": "5"}),
    Attempt("disconnect B's account", "POST", "/accounts/{b.account}/disconnect", {}),
    Attempt("subscribe B's account", "POST", "/accounts/{b.account}/webhooks", {}),
    # analytics
    Attempt("analytics of B's account", "GET", "/analytics/?account={b.account}"),
    Attempt("analytics of B's post", "GET", "/analytics/posts/{b.ig_media}"),
    Attempt("account CSV of B", "GET", "/analytics/export/account.csv?account={b.account}"),
    Attempt("posts CSV of B", "GET", "/analytics/export/posts.csv?account={b.account}"),
    # approvals
    Attempt("state of B's draft", "GET", "/approvals/{b.draft}/state"),
    Attempt("approve B's draft", "POST", "/approvals/{b.draft}/approve", {}),
    Attempt("edit B's draft", "POST", "/approvals/{b.draft}/edit", {"text": "Hello there"}),
    Attempt("reject B's draft", "POST", "/approvals/{b.draft}/reject", {}),
    Attempt("new drafts after 0", "GET", "/approvals/new?after=0", answers=FILTERED),
    # posts (calendar, queue, detail)
    Attempt("B's post", "GET", "/posts/{b.post}"),
    Attempt("progress of B's post", "GET", "/posts/{b.post}/progress"),
    Attempt("retry B's post", "POST", "/posts/{b.post}/retry", {}),
    Attempt("publish B's post now", "POST", "/posts/{b.post}/publish-now", {}),
    Attempt("cancel B's post", "POST", "/posts/{b.post}/cancel", {}),
    Attempt(
        "reschedule B's post",
        "POST",
        "/posts/{b.post}/reschedule",
        json={"start": "2030-06-01T10:00"},
    ),
    Attempt("queue of B's account", "GET", "/posts/queue?account_id={b.account}", answers=FILTERED),
    Attempt(
        "calendar of B's account",
        "GET",
        "/posts/events?account_id={b.account}&start=2000-01-01T00:00:00Z&end=2100-01-01T00:00:00Z",
        answers=FILTERED,
    ),
    # composer
    Attempt(
        "compose for B's account",
        "POST",
        "/compose",
        {
            "account_ids": "{b.account}",
            "kind": "image",
            "media_ids": "{a.asset}",
            "action": "draft",
        },
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "compose with B's media",
        "POST",
        "/compose",
        {
            "account_ids": "{a.account}",
            "kind": "image",
            "media_ids": "{b.asset}",
            "action": "draft",
        },
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "compose a reel with B's cover",
        "POST",
        "/compose",
        {
            "account_ids": "{a.account}",
            "kind": "reel",
            "media_ids": "{b.asset}",
            "cover_id": "{b.asset}",
            "action": "draft",
        },
        answers=INVALID,
    ),
    Attempt(
        "composer preselecting B's account",
        "GET",
        "/compose?account_id={b.account}",
        answers=FILTERED,
    ),
    # leads
    Attempt("B's lead", "GET", "/leads/{b.lead}"),
    Attempt("resend B's lead", "POST", "/leads/{b.lead}/resend", {}),
    Attempt("leads of B's account", "GET", "/leads?account_id={b.account}", answers=FILTERED),
    Attempt("leads of B's rule", "GET", "/leads?rule_id={b.rule}", answers=FILTERED),
    Attempt(
        "CSV of B's account", "GET", "/leads/export.csv?account_id={b.account}", answers=FILTERED
    ),
    Attempt("CSV of B's rule", "GET", "/leads/export.csv?rule_id={b.rule}", answers=FILTERED),
    # library
    Attempt("delete B's media", "POST", "/library/{b.asset}/delete", {}),
    # logs
    Attempt("audit of B's account", "GET", "/logs/audit?account={b.account}", answers=FILTERED),
    Attempt("events of B's account", "GET", "/logs/events?account={b.account}", answers=FILTERED),
    # rules
    Attempt("rules of B's account", "GET", "/rules?account_id={b.account}", answers=FILTERED),
    Attempt("editor of B's rule", "GET", "/rules/{b.rule}"),
    Attempt(
        "new rule page for B's account",
        "GET",
        "/rules/new?account_id={b.account}",
        answers=FILTERED,
    ),
    Attempt(
        "create a rule for B's account",
        "POST",
        "/rules/new",
        rule_form("{b.account}"),
        answers=INVALID,
        control=True,
    ),
    Attempt("replace B's rule", "POST", "/rules/{b.rule}", rule_form("{b.account}")),
    Attempt(
        "move A's rule to B's account",
        "POST",
        "/rules/{a.rule}",
        rule_form("{b.account}"),
        answers=INVALID,
        control=True,
    ),
    Attempt("switch B's rule off", "POST", "/rules/{b.rule}/active", {"active": "0"}),
    Attempt("delete B's rule", "POST", "/rules/{b.rule}/delete", {}),
    Attempt(
        "test B's rule", "POST", "/rules/{b.rule}/test", {"kind": "comment", "sample": "price"}
    ),
    Attempt("test result of B's rule", "GET", "/rules/{b.rule}/test/result?key={b.event_key}"),
    Attempt(
        "B's event in A's test result",
        "GET",
        "/rules/{a.rule}/test/result?key={b.event_key}",
        answers=FILTERED,
    ),
    Attempt(
        "recent posts of B's account",
        "GET",
        "/rules/posts?account_id={b.account}",
        answers=FILTERED,
    ),
    # sandbox
    Attempt("sandbox of B's account", "GET", "/sandbox?account_id={b.account}", answers=FILTERED),
    Attempt("sandbox chat of B's account", "GET", "/sandbox/conversation?account_id={b.account}"),
    Attempt(
        "sandbox comment on B's account",
        "POST",
        "/sandbox/comment",
        {"account_id": "{b.account}", "username": "tester", "text": "price", "media_id": "1"},
    ),
    Attempt(
        "sandbox DM to B's account",
        "POST",
        "/sandbox/dm",
        {"account_id": "{b.account}", "username": "tester", "text": "price"},
    ),
    Attempt(
        "sandbox tap on B's account",
        "POST",
        "/sandbox/tap",
        {"account_id": "{b.account}", "username": "tester", "kind": "postback", "payload": "x"},
    ),
    # setup, team, tokens, workspace switch
    Attempt("unlink B's chat", "POST", "/setup/chats/{b.chat}/unlink", {}),
    Attempt(
        "revoke B's invitation", "POST", "/team/invites/{b.invite}/revoke", {}, answers=FLASHED
    ),
    Attempt(
        "change a role in B",
        "POST",
        "/team/members/{b.member}/role",
        {"role": "admin"},
        answers=FLASHED,
    ),
    Attempt("remove a member of B", "POST", "/team/members/{b.member}/remove", {}, answers=FLASHED),
    Attempt(
        "revoke B's API token", "POST", "/settings/api-tokens/{b.token}/revoke", {}, answers=FLASHED
    ),
    Attempt(
        "switch into B",
        "POST",
        "/account/workspace",
        {"workspace_id": "{b.workspace}"},
        answers=FLASHED,
    ),
    # JSON API with A's token
    Attempt("API: B's post", "GET", "/api/v1/posts/{b.post}", api=True),
    Attempt(
        "API: edit B's post",
        "PUT",
        "/api/v1/posts/{b.post}",
        json={"kind": "image", "media_ids": ["{a.asset}"], "caption": "x"},
        api=True,
    ),
    Attempt(
        "API: schedule B's post",
        "POST",
        "/api/v1/posts/{b.post}/schedule",
        json={"scheduled_at": LATER},
        api=True,
    ),
    Attempt("API: cancel B's post", "POST", "/api/v1/posts/{b.post}/cancel", json={}, api=True),
    Attempt("API: delete B's post", "DELETE", "/api/v1/posts/{b.post}", api=True),
    Attempt(
        "API: post for B's account",
        "POST",
        "/api/v1/posts",
        json={"account_id": "{b.account}", "kind": "image", "media_ids": ["{a.asset}"]},
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: post with B's media",
        "POST",
        "/api/v1/posts",
        json={"account_id": "{a.account}", "kind": "image", "media_ids": ["{b.asset}"]},
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: A's post edited to B's media",
        "PUT",
        "/api/v1/posts/{a.post}",
        json={"kind": "image", "media_ids": ["{b.asset}"], "caption": "x"},
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: posts of B's account",
        "GET",
        "/api/v1/posts?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
    Attempt("API: B's rule", "GET", "/api/v1/rules/{b.rule}", api=True),
    Attempt(
        "API: replace B's rule",
        "PUT",
        "/api/v1/rules/{b.rule}",
        json=rule_body("{b.account}"),
        api=True,
    ),
    Attempt("API: activate B's rule", "POST", "/api/v1/rules/{b.rule}/activate", json={}, api=True),
    Attempt(
        "API: deactivate B's rule", "POST", "/api/v1/rules/{b.rule}/deactivate", json={}, api=True
    ),
    Attempt("API: delete B's rule", "DELETE", "/api/v1/rules/{b.rule}", api=True),
    Attempt(
        "API: rule for B's account",
        "POST",
        "/api/v1/rules",
        json=rule_body("{b.account}"),
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: A's rule moved to B's account",
        "PUT",
        "/api/v1/rules/{a.rule}",
        json=rule_body("{b.account}"),
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: rules of B's account",
        "GET",
        "/api/v1/rules?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
    Attempt(
        "API: approve B's draft", "POST", "/api/v1/drafts/{b.draft}/approve", json={}, api=True
    ),
    Attempt(
        "API: edit B's draft",
        "POST",
        "/api/v1/drafts/{b.draft}/edit",
        json={"text": "Hi"},
        api=True,
    ),
    Attempt("API: reject B's draft", "POST", "/api/v1/drafts/{b.draft}/reject", json={}, api=True),
    Attempt("API: drafts", "GET", "/api/v1/drafts", api=True, answers=FILTERED),
    Attempt(
        "API: leads of B's account",
        "GET",
        "/api/v1/leads?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
    Attempt(
        "API: leads of B's rule",
        "GET",
        "/api/v1/leads?rule_id={b.rule}",
        api=True,
        answers=FILTERED,
    ),
    Attempt(
        "API: CSV of B's account",
        "GET",
        "/api/v1/leads/export?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
]


async def _side(container: Any, name: str, ig_id: str, colour: tuple[int, int, int]) -> Side:
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
    rule = await rule_editor.save_rule(
        workspace.id,
        {
            k: [v] if isinstance(v, str) else v
            for k, v in rule_form(account.id, f"{name} rule").items()
        },
        actor=owner.email,
    )
    asset = await media.upload_bytes(
        media.storage_of(container),
        workspace_id=workspace.id,
        data=_image(colour),
        filename=f"{word}-photo.jpg",
    )
    now = datetime.now(UTC)
    ig_media = f"179{ig_id[-6:]}0001"
    post = await Post.create(
        workspace=workspace,
        account=account,
        kind=PostKind.IMAGE,
        status=PostStatus.DRAFT,
        caption=f"{name} caption",
    )
    await PostMedia.create(post=post, asset=asset, position=0)
    await Post.create(
        workspace=workspace,
        account=account,
        kind=PostKind.IMAGE,
        status=PostStatus.PUBLISHED,
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
    chat = await ChatLink.create(
        workspace=workspace,
        platform=Platform.TELEGRAM,
        chat_id=f"-100{ig_id[-3:]}",
        title=f"{name} chat",
    )
    token, secret = await token_for(membership, Role.OWNER)
    made = await team.create_invite(membership, Role.VIEWER, now)
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
    )


def _image(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1080, 1080), colour).save(out, "JPEG")
    return out.getvalue()


@dataclass
class Two:
    a: Side
    b: Side


@pytest.fixture
async def two(sqlite_db: str, container: Any) -> Two:
    return Two(
        a=await _side(container, "Alpha", "17841400000000101", (200, 40, 120)),
        b=await _side(container, "Bravo", "17841400000000202", (40, 200, 120)),
    )


_PLACEHOLDER = re.compile(r"\{([ab])\.(\w+)\}")


def _fill(value: Any, sides: dict[str, dict[str, Any]]) -> Any:
    """``value`` with ``{a.x}``/``{b.x}`` replaced (a whole placeholder keeps its type)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and isinstance(sides[whole[1]][whole[2]], int):
            return sides[whole[1]][whole[2]]
        return _PLACEHOLDER.sub(lambda m: str(sides[m[1]][m[2]]), value)
    if isinstance(value, list):
        return [_fill(v, sides) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, sides) for k, v in value.items()}
    return value


def _as_text(value: Any) -> Any:
    """Form values are strings."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


TABLES = (
    Workspace, Membership, Invite, ChatLink, ChatIdentity, InstagramAccount, MediaAsset, Post,
    PostMedia, PublishJob, AutomationRule, Lead, ReplyDraft, WebhookEvent,
)  # fmt: skip


async def _snapshot() -> dict[str, list[dict[str, Any]]]:
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


async def _send(client: Any, attempt: Attempt, two: Two, side: str) -> tuple[int, str]:
    """Make ``attempt`` as A; ``side`` "a" swaps every B identifier for A's (the control)."""
    sides = {"a": two.a.ids(), "b": two.a.ids() if side == "a" else two.b.ids()}
    path = _fill(attempt.path, sides)
    headers = {"X-CSRF-Token": CSRF}
    kwargs: dict[str, Any] = {}
    if attempt.api:
        headers["Authorization"] = f"Bearer {two.a.secret}"
    if attempt.json is not None:
        kwargs["json"] = _fill(attempt.json, sides)
    elif attempt.form is not None:
        form = {k: _as_text(_fill(v, sides)) for k, v in attempt.form.items()}
        kwargs["form"] = {"csrf_token": CSRF, **form}
    response = await client.open(path, method=attempt.method, headers=headers, **kwargs)
    body = await response.get_data(as_text=True)
    if response.status_code in (302, 303) and not attempt.api:
        # What the user sees next: the page with the flashed message.
        after = await client.get(response.headers["Location"])
        body += await after.get_data(as_text=True)
    return response.status_code, body


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a.name for a in ATTEMPTS])
async def test_another_workspaces_objects_are_out_of_reach(
    app: Any, two: Two, attempt: Attempt
) -> None:
    client = app.test_client()
    await sign_in_as(client, two.a.owner, two.a.workspace.id)
    before = await _snapshot()
    status, body = await _send(client, attempt, two, "b")
    assert status in attempt.answers, f"{attempt.method} answered {status}: {body[:300]}"
    assert SECRET not in body.lower(), f"B shows through: {_around(body)}"
    assert await _snapshot() == before, "the refused request changed something"
    if attempt.answers == FILTERED and "{b." not in attempt.path:
        assert "alpha" in body.lower(), "A's own list is empty: the check above proves nothing"
    if attempt.control:
        status, body = await _send(client, attempt, two, "a")
        assert status < 400, f"with A's own ids: {status}: {body[:500]}"


def _around(body: str) -> str:
    at = body.lower().index(SECRET)
    return body[max(at - 150, 0) : at + 150]


# ---------------------------------------------------------------- chat commands


@dataclass(frozen=True)
class ChatAttempt:
    """A command typed (or a button pressed) in A's linked chat by A's owner."""

    name: str
    text: str = ""
    press: str = ""  # callback data of a button, instead of ``text``
    with_file: bool = False


CHAT_ATTEMPTS: list[ChatAttempt] = [
    ChatAttempt("post B's post now", "/post {b.post} now"),
    ChatAttempt("cancel B's post", "/cancel {b.post}"),
    ChatAttempt("reschedule B's post", "/reschedule {b.post} 2030-06-01 10:00"),
    ChatAttempt("approve B's draft", "/approve {b.draft}"),
    ChatAttempt("reject B's draft", "/reject {b.draft}"),
    ChatAttempt("edit B's draft", "/edit {b.draft} Hello there"),
    ChatAttempt("start editing B's draft", "/edit {b.draft}"),
    ChatAttempt("schedule on B's account", "/schedule @bravo_shop tomorrow 9am Hi", with_file=True),
    ChatAttempt("button: approve B's draft", press="approve:{b.draft}"),
    ChatAttempt("button: reject B's draft", press="reject:{b.draft}"),
    ChatAttempt("button: edit B's draft", press="edit:{b.draft}"),
    ChatAttempt("button: post B's post now", press="postnow:{b.post}"),
    ChatAttempt("button: cancel B's post", press="cancel:{b.post}"),
    ChatAttempt("queue", "/queue"),
    ChatAttempt("leads", "/leads 50"),
    ChatAttempt("stats", "/stats 30d"),
    ChatAttempt("approvals", "/approvals"),
]


class _Sender:
    def __init__(self) -> None:
        self.sent: list[OutgoingReply] = []

    async def send_reply(self, reply: OutgoingReply) -> None:
        self.sent.append(reply)


@pytest.mark.parametrize("attempt", CHAT_ATTEMPTS, ids=[a.name for a in CHAT_ATTEMPTS])
async def test_chat_commands_stay_in_the_chats_workspace(
    container: Any, two: Two, attempt: ChatAttempt
) -> None:
    await ChatIdentity.create(platform=Platform.TELEGRAM, platform_user_id="501", user=two.a.owner)
    who = ChatUser(Platform.TELEGRAM, two.a.chat.chat_id, "501", name="ana", chat_title="Alpha")
    sender = _Sender()
    chatops = ChatOps(
        container, smart_replies=SmartReplies(ai=None, sender=sender, clock=container.clock)
    )
    sides = {"a": two.a.ids(), "b": two.b.ids()}
    files = ()
    if attempt.with_file:
        data = _image((10, 10, 10))

        async def fetch() -> bytes:
            return data

        files = (IncomingFile("photo.jpg", "image/jpeg", fetch),)
    before = await _snapshot()
    typed = _fill(attempt.text or attempt.press, sides)
    if attempt.press:
        reply = await chatops.press(who, typed)
    else:
        reply = await chatops.handle_command(who, typed, files)
    answer = reply.text.replace(typed.lower(), "").replace("@bravo_shop", "@…")
    assert SECRET not in answer.lower(), answer
    assert sender.sent == []
    assert await _snapshot() == before, reply.text


async def test_a_link_code_does_not_take_over_another_workspaces_chat(
    container: Any, two: Two
) -> None:
    """A's admin, also in B's linked group, sends A's code there: B keeps its chat."""
    await ChatIdentity.create(platform=Platform.TELEGRAM, platform_user_id="501", user=two.a.owner)
    made = await chat_links.create_code(two.a.membership, datetime.now(UTC))
    in_b = ChatUser(Platform.TELEGRAM, two.b.chat.chat_id, "501", name="ana", chat_title="Shared")
    before = await ChatLink.get(id=two.b.chat.id)
    reply = await ChatOps(container).handle_command(in_b, f"/link {made.code}")
    after = await ChatLink.get(id=two.b.chat.id)
    assert (after.workspace_id, after.active, after.title) == (
        before.workspace_id,
        before.active,
        before.title,
    )
    assert "another workspace" in reply.text and SECRET not in reply.text.lower()
    # The code is not used up: it still links a chat of A's own.
    mine = ChatUser(Platform.TELEGRAM, "-100555", "501", name="ana", chat_title="Alpha news")
    await ChatOps(container).handle_command(mine, f"/link {made.code}")
    assert await ChatLink.exists(chat_id="-100555", workspace_id=two.a.workspace.id)


# ---------------------------------------------------------------- roles


# Routes a viewer may POST to: they change only the viewer's own session or password.
OWN_SESSION = {
    "auth.logout",
    "auth.logout_everywhere",
    "auth.switch_workspace",
    "auth.login",
    "passwords.change",
}


def test_every_state_changing_route_needs_an_editor_at_least(app: Any) -> None:
    """A viewer reads; anything that writes (other than their own session) needs more."""
    too_low = []
    for rule in app.app.url_map.iter_rules():
        methods = (rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}
        if rule.endpoint == "static" or not methods or rule.endpoint in OWN_SESSION:
            continue
        needed = app.app.view_functions[rule.endpoint].required_role
        if needed is None:
            continue  # public: sign-in, first run, invitations, webhooks (checked elsewhere)
        if not users.role_allows(needed, Role.EDITOR):
            too_low.append(f"{rule.endpoint} needs only {needed.value}")
    assert too_low == []
