"""The scale-out benchmark's short variant (``bench/scale_out.py``), run by the suite on
PostgreSQL: two panel processes take a burst of signed DM webhooks (alternately, as behind a
load balancer), one and then two worker processes answer them through the sandbox Instagram,
and every person gets exactly one reply. Only correctness is asserted here; the rates are the
benchmark's to measure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
BURST = 60

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(240)]


async def test_two_panels_and_one_then_two_workers_answer_every_dm_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The benchmark makes its own database on the server the suite uses, and starts its own
    # embedded Redis, so it shares nothing with the tests running beside it.
    server = os.environ.get("TEST_DATABASE_URL", postgres_url.rsplit("/", 1)[0] + "/test")
    monkeypatch.setenv("DATABASE_URL", server)
    monkeypatch.setenv("REDIS_URL", "")
    monkeypatch.syspath_prepend(str(BENCH))
    scale_out = __import__("scale_out")
    try:
        figures = await scale_out.main(burst=BURST, sizes=(1, 2))
    finally:
        for name in ("scale_out", "automation_rig", "calibration"):
            sys.modules.pop(name, None)

    assert figures["burst"] == BURST
    assert figures["answered"] == 2 * BURST  # a burst of new people for each size
    assert figures["duplicates"] == 0
    assert figures["rate_1"] > 0 and figures["rate_2"] > 0
