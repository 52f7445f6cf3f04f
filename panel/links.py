"""Tracked links: ``GET /l/<code>`` answers a redirect to the link's target and counts the click.

Public (the person who taps a link in a DM is no member), limited per client address, and
cookie-free: the click is counted on the link itself, never on the visitor. Known link-preview
bots are sent on without being counted (``core.domain.tracked_links``).
"""

from __future__ import annotations

import time

from quart import Blueprint, abort, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

from panel.clients import client_address
from panel.security import public
from panel.services import services

blueprint = Blueprint("links", __name__)

# Per client address and minute: generous for people behind one carrier address, small
# enough that guessing codes by the million is not an option.
CLICKS_PER_MINUTE = 120


def _minute() -> int:
    return int(time.time() // 60)


async def _over_limit() -> bool:
    key = f"reelay:link-hits:{client_address()}:{_minute()}"
    redis = services().container.redis
    hits = int(await redis.incr(key))
    if hits == 1:
        await redis.expire(key, 120)
    return hits > CLICKS_PER_MINUTE


@blueprint.get("/l/<code>")
@public
async def follow(code: str) -> WerkzeugResponse:
    """The tracked link's target (302), its click counted; 404 for an unknown code."""
    if await _over_limit():
        abort(429)
    container = services().container
    target = await services().links.click(
        code, user_agent=request.headers.get("User-Agent", ""), now=container.clock.now()
    )
    if target is None:
        abort(404)
    response = redirect(target, 302)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Robots-Tag"] = "noindex"
    return response
