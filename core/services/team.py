"""A workspace's team: invitations by link, roles, removal.

The last owner of a workspace can be neither removed nor demoted, and only an
owner may make or unmake an owner.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from core.db.models import Invite, Membership, Role, User
from core.domain.scope import Actor, instance_level
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.ports.mailer import Mailer
from core.services import api_tokens, audit, users

logger = logging.getLogger(__name__)

INVITE_TTL = timedelta(days=7)


def token_digest(token: str) -> str:
    """How an invite token is stored: its SHA-256 (the token itself is shown once)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewInvite:
    invite: Invite
    token: str  # shown once, never stored


def parse_role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise ValidationFailed(
            "Unknown role", {"role": f"Pick one of: {', '.join(Role)}."}
        ) from None


async def members(actor: Actor) -> list[Membership]:
    """The workspace's members, owners first."""
    found = await Membership.filter(workspace_id=actor.workspace_id).prefetch_related("user")
    order = {Role.OWNER: 0, Role.ADMIN: 1, Role.EDITOR: 2, Role.VIEWER: 3}
    return sorted(found, key=lambda m: (order[m.role], m.user.email))


async def open_invites(actor: Actor, now: datetime) -> list[Invite]:
    return await Invite.filter(
        workspace_id=actor.workspace_id, used_at__isnull=True, expires_at__gt=now
    ).order_by("-id")


def _check_may_grant(actor: Actor, role: Role) -> None:
    if not actor.allows(Role.ADMIN):
        raise Forbidden("Only owners and admins manage the team.")
    if role is Role.OWNER and actor.role is not Role.OWNER:
        raise Forbidden("Only an owner can make someone an owner.")


async def create_invite(actor: Actor, role: Role, now: datetime) -> NewInvite:
    """An invitation link for ``role``, valid for seven days and usable once."""
    _check_may_grant(actor, role)
    token = secrets.token_urlsafe(24)
    invite = await Invite.create(
        workspace_id=actor.workspace_id,
        token_hash=token_digest(token),
        role=role,
        created_by_id=actor.user_id,
        expires_at=now + INVITE_TTL,
    )
    await audit.record(
        "team.invite_created",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="invite",
        target_id=invite.id,
        role=role.value,
    )
    return NewInvite(invite=invite, token=token)


async def email_invite(
    actor: Actor, mailer: Mailer, made: NewInvite, *, to: str, link: str, team_name: str
) -> str:
    """Email the link of an invitation just made (``made``) to ``to``; returns the address.

    ValidationFailed for a bad address, MailError when the mail server refuses: the link
    itself stays valid and can still be copied.
    """
    _check_may_grant(actor, made.invite.role)
    if made.invite.workspace_id != actor.workspace_id:
        raise NotFound("No such open invitation.")
    address = users.normalise_email(to)
    inviter = actor.label
    body = (
        f'{inviter} invites you to join the team "{team_name}" on Reelay '
        f"as {made.invite.role.value}.\n\n"
        f"Accept within seven days (the link works once):\n{link}\n\n"
        "If you did not expect this, ignore this email."
    )
    # A subject is one header line, whatever the team's name holds.
    await mailer.send(address, f"Join {' '.join(team_name.split())} on Reelay", body)
    await audit.record(
        "team.invite_emailed",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="invite",
        target_id=made.invite.id,
    )
    return address


@instance_level("an invitation token names its own workspace")
async def find_invite(token: str, now: datetime) -> Invite:
    """The open invite behind ``token``; NotFound when unknown, used or expired."""
    invite = await Invite.get_or_none(
        token_hash=token_digest(token), used_at__isnull=True, expires_at__gt=now
    ).prefetch_related("workspace")
    if invite is None:
        raise NotFound("This invitation link is unknown, used or expired.")
    return invite


async def revoke_invite(actor: Actor, invite_id: int) -> None:
    _check_may_grant(actor, Role.VIEWER)
    deleted = await Invite.filter(
        id=invite_id, workspace_id=actor.workspace_id, used_at__isnull=True
    ).delete()
    if not deleted:
        raise NotFound("No such open invitation.")
    await audit.record(
        "team.invite_revoked",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="invite",
        target_id=invite_id,
    )


@instance_level("an invitation token names its own workspace")
async def accept_invite(token: str, user: User, now: datetime) -> Membership:
    """Join the invite's workspace as ``user`` (the invite is used up)."""
    invite = await find_invite(token, now)
    async with in_transaction():
        claimed = await Invite.filter(id=invite.id, used_at__isnull=True).update(used_at=now)
        if not claimed:
            raise NotFound("This invitation link was just used.")
        existing = await Membership.get_or_none(workspace_id=invite.workspace_id, user=user)
        if existing is not None:
            raise Conflict("You are already a member of this workspace.")
        membership = await Membership.create(
            workspace_id=invite.workspace_id, user=user, role=invite.role
        )
    await audit.record(
        "team.member_joined",
        actor=user.email,
        workspace_id=invite.workspace_id,
        target_type="user",
        target_id=user.id,
        role=invite.role.value,
    )
    return membership


# One answer for a taken email with a wrong password, whoever owns it: the page must not
# tell a holder of an invitation link which emails have an account elsewhere.
CREDENTIALS_REFUSED = (
    "These details cannot be used. If this email already has a Reelay account, "
    "enter its password (or sign in first); otherwise use another email."
)


@instance_level("an invitation token names its own workspace")
async def accept_invite_with_credentials(
    token: str, email: str, password: str, name: str, now: datetime
) -> tuple[User, Membership]:
    """Join the workspace from an invitation link as the account these credentials open,
    creating it when the email has none. The password must pass ``users.check_password``
    either way, so a weak one is refused alike for taken and free emails."""
    await find_invite(token, now)
    address = users.check_credentials(email, password)
    if await User.exists(email=address):
        user = await users.authenticate(address, password)
        if user is None:
            raise ValidationFailed(CREDENTIALS_REFUSED, {"email": CREDENTIALS_REFUSED})
        return user, await accept_invite(token, user, now)
    async with in_transaction():
        user = await users.create_user(address, password, name=name)
        membership = await accept_invite(token, user, now)
    return user, membership


async def _owner_count(workspace_id: int) -> int:
    return await Membership.filter(workspace_id=workspace_id, role=Role.OWNER).count()


async def _target(actor: Actor, membership_id: int) -> Membership:
    target = await Membership.get_or_none(
        id=membership_id, workspace_id=actor.workspace_id
    ).prefetch_related("user")
    if target is None:
        raise NotFound("No such member.")
    return target


async def change_role(actor: Actor, membership_id: int, role: Role) -> Membership:
    """Give a member another role."""
    _check_may_grant(actor, role)
    target = await _target(actor, membership_id)
    if target.role is Role.OWNER and actor.role is not Role.OWNER:
        raise Forbidden("Only an owner can change an owner's role.")
    demoted = target.role is Role.OWNER and role is not Role.OWNER
    if demoted and await _owner_count(actor.workspace_id) <= 1:
        raise Conflict("The last owner cannot be demoted; make someone else owner first.")
    previous = target.role
    target.role = role
    await target.save(update_fields=["role"])
    await audit.record(
        "team.role_changed",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="user",
        target_id=target.user_id,
        previous=previous.value,
        role=role.value,
    )
    return target


async def remove_member(actor: Actor, membership_id: int, *, now: datetime) -> None:
    """Take a member out of the workspace (their user account stays, their API tokens there
    are revoked)."""
    _check_may_grant(actor, Role.VIEWER)
    target = await _target(actor, membership_id)
    if target.role is Role.OWNER:
        if actor.role is not Role.OWNER:
            raise Forbidden("Only an owner can remove an owner.")
        if await _owner_count(actor.workspace_id) <= 1:
            raise Conflict("The last owner cannot be removed.")
    async with in_transaction():
        await target.delete()
        await api_tokens.revoke_members_tokens(actor, target.user_id, now)
    await audit.record(
        "team.member_removed",
        actor=actor.label,
        workspace_id=actor.workspace_id,
        target_type="user",
        target_id=target.user_id,
        email=target.user.email,
    )
