"""The chat command layer alone: linking, authorisation per role, every command's reply."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.adapters.openai_ai import OpenAiClient
from core.bootstrap import Container
from core.db.models import (
    AutomationRule,
    ChatIdentity,
    ChatLink,
    DraftStatus,
    InstagramAccount,
    Lead,
    LoginKind,
    Membership,
    OutboundAction,
    OutboundStatus,
    Platform,
    Post,
    PostMedia,
    Role,
    Trigger,
    Workspace,
)
from core.domain.chat import Action, ActionVerb
from core.domain.health import NO_WORKER
from core.domain.posts import Kind, Status
from core.services import chat_links
from core.services.chat_members import HOW_TO_LINK, NOT_LINKED_HERE
from core.services.chatops import ChatOps, ChatUser, IncomingFile
from core.services.heartbeat import beat
from core.services.reply_sending import OutgoingReply
from core.services.smart_replies import SmartReplies
from core.wiring import assemble_services
from tests.actors import acting
from tests.chatops_world import FixedClock, World, link, make_draft, make_world
from tests.fake_openai import FakeOpenAI, fake_openai  # noqa: F401
from tests.media_samples import image_bytes, video_bytes

NOW = datetime(2025, 3, 5, 9, 0, tzinfo=UTC)  # Wed 10:00 in Berlin
CHAT = "-100200"


def who(user_id: str = "501", chat_id: str = CHAT) -> ChatUser:
    return ChatUser(Platform.TELEGRAM, chat_id, user_id, name=f"tg{user_id}", chat_title="Team")


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    return await make_world()


@pytest.fixture
def chatops(container: Container) -> ChatOps:
    return _chatops(container)


def _chatops(container: Container, smart_replies: SmartReplies | None = None) -> ChatOps:
    """The command layer over ``container`` as it is now (its clock, AI and Graph client)."""
    services = assemble_services(container)
    return ChatOps(
        container,
        publishing=services.publishing,
        storage=services.storage,
        smart_replies=smart_replies,
    )


async def as_role(world: World, role: Role, user_id: str = "501") -> ChatUser:
    await link(world, world.user(role), platform=Platform.TELEGRAM, chat_id=CHAT, user_id=user_id)
    return who(user_id)


# ---------------------------------------------------------------- linking


async def test_a_chat_code_links_the_chat_but_not_the_person_who_sent_it(
    world: World, chatops: ChatOps
) -> None:
    admin = await Membership.get(user=world.admin)
    code = await chat_links.create_code(await acting(admin), NOW)
    reply = await chatops.handle_command(who("42"), f"/link {code.code}")
    assert "Linked to Cafe Crema" in reply.text and "as yourself" in reply.text
    link = await ChatLink.get(platform=Platform.TELEGRAM, chat_id=CHAT)
    assert link.workspace_id == world.workspace.id and link.active
    # whoever typed the code does not become the admin who made it
    assert not await ChatIdentity.exists(platform=Platform.TELEGRAM, platform_user_id="42")
    refused = await chatops.handle_command(who("42"), "/queue")
    assert "I don't know you yet" in refused.text and refused.private


async def test_a_personal_code_makes_the_chat_user_act_as_that_person(
    world: World, chatops: ChatOps
) -> None:
    await link(world, world.owner, platform=Platform.TELEGRAM, chat_id=CHAT, user_id="1")
    viewer = await Membership.get(user=world.viewer)
    code = await chat_links.create_personal_code(await acting(viewer), NOW)
    direct = ChatUser(Platform.TELEGRAM, "77", "77", name="vic", direct=True)
    reply = await chatops.handle_command(direct, f"/start {code.code.replace('-', '')}")
    assert "act as yourself (viewer in Cafe Crema)" in reply.text
    identity = await ChatIdentity.get(platform=Platform.TELEGRAM, platform_user_id="77")
    assert identity.user_id == world.viewer.id  # type: ignore[attr-defined]
    # in the group, the viewer reads and is refused changes as a viewer
    assert "Nothing is scheduled" in (await chatops.handle_command(who("77"), "/queue")).text
    refused = await chatops.handle_command(who("77"), "/cancel 1")
    assert "Your role (viewer)" in refused.text
    again = await chatops.handle_command(direct, f"/link {code.code}")
    assert "used or expired" in again.text


async def test_link_without_a_code_in_a_group_offers_the_private_deep_link(
    world: World, chatops: ChatOps
) -> None:
    asker = ChatUser(Platform.TELEGRAM, CHAT, "55", name="ana", bot_username="ReelayBot")
    reply = await chatops.handle_command(asker, "/link")
    [button] = reply.all_buttons()
    assert button.url == "https://t.me/ReelayBot?start=link"
    opened = await chatops.handle_command(
        ChatUser(Platform.TELEGRAM, "55", "55", direct=True), "/start link"
    )
    assert "Send /link CODE here with the personal code" in opened.text


async def test_unlinked_members_read_only_where_the_workspace_allows_it(
    world: World, chatops: ChatOps
) -> None:
    await link(world, world.owner, platform=Platform.TELEGRAM, chat_id=CHAT, user_id="1")
    refused = await chatops.handle_command(who("66"), "/queue")
    assert "I don't know you yet" in refused.text
    owner = await Membership.get(user=world.owner)
    await chat_links.set_chat_readers_unlinked(await acting(owner), True)
    assert "Nothing is scheduled" in (await chatops.handle_command(who("66"), "/queue")).text
    change = await chatops.handle_command(who("66"), "/cancel 1")
    assert "I don't know you yet" in change.text
    # a direct chat is never read for an unknown person
    direct = ChatUser(Platform.TELEGRAM, "66", "66", direct=True)
    assert (await chatops.handle_command(direct, "/queue")).text == HOW_TO_LINK


async def test_link_code_is_one_time_and_expires(world: World, chatops: ChatOps) -> None:
    admin = await Membership.get(user=world.admin)
    code = await chat_links.create_code(await acting(admin), NOW)
    await chatops.handle_command(who("42"), f"/link {code.code}")
    again = await chatops.handle_command(who("43", "-100300"), f"/link {code.code}")
    assert "unknown, used or expired" in again.text
    old = await chat_links.create_code(await acting(admin), NOW - timedelta(hours=1))
    late = await chatops.handle_command(who("44", "-100400"), f"/link {old.code}")
    assert "unknown, used or expired" in late.text
    assert not await ChatLink.filter(chat_id__in=["-100300", "-100400"]).exists()


async def test_code_from_a_demoted_admin_no_longer_links(world: World, chatops: ChatOps) -> None:
    admin = await Membership.get(user=world.admin)
    code = await chat_links.create_code(await acting(admin), NOW)
    await Membership.filter(id=admin.id).update(role=Role.EDITOR)
    reply = await chatops.handle_command(who("42"), f"/link {code.code}")
    assert "Only owners and admins can link chats" in reply.text
    assert not await ChatLink.exists()


async def test_unlinked_user_is_politely_told_how_to_link(world: World, chatops: ChatOps) -> None:
    for text in ("/queue", "/schedule tomorrow 9am hi", "/approve 3", "/stats"):
        reply = await chatops.handle_command(who("999"), text)
        assert reply.text == HOW_TO_LINK
    help_reply = await chatops.handle_command(who("999"), "/help")
    assert "/schedule" in help_reply.text and "/link CODE" in help_reply.text
    pressed = await chatops.press(who("999"), Action(ActionVerb.APPROVE, 1).encode())
    assert pressed.text == HOW_TO_LINK and pressed.private


# ---------------------------------------------------------------- authorisation


@pytest.mark.parametrize(
    ("role", "allowed"),
    [(Role.VIEWER, False), (Role.EDITOR, True), (Role.ADMIN, True), (Role.OWNER, True)],
)
async def test_changing_commands_need_an_editor(
    world: World, chatops: ChatOps, role: Role, allowed: bool
) -> None:
    user = await as_role(world, role)
    for text in ("/cancel 999", "/reschedule 999 fri 18:00", "/post 999 now", "/reject 999"):
        reply = await chatops.handle_command(user, text)
        refused = "can't do that here" in reply.text
        assert refused is not allowed, (role, text, reply.text)
    pressed = await chatops.press(user, Action(ActionVerb.APPROVE, 999).encode())
    assert ("can't do that here" in pressed.text) is not allowed


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_can_read(world: World, chatops: ChatOps, role: Role) -> None:
    user = await as_role(world, role)
    for text in ("/queue", "/leads", "/stats", "/approvals", "/help"):
        reply = await chatops.handle_command(user, text)
        assert "can't do that" not in reply.text
        assert reply.text != HOW_TO_LINK


async def test_a_chat_of_another_workspace_does_not_lend_its_roles(
    world: World, chatops: ChatOps, container: Container
) -> None:
    other = await Workspace.create(name="Other team")
    await ChatLink.create(workspace=other, platform=Platform.TELEGRAM, chat_id="-999")
    await ChatIdentity.create(platform=Platform.TELEGRAM, platform_user_id="501", user=world.editor)
    reply = await chatops.handle_command(who("501", "-999"), "/queue")
    assert "I don't know you yet" in reply.text


async def test_a_chat_nobody_linked_is_refused_even_to_a_linked_teammate(
    world: World, chatops: ChatOps
) -> None:
    teammate = await as_role(world, Role.OWNER)
    elsewhere = ChatUser(Platform.TELEGRAM, "-100777", teammate.user_id, chat_title="Open group")
    for text in ("/leads", "/queue", "/schedule tomorrow 9am hi"):
        reply = await chatops.handle_command(elsewhere, text)
        assert reply.text == NOT_LINKED_HERE
    pressed = await chatops.press(elsewhere, Action(ActionVerb.QUEUE, 1).encode())
    assert pressed.text == NOT_LINKED_HERE and pressed.private
    # A direct chat with the bot is the teammate's own: it acts in their workspace.
    direct = ChatUser(Platform.TELEGRAM, teammate.user_id, teammate.user_id, direct=True)
    reply = await chatops.handle_command(direct, "/queue")
    assert reply.text.startswith("Nothing is scheduled")


# ---------------------------------------------------------------- read commands


async def _post(world: World, minutes: int, caption: str, **fields: Any) -> Post:
    values: dict[str, Any] = {
        "workspace": world.workspace,
        "account": world.account,
        "kind": Kind.IMAGE,
        "status": Status.SCHEDULED,
        "caption": caption,
        "scheduled_at": NOW + timedelta(minutes=minutes),
    }
    values.update(fields)
    return await Post.create(**values)


async def test_queue_lists_posts_in_workspace_time_with_pages(
    world: World, chatops: ChatOps
) -> None:
    user = await as_role(world, Role.VIEWER)
    posts = [await _post(world, 60 * (i + 1), f"Post number {i}") for i in range(7)]
    await _post(world, 30, "already out", status=Status.PUBLISHED)
    first = await chatops.handle_command(user, "/queue")
    assert "Queue (7 posts, times in Europe/Berlin)" in first.text
    assert f"#{posts[0].id} · Wed 05 Mar 11:00 · image · scheduled · Post number 0" in first.text
    assert "already out" not in first.text and "Page 1 of 2" in first.text
    [later] = first.all_buttons()
    assert later.action == Action(ActionVerb.QUEUE, 2)
    second = await chatops.press(user, later.action.encode())
    assert second.replace and "Post number 6" in second.text and "Post number 0" not in second.text
    assert [b.label for b in second.all_buttons()] == ["◀ Earlier"]


async def test_leads_show_fields_and_source_rule(world: World, chatops: ChatOps) -> None:
    user = await as_role(world, Role.VIEWER)
    rule = await AutomationRule.create(
        workspace=world.workspace, account=world.account, name="Price DM", trigger=Trigger.COMMENT
    )
    for i in range(3):
        await Lead.create(
            workspace=world.workspace,
            account=world.account,
            rule=rule,
            igsid=f"90{i}",
            username=f"fan{i}",
            email=f"fan{i}@example.com",
            custom_fields={"size": "M"},
        )
    reply = await chatops.handle_command(user, "/leads 2")
    assert reply.text.startswith("Latest 2 leads:")
    assert "@fan2 via Price DM: fan2@example.com, size: M" in reply.text
    assert "fan0" not in reply.text


async def test_stats_sum_the_workspace(world: World, chatops: ChatOps) -> None:
    user = await as_role(world, Role.VIEWER)
    await _post(world, 60, "a")
    await _post(world, -60, "b", status=Status.FAILED)
    await make_draft(world)
    reply = await chatops.handle_command(user, "/stats")
    assert reply.text.startswith("Cafe Crema, 26 Feb to 04 Mar (7 days, 1 account):")
    assert "Posts: 1 scheduled, 1 failed" in reply.text
    assert "AI replies waiting for approval: 1" in reply.text
    month = await chatops.handle_command(user, "/stats 30d")
    assert "(30 days, 1 account)" in month.text


async def test_stats_count_todays_automation_results_and_say_which_period_each_part_covers(
    world: World, chatops: ChatOps
) -> None:
    user = await as_role(world, Role.VIEWER)
    # A reply and a lead an hour ago (today in Berlin), a DM eight days ago (out of the week).
    for kind, key, at in (
        ("public_reply", "today", NOW - timedelta(hours=1)),
        ("dm", "last-week", NOW - timedelta(days=7, hours=1)),
    ):
        action = await OutboundAction.create(
            account=world.account, kind=kind, dedupe_key=key, target="t", payload={}
        )
        await OutboundAction.filter(id=action.id).update(status=OutboundStatus.SENT, sent_at=at)
    lead = await Lead.create(workspace=world.workspace, account=world.account, igsid="p1")
    await Lead.filter(id=lead.id).update(created_at=NOW - timedelta(hours=1))
    reply = await chatops.handle_command(user, "/stats")
    assert reply.text.startswith("Cafe Crema, 26 Feb to 04 Mar (7 days, 1 account):")
    assert "Automations: 1 comment replies, 0 DMs, 1 leads" in reply.text
    periods = [line for line in reply.text.splitlines() if "today" in line]
    assert periods == [
        "Instagram numbers 26 Feb to 04 Mar (Instagram reports late); "
        "automations 27 Feb to 05 Mar, today included"
    ]


async def test_approvals_list_pending_drafts_with_buttons(world: World, chatops: ChatOps) -> None:
    user = await as_role(world, Role.VIEWER)
    draft = await make_draft(world)
    reply = await chatops.handle_command(user, "/approvals")
    assert f"#{draft.id}: they wrote 'Do you have oat milk?'" in reply.text
    assert [b.action for b in reply.all_buttons()] == [
        Action(ActionVerb.LIST_APPROVE, draft.id),
        Action(ActionVerb.EDIT, draft.id),
        Action(ActionVerb.LIST_REJECT, draft.id),
    ]


async def test_edit_takes_only_the_pressers_reply_to_the_prompt(
    world: World, chatops: ChatOps
) -> None:
    editor = await as_role(world, Role.EDITOR)
    draft = await make_draft(world)
    prompt = await chatops.press(editor, Action(ActionVerb.EDIT, draft.id).encode())
    assert prompt.awaits_reply and "reply to this message with the new text" in prompt.text
    assert prompt.mention == ("501", "tg501") and prompt.text.startswith("tg501: ")
    await chatops.prompt_sent(editor, "900")
    # someone else's chatter, or the presser's message that is no reply to the prompt
    assert await chatops.handle_message(who("777"), "lol", reply_to="900") is None
    assert await chatops.handle_message(who("501", "-1009"), "other chat", reply_to="900") is None
    assert await chatops.handle_message(editor, "unrelated aside") is None
    assert await chatops.handle_message(editor, "a reply to something else", reply_to="5") is None
    preview = await chatops.handle_message(editor, "hello", reply_to="900")
    assert preview is not None and preview.text.endswith("\nhello")
    assert [b.label for b in preview.all_buttons()] == ["Send", "Cancel"]
    assert await chatops.handle_message(editor, "after the edit", reply_to="900") is None


async def test_unknown_text_is_ignored_and_bad_commands_explain(
    world: World, chatops: ChatOps
) -> None:
    user = await as_role(world, Role.EDITOR)
    assert await chatops.handle_message(user, "good morning team") is None
    reply = await chatops.handle_command(user, "/reschedule 3 tomorrow")
    assert "needs a time of day" in reply.text and reply.private
    foreign = await chatops.press(user, "launch:1")
    assert "not one of Reelay's" in foreign.text


# ---------------------------------------------------------------- changing commands


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[OutgoingReply] = []

    async def send_reply(self, reply: OutgoingReply) -> None:
        self.sent.append(reply)


@pytest.fixture
def sender() -> RecordingSender:
    return RecordingSender()


@pytest.fixture
def deciding(container: Container, sender: RecordingSender) -> ChatOps:
    drafts = SmartReplies(ai=None, sender=sender, clock=container.clock)
    return _chatops(container, drafts)


def photo(name: str = "photo.jpg", width: int = 1080, height: int = 1080) -> IncomingFile:
    data = image_bytes(width, height)
    fetched: list[str] = []

    async def fetch() -> bytes:
        fetched.append(name)
        return data

    return IncomingFile(filename=name, mime="image/jpeg", fetch=fetch, size=len(data))


def clip() -> IncomingFile:
    data = video_bytes(10.0)

    async def fetch() -> bytes:
        return data

    return IncomingFile(filename="clip.mp4", mime="video/mp4", fetch=fetch, size=len(data))


@pytest.mark.parametrize(
    ("text", "files", "kind", "items"),
    [
        ("/schedule tomorrow 9am Fresh croissants", [photo()], Kind.IMAGE, 1),
        ("/schedule tomorrow 9am Latte art", [clip()], Kind.REEL, 1),
        (
            "/schedule tomorrow 9am Three cakes",
            [photo("a.jpg"), photo("b.jpg", 1080, 1081), photo("c.jpg", 1080, 1082)],
            Kind.CAROUSEL,
            3,
        ),
        ("/schedule story tomorrow 9am", [photo("s.jpg", 1080, 1920)], Kind.STORY, 1),
    ],
)
async def test_schedule_with_attachments_creates_a_scheduled_post(
    world: World, chatops: ChatOps, text: str, files: list[IncomingFile], kind: Kind, items: int
) -> None:
    editor = await as_role(world, Role.EDITOR)
    reply = await chatops.handle_command(editor, text, files)
    post = await Post.get(workspace=world.workspace)
    assert post.kind is kind and post.status is Status.SCHEDULED
    assert post.scheduled_at == datetime(2025, 3, 6, 8, 0, tzinfo=UTC)
    assert post.source == "chat" and post.created_by_id == world.editor.id  # type: ignore[attr-defined]
    assert await PostMedia.filter(post=post).count() == items
    assert reply.text == (
        f"Scheduled #{post.id} ({kind.value}, {items} item{'s' if items > 1 else ''}) on "
        "@cafecrema for Thu 6 Mar 2025, 09:00 Europe/Berlin (UTC+01:00)."
    )
    assert [b.action for b in reply.all_buttons()] == [
        Action(ActionVerb.POST_NOW, post.id),
        Action(ActionVerb.CANCEL, post.id),
    ]


async def test_schedule_refusals(world: World, chatops: ChatOps) -> None:
    editor = await as_role(world, Role.EDITOR)
    bare = await chatops.handle_command(editor, "/schedule tomorrow 9am No media")
    assert "Attach the photo or video" in bare.text
    long_caption = "#tag " * 31
    refused = await chatops.handle_command(
        editor, f"/schedule tomorrow 9am {long_caption}", [photo()]
    )
    assert "hashtag" in refused.text.lower()
    await InstagramAccount.create(
        workspace=world.workspace,
        ig_id="2",
        username="cremabar",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="-",
    )
    which = await chatops.handle_command(editor, "/schedule tomorrow 9am x", [photo()])
    assert "several accounts (@cafecrema, @cremabar)" in which.text
    chosen = await chatops.handle_command(editor, "/schedule @cremabar tomorrow 9am x", [photo()])
    assert "on @cremabar" in chosen.text
    assert not await Post.filter(caption=long_caption.strip()).exists()


async def test_viewer_cannot_schedule_and_nothing_is_downloaded(
    world: World, chatops: ChatOps
) -> None:
    viewer = await as_role(world, Role.VIEWER)
    fetched: list[bool] = []

    async def fetch() -> bytes:
        fetched.append(True)
        return b""

    reply = await chatops.handle_command(
        viewer, "/schedule tomorrow 9am x", [IncomingFile("a.jpg", "image/jpeg", fetch)]
    )
    assert "can't do that here" in reply.text
    assert fetched == [] and not await Post.exists()


async def test_post_now_cancel_and_reschedule(world: World, chatops: ChatOps) -> None:
    editor = await as_role(world, Role.EDITOR)
    await chatops.handle_command(editor, "/schedule tomorrow 9am Hello", [photo()])
    post = await Post.get(workspace=world.workspace)
    moved = await chatops.handle_command(editor, f"/reschedule {post.id} fri 18:00")
    assert (
        moved.text == f"Post #{post.id} moved to Fri 7 Mar 2025, 18:00 Europe/Berlin (UTC+01:00)."
    )
    await post.refresh_from_db()
    assert post.scheduled_at == datetime(2025, 3, 7, 17, 0, tzinfo=UTC) and post.version == 2
    now_reply = await chatops.press(editor, Action(ActionVerb.POST_NOW, post.id).encode())
    assert "Publishing post" in now_reply.text
    await post.refresh_from_db()
    assert post.scheduled_at == NOW
    cancelled = await chatops.handle_command(editor, f"/cancel {post.id}")
    assert "cancelled" in cancelled.text
    await post.refresh_from_db()
    assert post.status is Status.CANCELLED


async def test_posts_of_another_workspace_are_not_found(world: World, chatops: ChatOps) -> None:
    editor = await as_role(world, Role.EDITOR)
    other = await Workspace.create(name="Other")
    account = await InstagramAccount.create(
        workspace=other, ig_id="3", username="x", login_kind=LoginKind.SANDBOX, token_encrypted="-"
    )
    foreign = await Post.create(
        workspace=other, account=account, kind=Kind.IMAGE, status=Status.SCHEDULED
    )
    reply = await chatops.handle_command(editor, f"/cancel {foreign.id}")
    assert f"There is no post #{foreign.id} in this workspace" in reply.text
    await foreign.refresh_from_db()
    assert foreign.status is Status.SCHEDULED


async def test_approve_sends_the_draft_and_shows_who_decided(
    world: World, deciding: ChatOps, sender: RecordingSender
) -> None:
    editor = await as_role(world, Role.EDITOR)
    draft = await make_draft(world, now=NOW)
    reply = await deciding.press(editor, Action(ActionVerb.APPROVE, draft.id).encode())
    assert reply.replace and reply.text.startswith("✅ Approved by editor@example.com at Wed 5 Mar")
    assert not reply.buttons
    assert [s.text for s in sender.sent] == [draft.proposed_text]
    again = await deciding.press(editor, Action(ActionVerb.REJECT, draft.id).encode())
    assert again.private and "Already approved by" in again.text
    assert len(sender.sent) == 1


async def test_reject_sends_nothing(
    world: World, deciding: ChatOps, sender: RecordingSender
) -> None:
    editor = await as_role(world, Role.EDITOR)
    draft = await make_draft(world, now=NOW)
    reply = await deciding.handle_command(editor, f"/reject {draft.id}")
    assert reply.text.startswith("❌ Rejected by editor@example.com")
    assert sender.sent == []


async def test_edit_flow_sends_the_next_message_as_the_reply(
    world: World, deciding: ChatOps, sender: RecordingSender
) -> None:
    editor = await as_role(world, Role.EDITOR)
    draft = await make_draft(world, now=NOW)
    prompt = await deciding.press(editor, Action(ActionVerb.EDIT, draft.id).encode())
    assert prompt.awaits_reply
    await deciding.prompt_sent(editor, "901")
    preview = await deciding.handle_message(
        editor, "Yes, oat milk is free. See you soon!", reply_to="901"
    )
    assert preview is not None and sender.sent == []
    # a teammate cannot send someone else's text
    teammate = await as_role(world, Role.OWNER, user_id="502")
    stolen = await deciding.press(teammate, Action(ActionVerb.SEND_EDIT, draft.id).encode())
    assert "Only the person who wrote this text" in stolen.text and sender.sent == []
    reply = await deciding.press(editor, Action(ActionVerb.SEND_EDIT, draft.id).encode())
    assert reply.replace and "Edited and sent" in reply.text
    assert "Sent instead: Yes, oat milk is free. See you soon!" in reply.text
    assert [s.text for s in sender.sent] == ["Yes, oat milk is free. See you soon!"]
    await draft.refresh_from_db()
    assert draft.status is DraftStatus.EDITED and draft.decided_by_id == world.editor.id  # type: ignore[attr-defined]


async def test_caption_uses_the_ai_caption_writer(
    world: World,
    container: Container,
    fake_openai: FakeOpenAI,  # noqa: F811
) -> None:
    editor = await as_role(world, Role.EDITOR)
    fake_openai.reply(
        json.dumps({"caption": "Croissants, fresh at 7.", "hashtags": [f"#t{i}" for i in range(6)]})
    )
    container.ai = OpenAiClient(
        base_url=fake_openai.base_url, api_key="k", model="m", max_retries=0
    )
    try:
        reply = await _chatops(container).handle_command(editor, "/caption witty morning pastries")
    finally:
        await container.ai.close()
    assert reply.text.startswith("Croissants, fresh at 7.\n\n#t0 #t1")
    assert "morning pastries" in json.dumps(fake_openai.last)
    container.ai = None
    off = await _chatops(container).handle_command(editor, "/caption pastries")
    assert off.private and off.text


async def test_a_comment_drafts_card_links_the_post_it_is_under(world: World) -> None:
    from core.db.models import WebhookEvent
    from core.services import notifications

    await WebhookEvent.create(
        dedupe_key="e-77", kind="comment", payload={}, event={"media_id": "m-77"}
    )
    await _post(
        world,
        -60,
        "Cake day",
        status=Status.PUBLISHED,
        ig_media_id="m-77",
        permalink="https://www.instagram.com/p/cake/",
    )
    draft = await make_draft(
        world, now=NOW, target={"comment_id": "c-1", "igsid": "9001", "event_key": "e-77"}
    )
    owner = await Membership.get(user=world.owner)
    facts = await notifications.draft_facts(await acting(owner), draft.id)
    assert facts is not None and facts.post_link == "https://www.instagram.com/p/cake/"
    assert facts.window_closes_at == draft.expires_at


# ---------------------------------------------------------------- health


class QuotaOnly:
    """The one Graph read /health makes: the publishing quota."""

    async def publishing_limit(self, account: Any) -> Any:
        from core.ports.instagram import PublishingLimit

        return PublishingLimit(quota_usage=7, quota_total=100, quota_duration_s=86400)


async def _event(world: World, key: str, kind: str, source: str, at: datetime) -> None:
    from core.db.models import WebhookEvent

    event = await WebhookEvent.create(
        dedupe_key=key, account_ig_id=world.account.ig_id, kind=kind, payload={}, source=source
    )
    await WebhookEvent.filter(id=event.id).update(received_at=at)


async def test_health_says_first_when_no_worker_runs(world: World, container: Container) -> None:
    user = await as_role(world, Role.VIEWER)
    world.account.token_encrypted = container.secrets.encrypt("token")
    await world.account.save()
    container.graph = QuotaOnly()  # type: ignore[assignment]
    text = (await _chatops(container).handle_command(user, "/health")).text
    assert text.startswith(f"⚠ {NO_WORKER}\n\n@cafecrema: ")
    await beat(container.redis, NOW)
    text = (await _chatops(container).handle_command(user, "/health")).text
    assert NO_WORKER not in text and text.startswith("@cafecrema: ")


async def test_health_gives_each_accounts_verdict_and_figures_in_the_readers_zone(
    world: World, container: Container
) -> None:
    user = await as_role(world, Role.VIEWER)
    world.account.token_encrypted = container.secrets.encrypt("token")
    world.account.token_expires_at = NOW + timedelta(days=3, hours=1)
    world.account.webhook_subscribed = True
    await world.account.save()
    container.graph = QuotaOnly()  # type: ignore[assignment]
    chatops = _chatops(container)
    await beat(container.redis, NOW)  # a worker runs
    await _event(world, "m1", "message", "webhook", NOW - timedelta(hours=2))
    await _event(world, "c1", "comment", "sweep", NOW - timedelta(hours=1))
    await _event(world, "c2", "comment", "sweep", NOW - timedelta(minutes=50))
    await _event(world, "c3", "comment", "webhook", NOW - timedelta(minutes=30))
    action = await OutboundAction.create(
        account=world.account, kind="dm", dedupe_key="d1", target="t", payload={}
    )
    await OutboundAction.filter(id=action.id).update(
        status=OutboundStatus.FAILED, error="(#10) outside the window", created_at=NOW
    )

    text = (await chatops.handle_command(user, "/health")).text
    assert text.startswith("@cafecrema: Webhooks missing — check the Meta app's subscriptions")
    assert "Last webhook: 2025-03-05 09:30 (Europe/Berlin)" in text
    assert "Events: 2 in 24 h, 1 in the last hour" in text
    assert "Comments caught by the sweep: 2 of 3" in text
    assert "app lacks Advanced Access" in text
    assert "Sends in 24 h: 1 failed" in text and "failed: (#10) outside the window" in text
    assert "Token expires: 2025-03-08 11:00 (Europe/Berlin)" in text
    assert "• Token expires in 3 days — reconnect." in text
    assert "Publishing quota: 7 of 100 in 24 h" in text

    # A viewer with a zone of their own reads the times in it.
    viewer = world.user(Role.VIEWER)
    viewer.timezone = "America/New_York"
    await viewer.save()
    text = (await chatops.handle_command(user, "/health")).text
    assert "Last webhook: 2025-03-05 03:30 (America/New_York)" in text
