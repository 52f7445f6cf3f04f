"""The call budget port: how many Graph calls a background sync may still make for an account."""

from __future__ import annotations

from typing import Protocol


class CallBudget(Protocol):
    async def take(self, account_id: int, calls: int = 1) -> float | None:
        """Spend ``calls`` from the account's hourly budget.

        Returns None when they fit, otherwise the seconds until the budget refills (and
        nothing is spent).
        """
