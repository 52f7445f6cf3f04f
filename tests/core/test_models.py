"""Data-layer invariants, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from tortoise.exceptions import IntegrityError

from core.adapters.crypto import SecretBox
from core.db.models import (
    AutomationRule,
    InstagramAccount,
    LoginKind,
    Post,
    PublishJob,
    RuleStats,
    Trigger,
    WebhookEvent,
    Workspace,
)
from core.domain.posts import Kind
from core.errors import SettingsError


async def _account(workspace: Workspace, ig_id: str = "1784") -> InstagramAccount:
    return await InstagramAccount.create(
        workspace=workspace,
        ig_id=ig_id,
        username="shop",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted="x",
    )


async def test_webhook_dedupe_key_is_unique(db: str) -> None:
    await WebhookEvent.create(dedupe_key="comment:1", kind="comment", payload={})
    with pytest.raises(IntegrityError):
        await WebhookEvent.create(dedupe_key="comment:1", kind="comment", payload={})
    assert await WebhookEvent.filter(dedupe_key="comment:1").count() == 1


async def test_an_account_is_connected_once_per_workspace(db: str) -> None:
    first = await Workspace.create(name="A")
    second = await Workspace.create(name="B")
    await _account(first)
    await _account(second)  # the same Instagram account may serve another workspace
    with pytest.raises(IntegrityError):
        await _account(first)


async def test_one_live_job_per_post_version(db: str) -> None:
    workspace = await Workspace.create(name="A")
    account = await _account(workspace)
    post = await Post.create(workspace=workspace, account=account, kind=Kind.IMAGE)
    await PublishJob.create(post=post, version=1, job_id=f"publish:{post.id}:1")
    with pytest.raises(IntegrityError):
        await PublishJob.create(post=post, version=1, job_id=f"publish:{post.id}:1:again")
    await PublishJob.create(post=post, version=2, job_id=f"publish:{post.id}:2")


async def test_times_are_stored_and_read_as_utc(db: str) -> None:
    workspace = await Workspace.create(name="A")
    account = await _account(workspace)
    when = datetime(2026, 12, 1, 9, 30, 15, tzinfo=UTC)
    post = await Post.create(
        workspace=workspace, account=account, kind=Kind.REEL, scheduled_at=when
    )
    fetched = await Post.get(id=post.id)
    assert fetched.scheduled_at == when
    assert fetched.scheduled_at is not None and fetched.scheduled_at.utcoffset() is not None


async def test_rule_config_round_trips_seed_shape(db: str) -> None:
    workspace = await Workspace.create(name="A")
    account = await _account(workspace)
    config = {
        "keywords": ["price"],
        "comment_replies": ["Sent you a DM!"],
        "message_variations": ["Here it is: {link}"],
        "dmType": "text_button",
        "buttons": [{"text": "Shop", "url": "https://example.com"}],
        "delay_minutes": 0,
    }
    rule = await AutomationRule.create(
        workspace=workspace,
        account=account,
        trigger=Trigger.COMMENT,
        keywords=["price"],
        config=config,
    )
    await RuleStats.create(rule=rule)
    fetched = await AutomationRule.get(id=rule.id).prefetch_related("stats")
    assert fetched.config == config
    assert fetched.stats.total_triggers == 0


async def test_tokens_are_encrypted_at_rest(db: str) -> None:
    box = SecretBox(Fernet.generate_key().decode())
    workspace = await Workspace.create(name="A")
    secret = "IGQWRPlainTextToken123"
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="1",
        username="u",
        login_kind=LoginKind.INSTAGRAM,
        token_encrypted=box.encrypt(secret),
    )
    stored = await InstagramAccount.get(id=account.id)
    assert secret not in stored.token_encrypted
    assert box.decrypt(stored.token_encrypted) == secret


def test_a_secret_read_again_is_the_same_and_a_foreign_one_fails_every_time() -> None:
    box, other = (
        SecretBox(Fernet.generate_key().decode()),
        SecretBox(Fernet.generate_key().decode()),
    )
    first, second = box.encrypt("EAAfirst"), box.encrypt("EAAsecond")
    assert [box.decrypt(first), box.decrypt(second), box.decrypt(first)] == [
        "EAAfirst",
        "EAAsecond",
        "EAAfirst",
    ]
    # Kept decrypted by ciphertext: a secret made under another key is refused each time.
    for _ in range(2):
        with pytest.raises(SettingsError, match="ENCRYPTION_KEY changed"):
            other.decrypt(first)


async def test_a_day_in_another_zone_finds_what_happened_in_it(db: str) -> None:
    # 00:00 in Berlin is 23:00 UTC the evening before: a post at 23:40 UTC lies in Berlin's
    # next day, and a filter by that day's bounds must find it on every database.
    workspace = await Workspace.create(name="Berlin")
    account = await _account(workspace)
    post = await Post.create(
        workspace=workspace,
        account=account,
        kind=Kind.IMAGE,
        scheduled_at=datetime(2026, 12, 3, 23, 40, tzinfo=UTC),
    )
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 12, 4, tzinfo=berlin)
    end = datetime(2026, 12, 5, tzinfo=berlin)
    found = await Post.filter(scheduled_at__gte=start, scheduled_at__lt=end)
    assert [p.id for p in found] == [post.id]
    assert await Post.filter(scheduled_at__lt=start).count() == 0
    stored = await Post.get(id=post.id)
    assert stored.scheduled_at == datetime(2026, 12, 3, 23, 40, tzinfo=UTC)
