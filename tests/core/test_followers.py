"""Followers with names: the label, and the profile read once a day off the reply's path."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from core.bootstrap import Container
from core.db.models import Conversation, Trigger
from core.domain.followers import Follower, compact_count, follower_label
from core.domain.graph_errors import ErrorKind, GraphError
from core.domain.scope import Actor
from core.ports.instagram import AccountRef
from core.services import followers, notifications
from core.services.insights_sync import SyncDeps
from tests.automation_world import (
    build_engine,
    comment_payload,
    dm_payload,
    make_account,
    make_rule,
)
from tests.chatops_world import FixedClock, World, make_draft, make_world
from tests.core.test_automations import World as AutomationWorld

NOW = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("person", "shown"),
    [
        (
            Follower("1", "ana.bakes", "Ana Costa", 12_345),
            "@ana.bakes · Ana Costa · 12.3k followers",
        ),
        (Follower("1", "ben", "", 1), "@ben · 1 follower"),
        (Follower("1", "ben", "ben", None), "@ben"),
        (
            Follower("1", "star", "Star", 2_500_000, verified=True),
            "@star ✓ · Star · 2.5M followers",
        ),
        (Follower("1", "", "Cara  Dahl", 950), "Cara Dahl · 950 followers"),
        (Follower("17841", "", "", None), "a follower (id 17841)"),
        (Follower(), "a follower"),
    ],
)
def test_label_names_what_is_known(person: Follower, shown: str) -> None:
    assert follower_label(person) == shown


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0"), (999, "999"), (1000, "1k"), (12_345, "12.3k"), (999_950, "1M"), (2 * 10**9, "2B")],
)
def test_counts_are_compact(count: int, shown: str) -> None:
    assert compact_count(count) == shown


@dataclass
class FakeInstagram:
    profile: dict[str, Any]
    calls: list[str] = field(default_factory=list)
    error: GraphError | None = None

    async def user_profile(self, account: AccountRef, igsid: str) -> dict[str, Any]:
        self.calls.append(igsid)
        if self.error is not None:
            raise self.error
        return self.profile


@dataclass
class FakeBudget:
    left: int = 10
    takes: list[int] = field(default_factory=list)

    async def take(self, account_id: int, calls: int = 1) -> float | None:
        self.takes.append(calls)
        if self.left < calls:
            return 600.0
        self.left -= calls
        return None


@pytest.fixture
async def world(container: Container) -> World:
    container.clock = FixedClock(NOW)
    return await make_world()


def _deps(client: FakeInstagram, clock: FixedClock, budget: FakeBudget) -> SyncDeps:
    return SyncDeps(
        client=client,  # type: ignore[arg-type]
        account_ref=lambda account: AccountRef(account.ig_id, "token", "sandbox"),
        clock=clock,
        budget=budget,
    )


PROFILE = {
    "name": "Ana Costa",
    "username": "ana.bakes",
    "profile_pic": "https://cdn.example/ana.jpg",
    "follower_count": 12_345,
    "is_user_follow_business": True,
    "is_verified_user": False,
}


async def test_a_profile_is_read_once_a_day_within_the_budget(world: World) -> None:
    conversation = await Conversation.create(
        account=world.account, igsid="9001", username="", last_inbound_at=NOW
    )
    client, clock, budget = FakeInstagram(PROFILE), FixedClock(NOW), FakeBudget(left=2)
    deps = _deps(client, clock, budget)
    assert await followers.refresh_profile(deps, conversation.id)
    stored = await Conversation.get(id=conversation.id)
    assert (stored.username, stored.profile_name, stored.follower_count) == (
        "ana.bakes",
        "Ana Costa",
        12_345,
    )
    assert stored.is_user_follow_business is True and stored.profile_fetched_at == NOW
    # Cached for a day: no second call the same day.
    clock.at = NOW + timedelta(hours=23)
    assert not await followers.refresh_profile(deps, conversation.id)
    assert client.calls == ["9001"]
    # After a day it is read again; with the budget spent, it waits.
    clock.at = NOW + timedelta(hours=25)
    assert await followers.refresh_profile(deps, conversation.id)
    clock.at = NOW + timedelta(hours=50)
    assert not await followers.refresh_profile(deps, conversation.id)
    assert client.calls == ["9001", "9001"] and budget.left == 0


def consent_refused() -> GraphError:
    return GraphError(
        code=230,
        subcode=None,
        message="(#230) User consent is required to access user profile",
        kind=ErrorKind.PERMANENT,
        title="Instagram refused the request",
    )


@dataclass
class RefusingSome(FakeInstagram):
    refused: set[str] = field(default_factory=set)

    async def user_profile(self, account: AccountRef, igsid: str) -> dict[str, Any]:
        if igsid in self.refused:
            self.calls.append(igsid)
            raise consent_refused()
        return await super().user_profile(account, igsid)


async def test_read_and_refused_profiles_are_stored_together_on_every_database(db: str) -> None:
    world = await make_world()
    read = await Conversation.create(account=world.account, igsid="9101", last_inbound_at=NOW)
    refused = await Conversation.create(account=world.account, igsid="9102", last_inbound_at=NOW)
    client = RefusingSome(PROFILE, refused={"9102"})
    deps = _deps(client, FixedClock(NOW), FakeBudget())

    assert await followers.refresh_profiles(deps, [read.id, refused.id]) == 1

    read, refused = await Conversation.filter(id__in=[read.id, refused.id]).order_by("id")
    assert (read.username, read.profile_name, read.follower_count) == (
        "ana.bakes",
        "Ana Costa",
        12_345,
    )
    assert read.is_user_follow_business is True and read.profile_fetched_at == NOW
    assert read.profile_failed_at is None
    assert refused.profile_failed_at == NOW and refused.profile_fetched_at is None
    assert refused.username == "" and refused.follower_count is None


async def test_a_refused_read_is_not_repeated_within_the_hour(world: World) -> None:
    conversation = await Conversation.create(
        account=world.account, igsid="9002", last_inbound_at=NOW
    )
    client, clock = FakeInstagram(PROFILE, error=consent_refused()), FixedClock(NOW)
    deps = _deps(client, clock, FakeBudget())
    assert not await followers.refresh_profile(deps, conversation.id)
    assert (await Conversation.get(id=conversation.id)).profile_failed_at == NOW
    clock.at = NOW + timedelta(minutes=30)
    assert not await followers.refresh_profile(deps, conversation.id)
    assert client.calls == ["9002"]
    # A commenter who never messaged has no profile to read: no call at all.
    commenter = await Conversation.create(account=world.account, igsid="9003", username="cam")
    assert not await followers.refresh_profile(deps, commenter.id)
    assert client.calls == ["9002"]


async def test_approval_cards_and_alerts_name_the_follower(world: World) -> None:
    conversation = await Conversation.create(
        account=world.account,
        igsid="9001",
        username="ana.bakes",
        profile_name="Ana Costa",
        follower_count=12_345,
        last_inbound_at=NOW,
    )
    draft = await make_draft(world, conversation=conversation, now=NOW)
    actor = Actor.system(world.workspace.id)
    facts = await notifications.draft_facts(actor, draft.id)
    assert facts is not None and facts.person == "@ana.bakes · Ana Costa · 12.3k followers"
    unknown = await make_draft(world, now=NOW, target={"igsid": "4242"})
    unknown_facts = await notifications.draft_facts(actor, unknown.id)
    assert unknown_facts is not None and unknown_facts.person == "a follower (id 4242)"
    label = await followers.label(actor, world.account.id, "9001")
    assert label == "@ana.bakes · Ana Costa · 12.3k followers"


async def test_the_engine_asks_for_a_profile_after_its_reply(container: Container) -> None:
    world = AutomationWorld(container)
    account = await make_account(container)
    await make_rule(account, keywords=["price"], trigger=Trigger.DM)
    await world.deliver(dm_payload("m1", "price?"))
    assert world.graph.messages(), "the reply went out"
    conversation = await Conversation.get(account=account, igsid="igsid-1")
    # A second message the same day asks for nothing more; a comment never asks.
    await world.deliver(dm_payload("m2", "price again?"))
    await world.deliver(comment_payload("c9", "price?", sender="igsid-7"))
    jobs = [j for j in world.queue.jobs if j.function == followers.PROFILE_JOB]
    assert [(j.args, j.job_id) for j in jobs] == [
        ((conversation.id,), f"profile:{conversation.id}:{world.clock.now():%Y%m%d}")
    ]


async def _gathering(container: Container, gather_s: float) -> AutomationWorld:
    """An engine gathering profile reads for ``gather_s``, and an account with a DM rule."""
    world = AutomationWorld(container)
    world.engine = build_engine(
        container, world.graph, world.queue, world.clock, profiles_gather_s=gather_s
    )
    await make_rule(await make_account(container), keywords=["price"], trigger=Trigger.DM)
    return world


def _profile_jobs(world: AutomationWorld) -> list[Any]:
    return [j for j in world.queue.jobs if j.function == followers.PROFILE_JOB]


async def test_profiles_asked_for_within_the_gathering_time_go_out_as_one_job(
    container: Container,
) -> None:
    world = await _gathering(container, 0.3)
    for n in range(3):  # three batches, three people, within the gathering time
        await world.deliver(dm_payload(f"m{n}", "price?", sender=f"igsid-{n}"))
    assert len(world.graph.messages()) == 3, "every reply went out without waiting"
    assert _profile_jobs(world) == []

    await asyncio.sleep(0.5)
    people = await Conversation.all().order_by("id").values_list("id", flat=True)
    assert [j.args for j in _profile_jobs(world)] == [tuple(people)]


async def test_profiles_still_gathering_are_queued_when_the_engine_stops(
    container: Container,
) -> None:
    world = await _gathering(container, 60)
    await world.deliver(dm_payload("m1", "price?"))
    assert _profile_jobs(world) == []

    await world.engine.finish_sends()  # a worker stopping (Services.close)
    conversation = await Conversation.get(igsid="igsid-1")
    assert [j.args for j in _profile_jobs(world)] == [(conversation.id,)]


async def test_a_job_takes_its_accounts_budget_once_and_reads_as_many_as_still_fit(
    world: World,
) -> None:
    people = [
        await Conversation.create(account=world.account, igsid=f"91{n}", last_inbound_at=NOW)
        for n in range(3)
    ]
    ids = [c.id for c in people]
    client, clock = FakeInstagram(PROFILE), FixedClock(NOW)
    roomy = FakeBudget(left=10)
    assert await followers.refresh_profiles(_deps(client, clock, roomy), ids[:2]) == 2
    assert roomy.takes == [2] and roomy.left == 8
    # Near the budget's end: the reads that fit go now, the rest stay due for later.
    await Conversation.filter(id__in=ids[:2]).update(profile_fetched_at=None)
    client.calls.clear()
    tight = FakeBudget(left=2)
    assert await followers.refresh_profiles(_deps(client, clock, tight), ids) == 2
    assert tight.takes == [3, 1, 1, 1] and tight.left == 0
    assert len(client.calls) == 2
    (left_due,) = await Conversation.filter(id__in=ids, profile_fetched_at=None)
    assert left_due.igsid not in client.calls
