"""One-statement inserts of the automation hot path, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from core.db.bulk import insert_returning
from core.db.models import (
    Conversation,
    InstagramAccount,
    LoginKind,
    OutboundAction,
    OutboundStatus,
    Workspace,
)


async def _account() -> InstagramAccount:
    workspace = await Workspace.create(name="Rows")
    return await InstagramAccount.create(
        workspace=workspace,
        ig_id="17841400000000001",
        username="rows",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="x",
    )


async def test_conversation_is_created_once_and_found_again(db: str) -> None:
    account = await _account()
    at = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    values = {
        "account_id": account.id,
        "igsid": "55001",
        "username": "ada",
        "first_name": "",
        "last_inbound_at": at,
        "created_at": at,
    }
    async with in_transaction():
        first = await insert_returning(
            Conversation, values, conflict=("account_id", "igsid"), keep=True
        )
    later = {**values, "username": "", "last_inbound_at": at + timedelta(hours=1)}
    again = await insert_returning(Conversation, later, conflict=("account_id", "igsid"), keep=True)

    assert first is not None and again is not None
    assert again.id == first.id
    assert (again.username, again.last_inbound_at, again.flow_state) == ("ada", at, None)
    assert await Conversation.filter(account_id=account.id).count() == 1


async def test_outbound_action_with_a_used_key_is_not_inserted(db: str) -> None:
    account = await _account()
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    values = {
        "account_id": account.id,
        "kind": "dm",
        "dedupe_key": "7:event:dm",
        "target": "55001",
        "payload": {"message": {"text": "Hi é"}, "rule_id": 7},
        "status": OutboundStatus.PENDING,
        "attempts": 1,
        "not_before": None,
        "error": "",
        "created_at": now,
    }
    async with in_transaction():
        action = await insert_returning(OutboundAction, values, conflict=("dedupe_key",))
        duplicate = await insert_returning(
            OutboundAction, {**values, "target": "other"}, conflict=("dedupe_key",)
        )

    assert action is not None and duplicate is None
    stored = await OutboundAction.get(id=action.id)
    assert stored.payload == {"message": {"text": "Hi é"}, "rule_id": 7}
    assert (stored.status, stored.attempts, stored.target) == (OutboundStatus.PENDING, 1, "55001")
    assert action.payload == stored.payload and action.created_at == now


async def test_sends_recorded_together_keep_their_own_responses(db: str) -> None:
    from core.db.models import AutomationRule, Conversation, Message, RuleStats, Trigger
    from core.services.outbox import ActionKind
    from core.services.send_records import SentAction, write_sent

    account = await _account()
    rule = await AutomationRule.create(
        workspace_id=account.workspace_id,  # type: ignore[attr-defined]
        account=account,
        trigger=Trigger.DM,
        keywords=["hi"],
    )
    conversation = await Conversation.create(account=account, igsid="55001")
    now = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    actions = [
        await OutboundAction.create(
            account=account,
            kind="dm",
            dedupe_key=f"k{n}",
            target="55001",
            payload={
                "message": {"text": f"Hi {n}"},
                "rule_id": rule.id,
                "conversation_id": conversation.id,
            },
            attempts=1,
        )
        for n in range(3)
    ]
    sends = [
        SentAction(a, ActionKind.DM, {"message_id": f"mid{n}"}, {"total_triggers": 1}, now)
        for n, a in enumerate(actions)
    ]
    assert await write_sent(sends) == sends
    # Recorded again (its echo after its answer): not marked, stored or counted twice.
    assert await write_sent(sends[:1]) == []

    stored = await OutboundAction.filter(id__in=[a.id for a in actions]).order_by("id")
    assert [a.status for a in stored] == [OutboundStatus.SENT] * 3
    assert [a.response for a in stored] == [{"message_id": f"mid{n}"} for n in range(3)]
    messages = await Message.filter(conversation_id=conversation.id).order_by("id")
    assert [(m.direction, m.mid, m.text) for m in messages] == [
        ("out", f"mid{n}", f"Hi {n}") for n in range(3)
    ]
    stats = await RuleStats.get(rule_id=rule.id)
    assert (stats.total_dms_sent, stats.total_triggers) == (3, 3)


async def test_many_rules_counted_in_one_statement(db: str) -> None:
    from core.db.bulk import bump_many_stats
    from core.db.models import AutomationRule, RuleStats, Trigger
    from core.services.outbox import bump_stats

    account = await _account()
    one, two = [
        await AutomationRule.create(
            workspace_id=account.workspace_id,  # type: ignore[attr-defined]
            account=account,
            trigger=Trigger.DM,
            keywords=[word],
        )
        for word in ("a", "b")
    ]
    earlier = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    later = earlier + timedelta(minutes=1)
    await bump_stats(one.id, total_triggers=2, last_triggered_at=earlier, total_leads_captured=1)
    await bump_many_stats(
        {
            one.id: {"total_triggers": 1, "total_dms_sent": 1, "last_triggered_at": later},
            two.id: {"total_comments_replied": 3},
        }
    )

    first = await RuleStats.get(rule_id=one.id)
    assert (first.total_triggers, first.total_dms_sent, first.total_leads_captured) == (3, 1, 1)
    assert first.last_triggered_at == later
    second = await RuleStats.get(rule_id=two.id)
    assert (second.total_comments_replied, second.total_triggers) == (3, 0)
    assert second.last_triggered_at is None


async def test_conversations_updated_together_keep_their_own_values(db: str) -> None:
    from zoneinfo import ZoneInfo

    from core.db.bulk import update_many
    from core.db.conversations import ConversationStatus

    account = await _account()
    at = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    people = [
        await Conversation.create(account=account, igsid=f"5510{n}", username=f"p{n}")
        for n in range(3)
    ]
    berlin = datetime(2025, 5, 1, 15, 0, tzinfo=ZoneInfo("Europe/Berlin"))  # 13:00 UTC
    await update_many(
        Conversation,
        {
            people[0].id: {"username": "ada", "status": ConversationStatus.WAITING},
            people[1].id: {"last_inbound_at": berlin, "last_message_text": "hi"},
        },
    )

    first, second, third = [await Conversation.get(id=p.id) for p in people]
    assert (first.username, first.status, first.last_inbound_at) == (
        "ada",
        ConversationStatus.WAITING,
        None,
    )
    assert (second.username, second.last_inbound_at, second.last_message_text) == (
        "p1",
        at + timedelta(hours=1),
        "hi",
    )
    assert (third.username, third.last_message_text) == ("p2", "")
    # Stored as UTC: a filter by the instant finds it on SQLite too.
    assert await Conversation.filter(last_inbound_at__gt=at).count() == 1
