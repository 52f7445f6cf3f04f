"""Buttons and modals under the adapter's messages, and how replies fit Discord's limits."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from bot.discord_bot import ActionButton, ChatCommands, EditModal, press, rendered
from core.db.models import DraftStatus, Lead, Platform
from core.domain.chat import Action, ActionVerb, Button, ButtonStyle, Reply
from core.services.chat_members import ChatUser
from core.services.chatops import ChatOps
from tests.bot.discord_bot.interactions import (
    CHANNEL,
    DISCORD_WAITS_S,
    EDITOR,
    NOW,
    Interaction,
    RecordingSender,
    refusal,
)
from tests.chatops_world import World, make_draft


async def test_a_slow_approval_is_deferred_and_its_message_edited_once_sent(
    world: World, chatops: ChatOps, sender: RecordingSender
) -> None:
    draft = await make_draft(world, now=NOW)
    sender.delay_s = DISCORD_WAITS_S * 1.5  # Instagram takes longer than Discord waits
    interaction = Interaction(on_message=True)
    await press(chatops, interaction, f"approve:{draft.id}")  # type: ignore[arg-type]
    [defer, edit] = interaction.log
    assert defer.kind == "defer" and not defer.kwargs.get("thinking")
    assert edit.kind == "edit-original"
    assert (edit.content or "").startswith("✅ Approved by editor@")
    assert [s.text for s in sender.sent] == [draft.proposed_text]


async def test_a_failing_button_tells_the_presser_privately(
    world: World, chatops: ChatOps, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> Reply:
        raise RuntimeError("redis went away")

    monkeypatch.setattr(chatops, "press", broken)
    interaction = Interaction(on_message=True)
    interaction.client = SimpleNamespace(chatops=chatops)  # type: ignore[attr-defined]
    await ActionButton("Approve", "approve:1").callback(interaction)  # type: ignore[arg-type]
    [sorry] = interaction.log
    assert sorry.kind == "send" and sorry.kwargs["ephemeral"] is True
    assert "went wrong" in (sorry.content or "")


async def test_approve_button_sends_the_draft_and_edits_the_message(
    world: World, chatops: ChatOps, sender: RecordingSender
) -> None:
    draft = await make_draft(world, now=NOW)
    interaction = Interaction(on_message=True)
    await press(chatops, interaction, f"approve:{draft.id}")  # type: ignore[arg-type]
    [edit] = interaction.log
    assert edit.kind == "edit" and (edit.content or "").startswith("✅ Approved by editor@")
    assert edit.kwargs["view"] is None
    assert [s.text for s in sender.sent] == [draft.proposed_text]
    late = Interaction(on_message=True)
    await press(chatops, late, f"reject:{draft.id}")  # type: ignore[arg-type]
    assert late.log[0].kwargs["ephemeral"] is True and "Already approved" in (
        late.log[0].content or ""
    )


async def test_edit_button_opens_a_modal_whose_text_is_sent(
    world: World, chatops: ChatOps, sender: RecordingSender
) -> None:
    draft = await make_draft(world, now=NOW)
    interaction = Interaction(on_message=True)
    await press(chatops, interaction, f"edit:{draft.id}")  # type: ignore[arg-type]
    [opened] = interaction.log
    modal: EditModal = opened.kwargs["modal"]
    assert modal.text.default == draft.proposed_text
    modal.text._value = "Oat milk is free!"  # what the person typed
    submitted = Interaction(on_message=True)
    await modal.on_submit(submitted)  # type: ignore[arg-type]
    assert [s.text for s in sender.sent] == ["Oat milk is free!"]
    await draft.refresh_from_db()
    assert draft.status is DraftStatus.EDITED
    [decided] = submitted.log  # the approval message itself shows the decision
    assert decided.kind == "edit" and "Edited and sent" in (decided.content or "")


async def test_buttons_are_rebuilt_from_their_custom_id_after_a_restart() -> None:
    view = rendered(
        Reply(
            "x",
            (
                (
                    Button("Approve", Action(ActionVerb.APPROVE, 12), style=ButtonStyle.SUCCESS),
                    Button("Open", url="https://example.com/p/1"),
                ),
            ),
        )
    ).view
    assert view is not None and view.is_persistent() and view.timeout is None
    approve, url = view.children
    assert approve.custom_id == "reelay:approve:12"  # type: ignore[attr-defined]
    assert approve.item.style is discord.ButtonStyle.success  # type: ignore[attr-defined]
    assert url.url == "https://example.com/p/1"  # type: ignore[attr-defined]
    # a fresh process: the dynamic item matches the stored custom id alone
    template = ActionButton.__discord_ui_compiled_template__
    match = template.fullmatch("reelay:approve:12")
    assert match is not None
    rebuilt = await ActionButton.from_custom_id(Interaction(), approve, match)  # type: ignore[arg-type]
    assert rebuilt.action == "approve:12"
    assert template.fullmatch("someone-else:approve:12") is None


async def test_a_long_answer_goes_out_as_several_messages_discord_takes(
    world: World, cog: ChatCommands
) -> None:
    for number in range(40):
        await Lead.create(
            workspace=world.workspace,
            account=world.account,
            igsid=f"9{number:04d}",
            username=f"follower{number}",
            email=f"follower{number}@example.com",
            custom_fields={"note": f"lead {number} " + "wants the big catering menu " * 3},
        )
    interaction = Interaction()
    await cog.leads.callback(cog, interaction, 40)  # type: ignore[call-arg]
    assert len(interaction.log) > 1
    assert all(len(sent.content or "") <= 2000 for sent in interaction.log)
    shown = "\n".join(sent.content or "" for sent in interaction.log)
    assert all(f"@follower{number}:" in shown for number in range(40))


def test_a_reply_with_more_buttons_than_discord_shows_is_cut_to_its_limits() -> None:
    rows = tuple(
        (
            Button("Approve " + "very long label " * 10, Action(ActionVerb.APPROVE, draft)),
            Button("Reject", Action(ActionVerb.REJECT, draft)),
        )
        for draft in range(1, 9)
    )
    odd = (
        Button("Approve again", Action(ActionVerb.APPROVE, 1)),  # same custom id as row 1
        Button("Open", url="ftp://example.com/file"),
    )
    shown = rendered(Reply("Eight drafts", (odd, *rows)))
    assert shown.view is not None
    assert refusal(shown.text(), shown.view.to_components()) is None
    assert len(shown.view.to_components()) == 5
    assert "Open: ftp://example.com/file" in shown.text()
    assert "25 buttons at most" in shown.text()


async def test_deciding_in_the_approvals_list_changes_only_that_line(
    world: World, chatops: ChatOps, sender: RecordingSender
) -> None:
    first = await make_draft(world, now=NOW)
    second = await make_draft(world, now=NOW, inbound_text="Open on Sunday?")
    editor = ChatUser(Platform.DISCORD, str(CHANNEL), str(EDITOR), name="eda")
    listing = await chatops.handle_command(editor, "/approvals")
    view = rendered(listing).view
    assert view is not None
    rows = [
        discord.ActionRow(
            {
                "type": 1,
                "components": [
                    item.to_component_dict() for item in view.children if item.row == row
                ],
            }  # type: ignore[typeddict-item]
        )
        for row in sorted({item.row for item in view.children if item.row is not None})
    ]
    interaction = Interaction(on_message=True)
    interaction.message = SimpleNamespace(id=4242, content=listing.text, components=rows)
    await press(chatops, interaction, f"lapprove:{first.id}")  # type: ignore[arg-type]
    [edited] = interaction.log
    assert edited.kind == "edit"
    lines = (edited.content or "").split("\n")
    assert lines[1].startswith(f"#{first.id}: ") and lines[1].endswith(
        "approved by editor@example.com"
    )
    assert lines[2].startswith(f"#{second.id}: they wrote 'Open on Sunday?'")
    left = [item.custom_id for item in edited.kwargs["view"].children]  # type: ignore[attr-defined]
    assert left == [
        f"reelay:lapprove:{second.id}",
        f"reelay:edit:{second.id}",
        f"reelay:lreject:{second.id}",
    ]
    assert [s.text for s in sender.sent] == [first.proposed_text]
