"""Back-off: how long to wait before trying again, the same way everywhere.

Pure apart from the random number, which is injectable (``rng``) so tests pin it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable


def backoff_s(
    attempt: int,
    *,
    base_s: float,
    cap_s: float = math.inf,
    spread: tuple[float, float] = (1.0, 1.0),
    rng: Callable[[], float] = random.random,
    requested_s: float | None = None,
) -> float:
    """Seconds to wait before the next try: a doubling step, capped, then spread at random.

    ``attempt`` counts from 1 (the first retry waits ``base_s``); the step doubles each
    attempt up to ``cap_s``. A wait the other side asked for (``requested_s``, e.g. a
    Retry-After) replaces the step when given. The step is multiplied by a factor between
    ``spread[0]`` and ``spread[1]``, drawn with ``rng`` (a number in [0, 1)), so that
    callers who failed together do not all come back at once.
    """
    step = requested_s or min(cap_s, base_s * 2.0 ** max(0, attempt - 1))
    low, high = spread
    return step * (low + (high - low) * rng())
