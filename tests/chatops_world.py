"""A workspace with a team and linked chats, shared by the chat-ops tests (core, bot, jobs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.db.models import (
    ChatIdentity,
    ChatLink,
    InstagramAccount,
    LoginKind,
    Membership,
    Platform,
    ReplyDraft,
    Role,
    User,
    Workspace,
)


@dataclass
class FixedClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class World:
    workspace: Workspace
    owner: User
    admin: User
    editor: User
    viewer: User
    account: InstagramAccount

    def user(self, role: Role) -> User:
        return {
            Role.OWNER: self.owner,
            Role.ADMIN: self.admin,
            Role.EDITOR: self.editor,
            Role.VIEWER: self.viewer,
        }[role]


async def make_world(timezone: str = "Europe/Berlin") -> World:
    workspace = await Workspace.create(name="Cafe Crema", timezone=timezone)
    team: dict[Role, User] = {}
    for role in Role:
        # chat users never sign in here: skip the (slow) password hashing
        user = await User.create(email=f"{role.value}@example.com", password_hash="-")
        await Membership.create(workspace=workspace, user=user, role=role)
        team[role] = user
    owner = team[Role.OWNER]
    account = await InstagramAccount.create(
        workspace=workspace,
        ig_id="17841400000000001",
        username="cafecrema",
        login_kind=LoginKind.SANDBOX,
        token_encrypted="not-a-real-token",
    )
    return World(workspace, owner, team[Role.ADMIN], team[Role.EDITOR], team[Role.VIEWER], account)


async def link(
    world: World, user: User, *, platform: Platform, chat_id: str, user_id: str
) -> ChatLink:
    """Link ``chat_id`` to the world's workspace and map ``user_id`` to ``user``."""
    chat, _ = await ChatLink.get_or_create(
        platform=platform, chat_id=chat_id, defaults={"workspace": world.workspace, "title": "Team"}
    )
    await ChatIdentity.get_or_create(
        platform=platform, platform_user_id=user_id, defaults={"user": user}
    )
    return chat


async def make_draft(world: World, *, now: datetime | None = None, **fields: object) -> ReplyDraft:
    at = now or datetime.now(UTC)
    values: dict[str, object] = {
        "workspace": world.workspace,
        "account": world.account,
        "inbound_text": "Do you have oat milk?",
        "proposed_text": "Yes! Oat, almond and soy, at no extra cost.",
        "target": {"igsid": "9001"},
        "expires_at": at + timedelta(hours=24),
    }
    values.update(fields)
    return await ReplyDraft.create(**values)
