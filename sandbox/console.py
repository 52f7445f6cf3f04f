"""The follower console: ``/_sandbox/`` endpoints a page or a script uses to act as a follower
(comment, DM, tap a button, reply to or mention a story) and to read back what happened.

They are not Meta's: faults and usage headers never apply to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from sandbox import messenger_profile
from sandbox.errors import SandboxError
from sandbox.state import Inbound
from sandbox.wire import comment_json, media_json

if TYPE_CHECKING:
    from sandbox.server import Sandbox
    from sandbox.webhooks import Delivery


def ig_me_ref(data: dict[str, Any]) -> str:
    """The ref a follower's ig.me link carries (``ref``, or read from ``link``)."""
    ref = str(data.get("ref") or "")
    if not ref and data.get("link"):
        ref = next(iter(parse_qs(urlsplit(str(data["link"])).query).get("ref", [])), "")
    if not ref:
        raise web.HTTPBadRequest(text="ref (or an ig.me link with ?ref=) is required")
    return ref


def tapped_ice_breaker(profile: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """The ice breaker a follower taps: the ``index``-th shown (from 0)."""
    try:
        return messenger_profile.ice_breaker(profile, int(data.get("index") or 0))
    except (ValueError, TypeError):
        raise web.HTTPBadRequest(text="index must be a number") from None
    except SandboxError as exc:
        raise web.HTTPBadRequest(text=exc.message) from None


class FollowerConsole:
    """The control endpoints of ``sandbox``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state

    async def world(self, request: web.Request) -> web.StreamResponse:
        """GET /_sandbox/state?ig_id=…: the feed, what the account sent, the comments."""
        ig_id = request.query.get("ig_id")
        state = self.state
        feed = [media_json(state, m) for m in state.media.values() if ig_id in {None, m.ig_id}]
        sent = [
            {
                "kind": s.kind,
                "ig_id": s.ig_id,
                "target": s.target,
                "payload": s.payload,
                "id": s.id,
                "at": s.at.isoformat(),
            }
            for s in state.sent
            if ig_id in {None, s.ig_id}
        ]
        comments = [
            {**comment_json(c), "media_id": c.media_id}
            for c in state.comments.values()
            if ig_id in {None, c.ig_id}
        ]
        deliveries = len(self.sandbox.deliveries)
        return web.json_response(
            {"feed": feed, "sent": sent, "comments": comments, "deliveries": deliveries}
        )

    async def conversation(self, request: web.Request) -> web.StreamResponse:
        """GET /_sandbox/conversation?ig_id=…&with=IGSID: a follower's exchange with an account.

        Each item has ``from`` ("follower" or "account"), ``kind``, ``ref`` and ``at``; a
        follower's item has ``text``, ``payload`` and ``media_id``; the account's has the
        ``message`` it sent (Meta's shape; ``{"text": …}`` for a public reply) and
        ``reply_to`` (the comment it answers, if any).
        """
        ig_id = request.query.get("ig_id", "")
        igsid = request.query.get("with", "")
        if not ig_id or not igsid:
            raise web.HTTPBadRequest(text="ig_id and with are required")
        items: list[dict[str, Any]] = []
        for item in self.state.conversation(ig_id, igsid):
            if isinstance(item, Inbound):
                items.append(
                    {
                        "from": "follower",
                        "kind": item.kind,
                        "ref": item.ref,
                        "text": item.text,
                        "payload": item.payload,
                        "media_id": item.media_id,
                        "at": item.at.isoformat(),
                    }
                )
                continue
            if item.kind == "comment_reply":
                message: dict[str, Any] = {"text": item.payload.get("message", "")}
            else:
                message = dict(item.payload.get("message") or {})
            items.append(
                {
                    "from": "account",
                    "kind": item.kind,
                    "ref": item.id,
                    "message": message,
                    "reply_to": item.target if item.kind != "message" else "",
                    "at": item.at.isoformat(),
                }
            )
        return web.json_response({"items": items})

    async def event(self, request: web.Request) -> web.StreamResponse:
        """Act as a follower: POST /_sandbox/{comment,live_comment,ad_comment,dm,postback,
        ice_breaker,ig_me,story_reply,story_mention,follow,unfollow,read,app_reply}
        (``live_comment`` comments on the account's Live broadcast, ``ad_comment`` on an ad made
        of the post ``media_id``; ``ice_breaker`` taps the account's ``index``-th ice breaker,
        from 0) (``ig_me`` opens an ig.me link: ``ref``, or the whole ``link``; ``follow`` and
        ``unfollow`` change whether ``from_id`` follows the account; ``read`` reads the
        account's message ``mid``; ``app_reply`` is the account's owner answering ``from_id``
        from the Instagram app: an echo Reelay did not send)."""
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="send a JSON object") from None
        if not isinstance(data, dict) or not data.get("ig_id"):
            raise web.HTTPBadRequest(text="ig_id is required")
        ig_id = str(data["ig_id"])
        from_id = str(data.get("from_id") or "9990001")
        event = request.match_info["event"]
        self.state.ensure_account(ig_id, str(data.get("account_username") or "reelay_demo"))
        delivery: Delivery
        if event in {"comment", "ad_comment"}:
            comment, delivery = await self.sandbox.comment(
                ig_id,
                str(data.get("text") or ""),
                media_id=data.get("media_id"),
                from_id=from_id,
                username=str(data.get("username") or "sandbox_follower"),
                shape=str(data.get("shape") or "entry"),
                on_ad=event == "ad_comment",
            )
            ref = comment.id
        elif event == "live_comment":
            comment, delivery = await self.sandbox.live_comment(
                ig_id,
                str(data.get("text") or ""),
                from_id=from_id,
                username=str(data.get("username") or "sandbox_follower"),
            )
            ref = comment.id
        elif event == "dm":
            ref, delivery = await self.sandbox.dm(
                ig_id,
                str(data.get("text") or ""),
                from_id=from_id,
                quick_reply=data.get("quick_reply"),
            )
        elif event == "postback":
            ref, delivery = await self.sandbox.postback(
                ig_id,
                str(data.get("payload") or ""),
                title=str(data.get("title") or ""),
                from_id=from_id,
            )
        elif event == "ice_breaker":
            tapped = tapped_ice_breaker(self.state.accounts[ig_id].messenger_profile, data)
            ref, delivery = await self.sandbox.postback(
                ig_id, str(tapped["payload"]), title=str(tapped["question"]), from_id=from_id
            )
        elif event == "ig_me":
            ref, delivery = await self.sandbox.open_link(ig_id, ig_me_ref(data), from_id=from_id)
        elif event == "read":
            ref, delivery = await self.sandbox.read(
                ig_id, str(data.get("mid") or ""), from_id=from_id
            )
        elif event in {"follow", "unfollow"}:
            self.state.set_following(ig_id, from_id, event == "follow")
            return web.json_response({"id": from_id, "following": event == "follow"})
        elif event == "story_reply":
            ref, delivery = await self.sandbox.story_reply(
                ig_id, str(data.get("text") or ""), from_id=from_id
            )
        elif event == "story_mention":
            ref, delivery = await self.sandbox.story_mention(ig_id, from_id=from_id)
        elif event == "app_reply":
            ref, delivery = await self.sandbox.app_reply(
                ig_id, from_id, str(data.get("text") or "")
            )
        else:
            raise web.HTTPNotFound(text=f"unknown sandbox event {event}")
        return web.json_response(
            {"id": ref, "webhook_status": delivery.status, "error": delivery.error}
        )
