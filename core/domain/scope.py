"""Who acts, and in which workspace: the scope every workspace-level service call takes.

A service that reads or changes a workspace's objects takes an ``Actor`` and filters by
``actor.workspace_id`` in the query itself, so another workspace's object is simply not
found. Work that is not one workspace's (the webhook inbox, crons that sweep every
account, instance settings) is marked ``@instance_level("why")`` instead; a test walks the
public coroutines of ``core.services`` and holds every one to one of the two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


ROLE_RANK = {Role.VIEWER: 0, Role.EDITOR: 1, Role.ADMIN: 2, Role.OWNER: 3}


def role_allows(role: Role, needed: Role) -> bool:
    """True when ``role`` is at least ``needed``."""
    return ROLE_RANK[role] >= ROLE_RANK[needed]


@dataclass(frozen=True, slots=True)
class Actor:
    """A person (or Reelay itself) acting in one workspace.

    ``label`` is what audit entries and "decided by" lines name: an email, a chat user,
    an API token, or "reelay" for jobs. ``user_id`` is None for jobs.
    """

    workspace_id: int
    role: Role
    label: str
    user_id: int | None = None

    @classmethod
    def system(cls, workspace_id: int, label: str = "reelay") -> Actor:
        """Reelay's own jobs acting for a workspace (publishing, follow-ups, sweeps)."""
        return cls(workspace_id=workspace_id, role=Role.OWNER, label=label)

    def allows(self, needed: Role) -> bool:
        return role_allows(self.role, needed)


def instance_level(reason: str) -> Callable[[F], F]:
    """Mark a service coroutine that is not one workspace's, saying why."""
    if not reason.strip():
        raise ValueError("an instance-level service says why")

    def mark(fn: F) -> F:
        fn.__instance_level__ = reason  # type: ignore[attr-defined]
        return fn

    return mark
