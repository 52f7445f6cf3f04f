"""The sandbox port: what core needs of a sandbox Instagram running in this process."""

from __future__ import annotations

from typing import Protocol


class RunningSandbox(Protocol):
    @property
    def url(self) -> str:
        """Where the sandbox listens (its Graph API and follower controls)."""
