"""Meta's wire format shared by the sandbox's routes: reading a Graph request (its token and
parameters) and writing the sandbox's objects as the JSON Meta sends."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from aiohttp import web

from sandbox.state import Comment, Media, SandboxError, SandboxState


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def stamp(moment: datetime) -> str:
    """A time as Meta writes it: ``2026-11-20T08:00:00+0000``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")


def request_token(request: web.Request, params: dict[str, str]) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return params.get("access_token") or request.query.get("access_token")


async def request_params(request: web.Request) -> tuple[dict[str, str], dict[str, Any]]:
    """The query and form fields, and the JSON body (the Send API takes either)."""
    params: dict[str, str] = dict(request.query)
    body: dict[str, Any] = {}
    if request.method in {"POST", "DELETE"} and request.can_read_body:
        if request.content_type == "application/json":
            try:
                loaded = await request.json()
            except ValueError:
                raise SandboxError("(#100) Invalid JSON body", code=100) from None
            if isinstance(loaded, dict):
                body = loaded
        else:
            form = await request.post()
            params.update({k: str(v) for k, v in form.items()})
    return params, body


def split_fields(request_fields: str) -> list[str]:
    """``fields=`` split at the commas outside braces: ``id,replies{id,text}`` is two."""
    found: list[str] = []
    depth = 0
    current = ""
    for char in request_fields:
        if char == "," and depth == 0:
            found.append(current.strip())
            current = ""
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current += char
    found.append(current.strip())
    return [name for name in found if name]


def expansion(request_fields: str | None, edge: str) -> str | None:
    """The sub-fields asked for an edge (``replies{id,text}`` → ``id,text``); None if not."""
    for name in split_fields(request_fields or ""):
        if name == edge:
            return ""
        if name.startswith(edge + "{") and name.endswith("}"):
            return name[len(edge) + 1 : -1]
    return None


def select_fields(request_fields: str | None, full: dict[str, Any]) -> dict[str, Any]:
    """The ``fields=`` a request asked for (Meta's default few when it named none)."""
    if not request_fields:
        return {k: v for k, v in full.items() if k in {"id", "username", "caption"}} or {
            "id": full.get("id")
        }
    wanted = split_fields(request_fields)
    result = {"id": full.get("id")} if "id" in full else {}
    for name in wanted:
        if name in full:
            result[name] = full[name]
    return result


def paged(
    items: list[dict[str, Any]], params: dict[str, str], *, default_limit: int
) -> dict[str, Any]:
    """One page of ``items`` as Meta pages a list: ``limit`` items from the ``after`` cursor,
    ``paging.cursors`` and, while more follow, ``paging.next``."""
    try:
        limit = max(1, min(100, int(params.get("limit") or default_limit)))
        start = (
            int(base64.urlsafe_b64decode(params["after"]).decode()) if params.get("after") else 0
        )
    except ValueError:
        raise SandboxError("(#100) Invalid paging parameter", code=100) from None
    page = items[start : start + limit]
    body: dict[str, Any] = {"data": page}
    if page:

        def cursor(offset: int) -> str:
            return base64.urlsafe_b64encode(str(offset).encode()).decode()

        body["paging"] = {"cursors": {"before": cursor(start), "after": cursor(start + len(page))}}
        if start + len(page) < len(items):
            body["paging"]["next"] = f"?limit={limit}&after={cursor(start + len(page))}"
    return body


def media_json(state: SandboxState, media: Media, *, public: bool = False) -> dict[str, Any]:
    comments = [
        c for c in state.comments.values() if c.media_id == media.id and not (public and c.hidden)
    ]
    return {
        "id": media.id,
        "caption": media.caption,
        "media_type": media.media_type,
        "media_product_type": media.media_product_type,
        "media_url": media.media_url,
        "permalink": media.permalink,
        "thumbnail_url": media.media_url,
        "timestamp": stamp(media.timestamp),
        "like_count": 0,
        "comments_count": len(comments),
        "username": state.accounts[media.ig_id].username if media.ig_id in state.accounts else "",
    }


def comment_json(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "text": comment.text,
        "from": {"id": comment.from_id, "username": comment.username},
        "username": comment.username,
        "hidden": comment.hidden,
        "timestamp": stamp(comment.created_at),
        **({"parent_id": comment.parent_id} if comment.parent_id else {}),
    }
