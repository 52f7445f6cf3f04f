"""The one back-off formula: doubling, capped, spread by an injectable random number."""

from __future__ import annotations

import pytest

from core.domain.backoff import backoff_s


def test_the_step_doubles_from_the_base_and_stops_at_the_cap() -> None:
    steps = [backoff_s(n, base_s=30, cap_s=900) for n in range(1, 8)]
    assert steps == [30, 60, 120, 240, 480, 900, 900]


def test_without_a_cap_the_step_keeps_doubling() -> None:
    assert backoff_s(12, base_s=0.5) == 1024


def test_an_attempt_below_one_waits_the_base() -> None:
    assert backoff_s(0, base_s=10) == 10


def test_the_spread_scales_the_step_between_its_ends() -> None:
    assert backoff_s(3, base_s=10, spread=(0.5, 1.0), rng=lambda: 0.0) == 20
    assert backoff_s(3, base_s=10, spread=(0.5, 1.0), rng=lambda: 0.5) == 30
    assert backoff_s(3, base_s=10, spread=(0.75, 1.25), rng=lambda: 0.999) < 50
    assert backoff_s(10, base_s=30, cap_s=900, spread=(0.5, 1.0), rng=lambda: 0.5) == (
        pytest.approx(675)
    )


def test_a_requested_wait_replaces_the_step_and_is_still_spread() -> None:
    assert backoff_s(4, base_s=10, requested_s=7, spread=(0.5, 1.5), rng=lambda: 0.5) == 7
    assert backoff_s(4, base_s=10, requested_s=7, spread=(0.5, 1.5), rng=lambda: 0.0) == 3.5
    assert backoff_s(4, base_s=10, requested_s=None) == 80


def test_the_default_random_number_stays_inside_the_spread() -> None:
    waits = [backoff_s(2, base_s=10, spread=(0.8, 1.2)) for _ in range(200)]
    assert all(16 <= wait <= 24 for wait in waits)
