"""``reelay run``'s parts: one that fails stops the others and the process with its error."""

from __future__ import annotations

import asyncio

import pytest

from core.settings import Settings
from core.wiring import Services
from reelay import cli


class FakeServices:
    closed = False

    async def close(self) -> None:
        self.closed = True


async def test_a_failing_part_stops_the_others_and_raises_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = FakeServices()

    async def fake_open_services(settings: Settings) -> FakeServices:
        return services

    monkeypatch.setattr(cli, "open_services", fake_open_services)
    stopped = asyncio.Event()

    async def runs_until_cancelled(settings: Settings, services: Services) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async def fails(settings: Settings, services: Services) -> None:
        await asyncio.sleep(0)
        raise LookupError("the panel cannot start")

    with pytest.raises(LookupError, match="cannot start"):
        await cli._run_parts(Settings(), [runs_until_cancelled, fails])
    assert stopped.is_set()
    assert services.closed
