"""The Graph API routes: profiles, content publishing, comments, the Send API, insights and
webhook subscriptions, under Meta's paths (``/v25.0/{node}/{edge}``, version optional).

Every answer is Meta's JSON; a rule the request breaks raises ``SandboxError``, which the
server's middleware turns into Meta's error envelope.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox import messenger_profile
from sandbox.insights import ACCOUNT_METRICS, MEDIA_METRICS, insights
from sandbox.media import check_image, check_video
from sandbox.oauth import OAuth
from sandbox.people import follower_profile
from sandbox.state import Account, Comment, MediaContainer, SandboxError
from sandbox.wire import (
    comment_json,
    expansion,
    media_json,
    paged,
    request_params,
    request_token,
    select_fields,
    stamp,
)

if TYPE_CHECKING:
    from sandbox.server import Sandbox

VERSION = re.compile(r"^v\d+\.\d+$")


class GraphRoutes:
    """The Graph nodes and edges of ``sandbox``."""

    def __init__(self, sandbox: Sandbox, oauth: OAuth) -> None:
        self.sandbox = sandbox
        self.state = sandbox.state
        self.oauth = oauth

    async def permalink(self, request: web.Request) -> web.StreamResponse:
        """GET /p/{media_id}/: the post a permalink points at."""
        media = self.state.media.get(request.match_info["media_id"])
        if media is None:
            raise web.HTTPNotFound()
        # The public view: hidden comments are shown only to the account that owns the post.
        return web.json_response(media_json(self.state, media, public=True))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Any Graph path: token endpoints, ``/me``, then the node the token may see."""
        parts = [p for p in request.match_info["tail"].split("/") if p]
        if parts and VERSION.match(parts[0]):
            parts = parts[1:]
        if not parts:
            raise SandboxError("Unsupported request", code=100)
        params, body = await request_params(request)
        node, edge = parts[0], (parts[1] if len(parts) > 1 else None)
        method = request.method
        if node == "access_token" and method == "GET":
            return web.json_response(self.oauth.long_lived(params))
        if node == "refresh_access_token" and method == "GET":
            return web.json_response(self.oauth.refresh(request_token(request, params) or ""))
        account = self.state.account_for_token(request_token(request, params))
        if node == "me":
            if edge is None and method == "GET":
                return web.json_response(select_fields(params.get("fields"), self._me(account)))
            if edge == "accounts" and method == "GET":
                return web.json_response({"data": self._pages(account)})
            node = account.ig_id
        return web.json_response(await self._dispatch(account, method, node, edge, params, body))

    async def _dispatch(
        self,
        account: Account,
        method: str,
        node: str,
        edge: str | None,
        params: dict[str, str],
        body: dict[str, Any],
    ) -> dict[str, Any]:
        state = self.state
        if node in {account.ig_id, account.page_id}:
            return await self._account_edge(account, method, edge, params, body)
        container = state.containers.get(node)
        if container is not None and container.ig_id == account.ig_id and method == "GET":
            status = state.container_status(container)
            full = {"id": container.id, "status_code": status, "status": container.status}
            return select_fields(params.get("fields") or "status_code", full)
        media = state.media.get(node)
        if media is not None and media.ig_id == account.ig_id:
            if edge is None and method == "GET":
                return select_fields(params.get("fields"), media_json(state, media))
            if edge == "comments" and method == "POST":
                made = state.comment_as_account(account, media.id, params.get("message", ""))
                return {"id": made.id}
            if edge == "comments" and method == "GET":
                # Top-level comments, as Meta lists them; replies through ``replies{…}``.
                items = [
                    c for c in state.comments.values() if c.media_id == media.id and not c.parent_id
                ]
                return paged(
                    [self._comment(c, params.get("fields")) for c in items],
                    params,
                    default_limit=50,
                )
            if edge == "insights" and method == "GET":
                today = state.now().date()
                return {"data": insights(media.id, params, MEDIA_METRICS, "lifetime", today)}
        comment: Comment | None = state.comments.get(node)
        if comment is not None and comment.ig_id == account.ig_id:
            if edge is None and method == "POST" and "hide" in params:
                hide = params["hide"].lower()
                if hide not in {"true", "false"}:
                    raise SandboxError("(#100) Param hide must be a boolean", code=100)
                state.hide_comment(account.ig_id, comment.id, hide == "true")
                return {"success": True}
            if edge is None and method == "DELETE":
                state.delete_comment(account.ig_id, comment.id)
                return {"success": True}
            if edge is None and method == "GET":
                shown: dict[str, Any] = {**comment_json(comment), "media": {"id": comment.media_id}}
                return select_fields(params.get("fields"), shown)
            if edge == "replies" and method == "POST":
                reply = state.reply_publicly(account, comment.id, params.get("message", ""))
                return {"id": reply.id}
            if edge == "replies" and method == "GET":
                replies = [c for c in state.comments.values() if c.parent_id == comment.id]
                wanted = params.get("fields") or "id,text,timestamp"
                return {"data": [select_fields(wanted, comment_json(c)) for c in replies]}
        return self._person_or_refuse(account, method, node, edge, params)

    def _comment(self, comment: Comment, wanted: str | None) -> dict[str, Any]:
        """A comment with the fields asked for, its replies expanded when ``replies{…}`` is."""
        shown = select_fields(wanted, comment_json(comment)) if wanted else comment_json(comment)
        sub = expansion(wanted, "replies")
        if sub is not None:
            replies = [c for c in self.state.comments.values() if c.parent_id == comment.id]
            shown["replies"] = {
                "data": [
                    select_fields(sub or "id,text,timestamp", comment_json(r)) for r in replies
                ]
            }
        return shown

    async def _account_edge(
        self,
        account: Account,
        method: str,
        edge: str | None,
        params: dict[str, str],
        body: dict[str, Any],
    ) -> dict[str, Any]:
        state = self.state
        if edge is None and method == "GET":
            return select_fields(params.get("fields"), self._profile(account))
        if edge == "media" and method == "POST":
            return {"id": (await self._create_container(account, params)).id}
        if edge == "media" and method == "GET":
            items = [media_json(state, m) for m in state.feed(account.ig_id)]
            shown = [select_fields(params.get("fields"), item) for item in items]
            return paged(shown, params, default_limit=25)
        if edge == "media_publish" and method == "POST":
            media = state.publish(account.ig_id, params.get("creation_id", ""))
            return {"id": media.id}
        if edge == "content_publishing_limit" and method == "GET":
            return {
                "data": [
                    {
                        "quota_usage": state.quota_usage(account.ig_id),
                        "config": {"quota_total": state.quota_total, "quota_duration": 86400},
                    }
                ]
            }
        if edge == "messages" and method == "POST":
            return self._send(account, body or self._form_message(params))
        if edge == "insights" and method == "GET":
            today = state.now().date()
            return {"data": insights(account.ig_id, params, ACCOUNT_METRICS, "day", today)}
        if edge == "conversations" and method == "GET":
            return {"data": self._conversations(account, params)}
        if edge == "subscribed_apps" and method == "POST":
            account.subscribed_fields = [
                f for f in params.get("subscribed_fields", "").split(",") if f
            ]
            account.unsubscribed = False
            return {"success": True}
        if edge == "subscribed_apps" and method == "DELETE":
            account.subscribed_fields = []
            account.unsubscribed = True
            return {"success": True}
        if edge == "messenger_profile" and method == "POST":
            messenger_profile.set_profile(account.messenger_profile, params, body)
            return {"result": "success"}
        if edge == "messenger_profile" and method == "DELETE":
            messenger_profile.delete_fields(account.messenger_profile, params, body)
            return {"result": "success"}
        if edge == "messenger_profile" and method == "GET":
            return messenger_profile.get_fields(account.messenger_profile, params)
        if edge == "subscribed_apps" and method == "GET":
            return {"data": [{"id": state.app_id, "subscribed_fields": account.subscribed_fields}]}
        raise SandboxError(f"(#100) Unknown edge {edge} for {method}", code=100)

    @staticmethod
    def _form_message(params: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key in ("recipient", "message"):
            if key in params:
                try:
                    body[key] = json.loads(params[key])
                except ValueError:
                    raise SandboxError(f"(#100) Invalid {key}", code=100) from None
        if "tag" in params:
            body["tag"] = params["tag"]
        return body

    async def _create_container(self, account: Account, params: dict[str, str]) -> MediaContainer:
        media_type = params.get("media_type", "IMAGE").upper()
        image_url = params.get("image_url")
        video_url = params.get("video_url")
        video_ok = True
        timeout_s = self.sandbox.fetch_timeout_s
        if media_type != "CAROUSEL":
            if image_url:
                await check_image(
                    self.sandbox.http,
                    image_url,
                    story=media_type == "STORIES" or params.get("is_carousel_item") == "true",
                    timeout_s=timeout_s,
                )
            elif video_url:
                video_ok = await check_video(self.sandbox.http, video_url, timeout_s=timeout_s)
        fields = {k: v for k, v in params.items() if k != "access_token"}
        return self.state.create_container(account.ig_id, fields, video_ok=video_ok)

    def _send(self, account: Account, body: dict[str, Any]) -> dict[str, Any]:
        recipient = body.get("recipient")
        if not isinstance(recipient, dict):
            raise SandboxError("(#100) The parameter recipient is required", code=100)
        message = body.get("message")
        tag = body.get("tag")
        sent = self.state.send_message(
            account, recipient, message if isinstance(message, dict) else {}, tag
        )
        recipient_id = str(sent.payload.get("recipient_id") or sent.target)
        if self.sandbox.echoes:
            self.sandbox.spawn(self.sandbox.echo(account, recipient_id, sent.id, sent.payload))
        return {"recipient_id": recipient_id, "message_id": sent.id}

    def _conversations(self, account: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        """The Conversations API: one conversation per person (``user_id`` picks one), with
        its ``messages`` newest first when ``fields`` expands them."""
        people = [params["user_id"]] if params.get("user_id") else self.state.people(account.ig_id)
        expand = "messages" in (params.get("fields") or "")
        found: list[dict[str, Any]] = []
        for igsid in people:
            messages = self.state.direct_messages(account.ig_id, igsid)
            if not messages:
                continue
            conversation: dict[str, Any] = {"id": f"aWdfZAG06{account.ig_id}{igsid}"}
            if expand:
                conversation["messages"] = {
                    "data": [
                        {
                            "id": m.id,
                            "message": m.text,
                            "from": {"id": m.from_id},
                            "to": {"data": [{"id": m.to_id}]},
                            "created_time": stamp(m.at),
                        }
                        for m in reversed(messages)
                    ]
                }
            found.append(conversation)
        return found

    def _person_or_refuse(
        self, account: Account, method: str, node: str, edge: str | None, params: dict[str, str]
    ) -> dict[str, Any]:
        """The user-profile API for a follower who wrote to the account; any other node is
        unknown, as Meta says it."""
        person = follower_profile(self.state, account.ig_id, node)
        if person is None or edge is not None or method != "GET":
            raise SandboxError(
                f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation",
                code=100,
                subcode=33,
            )
        if not person.pop("consented"):
            # Meta shows a profile only after the person messaged the account.
            raise SandboxError("(#230) User consent is required to access user profile", code=230)
        return select_fields(params.get("fields"), person)

    def _me(self, account: Account) -> dict[str, Any]:
        return {
            "id": "9" + account.ig_id[1:],  # app-scoped id: not the professional account id
            "user_id": account.ig_id,
            "username": account.username,
            "account_type": account.account_type,
            "name": account.name or account.username,
            "profile_picture_url": f"{self.sandbox.url}/_sandbox/avatar/{account.ig_id}.jpg",
        }

    def _profile(self, account: Account) -> dict[str, Any]:
        return {
            **self._me(account),
            "id": account.ig_id,
            "followers_count": account.followers_count,
            "follows_count": account.follows_count,
            "media_count": len(self.state.feed(account.ig_id)),
        }

    def _pages(self, account: Account) -> list[dict[str, Any]]:
        if account.page_id is None:
            return []
        page_token = self.state.issue_token(account.ig_id, page=True)
        return [
            {
                "id": account.page_id,
                "name": f"{account.username} page",
                "access_token": page_token,
                "instagram_business_account": {"id": account.ig_id},
            }
        ]
