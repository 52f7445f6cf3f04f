"""Users, workspaces and memberships: first-run owner creation and sign-in."""

from __future__ import annotations

import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from tortoise.transactions import in_transaction
from zxcvbn import zxcvbn

from core.db.models import Membership, Role, User, Workspace
from core.domain.scope import ROLE_RANK as ROLE_RANK, instance_level, role_allows as role_allows
from core.errors import Conflict, ValidationFailed
from core.services import audit

logger = logging.getLogger(__name__)

_hasher = PasswordHasher()
MIN_PASSWORD = 10
# zxcvbn's score: 3 is "safely unguessable" against an online attack (about 10^8 guesses).
MIN_STRENGTH = 3
# zxcvbn's matching grows with length; the first characters are enough to judge.
STRENGTH_PREFIX = 100


def normalise_email(raw: str) -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed("Invalid email address", {"email": str(exc)}) from None


def check_password(password: str, *user_inputs: str) -> None:
    """Refuse a password that is short or easy to guess (common, a pattern, or made of
    ``user_inputs`` such as the email and name). The one rule for every new password."""
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(
            "Password too short",
            {"password": f"Use at least {MIN_PASSWORD} characters."},
        )
    inputs = [part for text in user_inputs for part in text.replace("@", " ").split() if part]
    verdict = zxcvbn(password[:STRENGTH_PREFIX], user_inputs=inputs)
    if verdict["score"] < MIN_STRENGTH:
        feedback = verdict["feedback"]
        hint = feedback["warning"] or " ".join(feedback["suggestions"])
        raise ValidationFailed(
            "Password too easy to guess",
            {"password": f"Too easy to guess. {hint}".strip()},
        )


def check_credentials(email: str, password: str) -> str:
    """The normalised email; raises ValidationFailed naming every bad field at once."""
    problems: dict[str, str] = {}
    address = ""
    try:
        address = normalise_email(email)
    except ValidationFailed as exc:
        problems.update(exc.fields)
    try:
        check_password(password, email)
    except ValidationFailed as exc:
        problems.update(exc.fields)
    if problems:
        raise ValidationFailed(" ".join(problems.values()), problems)
    return address


@instance_level("the instance's first-run check")
async def has_users() -> bool:
    return await User.exists()


@instance_level("a person's own account, across workspaces")
async def create_user(email: str, password: str, name: str = "") -> User:
    address = check_credentials(email, password)
    if await User.filter(email=address).exists():
        raise ValidationFailed("Email taken", {"email": "A user with this email already exists."})
    return await User.create(email=address, password_hash=_hasher.hash(password), name=name)


@instance_level("a person's own account, across workspaces")
async def create_owner(
    email: str,
    password: str,
    *,
    workspace_name: str = "My team",
    timezone: str = "UTC",
    instance_admin: bool = False,
) -> tuple[User, Workspace]:
    """Create a workspace and its owner (first run, or ``reelay admin create``).

    ``instance_admin`` also lets them change the install-wide settings (the Meta app)."""
    async with in_transaction():
        user = await create_user(email, password)
        if instance_admin:
            user.is_instance_admin = True
            await user.save(update_fields=["is_instance_admin"])
        workspace = await Workspace.create(name=workspace_name, timezone=timezone)
        await Membership.create(workspace=workspace, user=user, role=Role.OWNER)
    await audit.record(
        "workspace.created",
        actor=user.email,
        workspace_id=workspace.id,
        target_type="workspace",
        target_id=workspace.id,
    )
    return user, workspace


@instance_level("a person's own account, across workspaces")
async def create_first_owner(
    email: str, password: str, workspace_name: str, *, timezone: str = "UTC"
) -> User:
    """The first-run page's action: only allowed while no user exists. The first owner is the
    install's instance admin; ``timezone`` (checked by the caller) is the workspace's."""
    if await has_users():
        raise Conflict("Reelay already has an owner; sign in instead.")
    user, _ = await create_owner(
        email, password, workspace_name=workspace_name, timezone=timezone, instance_admin=True
    )
    return user


@instance_level("a person's own account, across workspaces")
async def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    try:
        address = normalise_email(email)
    except ValidationFailed:
        return None
    user = await User.get_or_none(email=address, is_active=True)
    if user is None:
        # Hash anyway so a missing account costs the same time as a wrong password.
        _hasher.hash(password)
        return None
    if not password_matches(user, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        await user.save(update_fields=["password_hash"])
    return user


@instance_level("a person's own account, across workspaces")
async def set_password(user: User, password: str) -> None:
    """Store ``password`` for ``user`` (already checked by ``check_password``)."""
    user.password_hash = _hasher.hash(password)
    await user.save(update_fields=["password_hash"])


def password_matches(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@instance_level("a person's own account, across workspaces")
async def change_password(user: User, current: str, new: str, confirm: str) -> None:
    """Replace the signed-in user's password; raises ValidationFailed naming each bad field."""
    problems: dict[str, str] = {}
    if not password_matches(user, current):
        problems["current_password"] = "This is not your current password."
    try:
        check_password(new, user.email, user.name)
    except ValidationFailed as exc:
        problems.update(exc.fields)
    if new != confirm:
        problems["password_confirm"] = "The passwords differ."
    if problems:
        raise ValidationFailed(" ".join(problems.values()), problems)
    await set_password(user, new)
    await audit.record(
        "user.password_changed", actor=user.email, target_type="user", target_id=user.id
    )


@instance_level("a person's workspaces, across the instance")
async def memberships(user: User) -> list[Membership]:
    return await Membership.filter(user=user).prefetch_related("workspace").order_by("id")
