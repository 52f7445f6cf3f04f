"""Setting the team's time zone and a person's own, from the panel, the API or chat.

The workspace's zone is the team's: owners and admins change it. A person's zone overrides it
for their own panel pages and chat commands; anyone changes their own, nobody another's.
"""

from __future__ import annotations

from core.db.models import Role, User, Workspace
from core.domain.commands import TimeZone
from core.domain.scope import Actor
from core.domain.zones import EXAMPLE, checked_zone, effective_zone
from core.errors import Forbidden, NotFound
from core.services import audit


async def set_workspace_zone(actor: Actor, name: str) -> Workspace:
    """Set the workspace's zone (owner or admin); ``name`` is checked against the IANA list."""
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins change the team's time zone.")
    zone = checked_zone(name)
    workspace = await Workspace.get_or_none(id=actor.workspace_id)
    if workspace is None:
        raise NotFound("This workspace no longer exists.")
    if workspace.timezone != zone:
        before = workspace.timezone
        workspace.timezone = zone
        await workspace.save(update_fields=["timezone"])
        await audit.record(
            "workspace.timezone_changed",
            actor=actor.label,
            workspace_id=workspace.id,
            target_type="workspace",
            target_id=workspace.id,
            before=before,
            after=zone,
        )
    return workspace


async def set_own_zone(actor: Actor, name: str | None) -> User:
    """Set the acting person's own zone; None or "" goes back to the workspace's."""
    if actor.user_id is None:
        raise Forbidden("Only a person has a time zone of their own.")
    user = await User.get_or_none(id=actor.user_id, memberships__workspace_id=actor.workspace_id)
    if user is None:
        raise NotFound("There is no such member of this workspace.")
    zone = checked_zone(name) if name and name.strip() else None
    if user.timezone != zone:
        user.timezone = zone
        await user.save(update_fields=["timezone"])
        await audit.record(
            "user.timezone_changed",
            actor=actor.label,
            workspace_id=actor.workspace_id,
            target_type="user",
            target_id=user.id,
            after=zone or "the workspace's",
        )
    return user


async def zone_for(actor: Actor) -> str:
    """The zone ``actor`` reads and types times in: their own, else the workspace's."""
    workspace = await Workspace.get_or_none(id=actor.workspace_id)
    team = workspace.timezone if workspace is not None else "UTC"
    if actor.user_id is None:
        return team
    user = await User.get_or_none(id=actor.user_id)
    return effective_zone(team, user.timezone if user is not None else None)


async def chat_answer(actor: Actor, command: TimeZone) -> str:
    """Run ``/timezone`` for ``actor`` and say, with an example time, which zones now apply."""
    if command.reset:
        await set_own_zone(actor, None)
    elif command.zone and command.own:
        await set_own_zone(actor, command.zone)
    elif command.zone:
        await set_workspace_zone(actor, command.zone)
    workspace = await Workspace.get(id=actor.workspace_id)
    user = await User.get_or_none(id=actor.user_id) if actor.user_id is not None else None
    own = user.timezone if user is not None else None
    lines = [f"The team's time zone is {workspace.timezone}."]
    if own:
        lines.append(f"Yours is {own}: times you type and read here are in {own}.")
    else:
        lines.append("You use the team's: times you type and read here are in it.")
    if not command.zone and not command.reset:
        lines.append(
            f"Change it with /timezone {EXAMPLE} (owners and admins), or yours alone with "
            f"/timezone me {EXAMPLE} (/timezone me team to go back)."
        )
    return "\n".join(lines)
