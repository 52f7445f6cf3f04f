"""Workspace isolation: A's owner (signed in, or with A's API token) never reaches B's objects.

Every row of ``ATTEMPTS`` is one request made as workspace A with identifiers of workspace
B: in the address, the query, the form or the JSON body, or inside an object being created.
Each must be refused (404 or 403, or 422 where the identifier names a part of a new object),
change nothing in the database, and show nothing of B. Rows with ``control`` are run again
with A's own identifiers, which must be accepted: the refusal is then about ownership, not
about a malformed request. Add a row for every new route that takes an identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.panel.helpers import CSRF, sign_in_as
from tests.panel.isolation_world import SECRET, Two, fill_ids, rule_form, snapshot, two_workspaces

REFUSED = frozenset({403, 404})
# An identifier of another workspace inside a new or changed object: refused as invalid.
INVALID = REFUSED | {422}
# A flash message and a redirect (the team and token pages answer refusals this way).
FLASHED = REFUSED | {302, 303}
# A filter: the page is served, narrowed to nothing of B.
FILTERED = frozenset({200})


@dataclass(frozen=True)
class Attempt:
    """One request as workspace A; ``{b.x}`` / ``{a.x}`` are filled with ids of B or A."""

    name: str
    method: str
    path: str
    form: dict[str, str | list[str]] | None = None
    json: dict[str, Any] | None = None
    api: bool = False
    answers: frozenset[int] = REFUSED
    control: bool = False  # with A's identifiers the same request is accepted
    a_side: dict[str, str] = field(default_factory=dict)  # names the control swaps to A


def rule_body(account: Any) -> dict[str, Any]:
    return {
        "name": "Alpha price rule",
        "account_id": account,
        "trigger": "comment",
        "keywords": ["price"],
        "comment_replies": ["Sent you a DM!"],
        "dm_type": "text",
        "dm_variations": ["Here is the price list."],
    }


LATER = "2030-06-01T10:00:00+00:00"

# Pages and lists without identifiers: A's own, nothing of B.
INDEXES = [
    "/", "/accounts", "/analytics/", "/approvals", "/posts/queue", "/leads", "/leads/export.csv",
    "/library", "/logs/audit", "/logs/events", "/rules", "/team", "/settings/api-tokens",
    "/setup", "/sandbox", "/compose", "/account", "/settings/webhooks", "/health", "/inbox",
    "/inbox/list", "/inbox/comments",
]  # fmt: skip
API_INDEXES = [
    "/api/v1/posts", "/api/v1/rules", "/api/v1/leads", "/api/v1/drafts", "/api/v1/webhooks",
    "/api/v1/accounts", "/api/v1/analytics", "/api/v1/team", "/api/v1/conversations",
]  # fmt: skip

ATTEMPTS: list[Attempt] = [
    *(Attempt(f"list {path}", "GET", path, answers=FILTERED) for path in INDEXES),
    *(
        Attempt(f"API: list {path}", "GET", path, api=True, answers=FILTERED)
        for path in API_INDEXES
    ),
    # accounts
    Attempt("pace of B's account", "POST", "/accounts/{b.account}/pace", {"dm_pace_per_hour": "5"}),
    Attempt("disconnect B's account", "POST", "/accounts/{b.account}/disconnect", {}),
    Attempt("subscribe B's account", "POST", "/accounts/{b.account}/webhooks", {}),
    Attempt(
        "comment alerts of B's account",
        "POST",
        "/accounts/{b.account}/comment-alerts",
        {"comment_alerts": "on"},
    ),
    # comments
    Attempt("comments of B's post", "GET", "/inbox/comments/{b.ig_media}", control=True),
    *(
        Attempt(
            f"{verb} B's comment",
            "POST",
            f"/inbox/comments/{{b.ig_media}}/{{b.comment}}/{verb}",
            {"text": "Thanks!"},
        )
        for verb in ("hide", "unhide", "delete", "reply", "private-reply")
    ),
    Attempt(
        "hide B's comment under A's post",
        "POST",
        "/inbox/comments/{a.ig_media}/{b.comment}/hide",
        {},
    ),
    # analytics
    Attempt("analytics of B's account", "GET", "/analytics/?account={b.account}"),
    Attempt("analytics of B's post", "GET", "/analytics/posts/{b.ig_media}"),
    Attempt("account CSV of B", "GET", "/analytics/export/account.csv?account={b.account}"),
    Attempt("posts CSV of B", "GET", "/analytics/export/posts.csv?account={b.account}"),
    # approvals
    Attempt("state of B's draft", "GET", "/approvals/{b.draft}/state"),
    Attempt("approve B's draft", "POST", "/approvals/{b.draft}/approve", {}),
    Attempt("edit B's draft", "POST", "/approvals/{b.draft}/edit", {"text": "Hello there"}),
    Attempt("reject B's draft", "POST", "/approvals/{b.draft}/reject", {}),
    Attempt("new drafts after 0", "GET", "/approvals/new?after=0", answers=FILTERED),
    # posts (calendar, queue, detail)
    Attempt("B's post", "GET", "/posts/{b.post}"),
    Attempt("progress of B's post", "GET", "/posts/{b.post}/progress"),
    Attempt("retry B's post", "POST", "/posts/{b.post}/retry", {}),
    Attempt("publish B's post now", "POST", "/posts/{b.post}/publish-now", {}),
    Attempt("cancel B's post", "POST", "/posts/{b.post}/cancel", {}),
    Attempt(
        "reschedule B's post",
        "POST",
        "/posts/{b.post}/reschedule",
        json={"start": "2030-06-01T10:00"},
    ),
    Attempt("queue of B's account", "GET", "/posts/queue?account_id={b.account}", answers=FILTERED),
    Attempt(
        "calendar of B's account",
        "GET",
        "/posts/events?account_id={b.account}&start=2000-01-01T00:00:00Z&end=2100-01-01T00:00:00Z",
        answers=FILTERED,
    ),
    # composer
    Attempt(
        "compose for B's account",
        "POST",
        "/compose",
        {
            "account_ids": "{b.account}",
            "kind": "image",
            "media_ids": "{a.asset}",
            "action": "draft",
        },
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "compose with B's media",
        "POST",
        "/compose",
        {
            "account_ids": "{a.account}",
            "kind": "image",
            "media_ids": "{b.asset}",
            "action": "draft",
        },
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "compose a reel with B's cover",
        "POST",
        "/compose",
        {
            "account_ids": "{a.account}",
            "kind": "reel",
            "media_ids": "{b.asset}",
            "cover_id": "{b.asset}",
            "action": "draft",
        },
        answers=INVALID,
    ),
    Attempt(
        "composer preselecting B's account",
        "GET",
        "/compose?account_id={b.account}",
        answers=FILTERED,
    ),
    # inbox
    Attempt("B's conversation", "GET", "/inbox/{b.conversation}"),
    Attempt("B's messages", "GET", "/inbox/{b.conversation}/messages"),
    Attempt("reply to B's person", "POST", "/inbox/{b.conversation}/reply", {"text": "hi"}),
    Attempt("take over B's conversation", "POST", "/inbox/{b.conversation}/takeover", {}),
    Attempt("hand back B's conversation", "POST", "/inbox/{b.conversation}/handback", {}),
    Attempt("status of B's", "POST", "/inbox/{b.conversation}/status", {"status": "done"}),
    Attempt("assign B's", "POST", "/inbox/{b.conversation}/assign", {"user_id": ""}),
    Attempt("label B's", "POST", "/inbox/{b.conversation}/labels", {"labels": "x"}),
    Attempt("note on B's", "POST", "/inbox/{b.conversation}/notes", {"text": "x"}),
    Attempt("inbox of B's account", "GET", "/inbox?account_id={b.account}", answers=FILTERED),
    Attempt(
        "live thread of B", "GET", "/inbox/events?conversation={b.conversation}", answers=FILTERED
    ),
    # leads
    Attempt("B's lead", "GET", "/leads/{b.lead}"),
    Attempt("resend B's lead", "POST", "/leads/{b.lead}/resend", {}),
    Attempt("leads of B's account", "GET", "/leads?account_id={b.account}", answers=FILTERED),
    Attempt("leads of B's rule", "GET", "/leads?rule_id={b.rule}", answers=FILTERED),
    Attempt(
        "CSV of B's account", "GET", "/leads/export.csv?account_id={b.account}", answers=FILTERED
    ),
    Attempt("CSV of B's rule", "GET", "/leads/export.csv?rule_id={b.rule}", answers=FILTERED),
    # library
    Attempt("delete B's media", "POST", "/library/{b.asset}/delete", {}),
    # logs
    Attempt("audit of B's account", "GET", "/logs/audit?account={b.account}", answers=FILTERED),
    Attempt("events of B's account", "GET", "/logs/events?account={b.account}", answers=FILTERED),
    # rules
    Attempt("rules of B's account", "GET", "/rules?account_id={b.account}", answers=FILTERED),
    Attempt("editor of B's rule", "GET", "/rules/{b.rule}"),
    Attempt(
        "new rule page for B's account",
        "GET",
        "/rules/new?account_id={b.account}",
        answers=FILTERED,
    ),
    Attempt(
        "create a rule for B's account",
        "POST",
        "/rules/new",
        rule_form("{b.account}"),
        answers=INVALID,
        control=True,
    ),
    Attempt("replace B's rule", "POST", "/rules/{b.rule}", rule_form("{b.account}")),
    Attempt(
        "move A's rule to B's account",
        "POST",
        "/rules/{a.rule}",
        rule_form("{b.account}"),
        answers=INVALID,
        control=True,
    ),
    Attempt("switch B's rule off", "POST", "/rules/{b.rule}/active", {"active": "0"}),
    Attempt(
        "keep a variant of B's rule",
        "POST",
        "/rules/{b.rule}/variants/keep",
        {"step": "dm", "variant": "v1"},
    ),
    Attempt(
        "next-post rule for B's account",
        "POST",
        "/rules/next-post",
        {"account_id": "{b.account}"},
        answers=INVALID,
    ),
    Attempt("delete B's rule", "POST", "/rules/{b.rule}/delete", {}),
    Attempt(
        "test B's rule", "POST", "/rules/{b.rule}/test", {"kind": "comment", "sample": "price"}
    ),
    Attempt("test result of B's rule", "GET", "/rules/{b.rule}/test/result?key={b.event_key}"),
    Attempt(
        "B's event in A's test result",
        "GET",
        "/rules/{a.rule}/test/result?key={b.event_key}",
        answers=FILTERED,
    ),
    Attempt(
        "recent posts of B's account",
        "GET",
        "/rules/posts?account_id={b.account}",
        answers=FILTERED,
    ),
    # sandbox
    Attempt("sandbox of B's account", "GET", "/sandbox?account_id={b.account}", answers=FILTERED),
    Attempt("sandbox chat of B's account", "GET", "/sandbox/conversation?account_id={b.account}"),
    Attempt(
        "sandbox comment on B's account",
        "POST",
        "/sandbox/comment",
        {"account_id": "{b.account}", "username": "tester", "text": "price", "media_id": "1"},
    ),
    Attempt(
        "sandbox DM to B's account",
        "POST",
        "/sandbox/dm",
        {"account_id": "{b.account}", "username": "tester", "text": "price"},
    ),
    Attempt(
        "sandbox app reply on B's account",
        "POST",
        "/sandbox/app-reply",
        {"account_id": "{b.account}", "username": "tester", "text": "hi"},
    ),
    Attempt(
        "sandbox tap on B's account",
        "POST",
        "/sandbox/tap",
        {"account_id": "{b.account}", "username": "tester", "kind": "postback", "payload": "x"},
    ),
    # setup, team, tokens, workspace switch
    Attempt("unlink B's chat", "POST", "/setup/chats/{b.chat}/unlink", {}),
    Attempt(
        "mirror conversations to B's chat",
        "POST",
        "/setup/chats/mirror",
        {"chat_link_id": "{b.chat}"},
    ),
    Attempt(
        "revoke B's invitation", "POST", "/team/invites/{b.invite}/revoke", {}, answers=FLASHED
    ),
    Attempt(
        "change a role in B",
        "POST",
        "/team/members/{b.member}/role",
        {"role": "admin"},
        answers=FLASHED,
    ),
    Attempt("remove a member of B", "POST", "/team/members/{b.member}/remove", {}, answers=FLASHED),
    Attempt(
        "revoke B's API token", "POST", "/settings/api-tokens/{b.token}/revoke", {}, answers=FLASHED
    ),
    Attempt("B's webhook log", "GET", "/settings/webhooks/{b.hook}", control=True),
    Attempt("switch B's webhook", "POST", "/settings/webhooks/{b.hook}/switch", {}),
    Attempt("remove B's webhook", "POST", "/settings/webhooks/{b.hook}/delete", {}),
    Attempt("test B's webhook", "POST", "/settings/webhooks/{b.hook}/test", {}),
    Attempt(
        "re-send B's delivery",
        "POST",
        "/settings/webhooks/{a.hook}/deliveries/{b.hook_delivery}/resend",
        {},
    ),
    Attempt("API: B's webhook", "GET", "/api/v1/webhooks/{b.hook}", api=True, control=True),
    Attempt("API: B's webhook log", "GET", "/api/v1/webhooks/{b.hook}/deliveries", api=True),
    Attempt(
        "API: change B's webhook",
        "PUT",
        "/api/v1/webhooks/{b.hook}",
        json={"url": "https://alpha.example/in", "events": ["post.failed"]},
        api=True,
    ),
    Attempt("API: delete B's webhook", "DELETE", "/api/v1/webhooks/{b.hook}", api=True),
    Attempt("API: test B's webhook", "POST", "/api/v1/webhooks/{b.hook}/test", json={}, api=True),
    Attempt(
        "API: re-send B's delivery",
        "POST",
        "/api/v1/webhooks/{a.hook}/deliveries/{b.hook_delivery}/resend",
        json={},
        api=True,
    ),
    Attempt(
        "switch into B",
        "POST",
        "/account/workspace",
        {"workspace_id": "{b.workspace}"},
        answers=FLASHED,
    ),
    # JSON API with A's token
    Attempt("API: B's post", "GET", "/api/v1/posts/{b.post}", api=True),
    Attempt("API: B's account", "GET", "/api/v1/accounts/{b.account}", api=True, control=True),
    Attempt("API: health of B's account", "GET", "/api/v1/accounts/{b.account}/health", api=True),
    Attempt(
        "API: analytics of B's account",
        "GET",
        "/api/v1/analytics?account_id={b.account}",
        api=True,
        control=True,
    ),
    Attempt(
        "API: edit B's post",
        "PUT",
        "/api/v1/posts/{b.post}",
        json={"kind": "image", "media_ids": ["{a.asset}"], "caption": "x"},
        api=True,
    ),
    Attempt(
        "API: schedule B's post",
        "POST",
        "/api/v1/posts/{b.post}/schedule",
        json={"scheduled_at": LATER},
        api=True,
    ),
    Attempt("API: cancel B's post", "POST", "/api/v1/posts/{b.post}/cancel", json={}, api=True),
    Attempt("API: delete B's post", "DELETE", "/api/v1/posts/{b.post}", api=True),
    Attempt(
        "API: post for B's account",
        "POST",
        "/api/v1/posts",
        json={"account_id": "{b.account}", "kind": "image", "media_ids": ["{a.asset}"]},
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: post with B's media",
        "POST",
        "/api/v1/posts",
        json={"account_id": "{a.account}", "kind": "image", "media_ids": ["{b.asset}"]},
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: A's post edited to B's media",
        "PUT",
        "/api/v1/posts/{a.post}",
        json={"kind": "image", "media_ids": ["{b.asset}"], "caption": "x"},
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: posts of B's account",
        "GET",
        "/api/v1/posts?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
    Attempt("API: B's rule", "GET", "/api/v1/rules/{b.rule}", api=True),
    Attempt("API: variants of B's rule", "GET", "/api/v1/rules/{b.rule}/variants", api=True),
    Attempt(
        "API: replace B's rule",
        "PUT",
        "/api/v1/rules/{b.rule}",
        json=rule_body("{b.account}"),
        api=True,
    ),
    Attempt("API: activate B's rule", "POST", "/api/v1/rules/{b.rule}/activate", json={}, api=True),
    Attempt(
        "API: deactivate B's rule", "POST", "/api/v1/rules/{b.rule}/deactivate", json={}, api=True
    ),
    Attempt("API: delete B's rule", "DELETE", "/api/v1/rules/{b.rule}", api=True),
    Attempt(
        "API: rule for B's account",
        "POST",
        "/api/v1/rules",
        json=rule_body("{b.account}"),
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: A's rule moved to B's account",
        "PUT",
        "/api/v1/rules/{a.rule}",
        json=rule_body("{b.account}"),
        api=True,
        answers=INVALID,
        control=True,
    ),
    Attempt(
        "API: rules of B's account",
        "GET",
        "/api/v1/rules?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
    Attempt(
        "API: approve B's draft", "POST", "/api/v1/drafts/{b.draft}/approve", json={}, api=True
    ),
    Attempt(
        "API: edit B's draft",
        "POST",
        "/api/v1/drafts/{b.draft}/edit",
        json={"text": "Hi"},
        api=True,
    ),
    Attempt("API: reject B's draft", "POST", "/api/v1/drafts/{b.draft}/reject", json={}, api=True),
    Attempt("API: drafts", "GET", "/api/v1/drafts", api=True, answers=FILTERED),
    # the inbox through the API
    Attempt("API: B's conversation", "GET", "/api/v1/conversations/{b.conversation}", api=True),
    Attempt(
        "API: B's messages", "GET", "/api/v1/conversations/{b.conversation}/messages", api=True
    ),
    Attempt(
        "API: reply to B's person",
        "POST",
        "/api/v1/conversations/{b.conversation}/messages",
        json={"text": "hi"},
        api=True,
    ),
    *(
        Attempt(
            f"API: {what} B's conversation",
            "POST",
            f"/api/v1/conversations/{{b.conversation}}/{what}",
            json=body,
            api=True,
        )
        for what, body in (
            ("takeover", {"hours": 2}),
            ("handback", {}),
            ("assign", {"user_id": None}),
            ("status", {"status": "done"}),
            ("labels", {"labels": ["x"]}),
            ("notes", {"text": "x"}),
        )
    ),
    Attempt(
        "API: conversations of B's account",
        "GET",
        "/api/v1/conversations?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
    Attempt(
        "API: leads of B's account",
        "GET",
        "/api/v1/leads?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
    Attempt(
        "API: leads of B's rule",
        "GET",
        "/api/v1/leads?rule_id={b.rule}",
        api=True,
        answers=FILTERED,
    ),
    Attempt(
        "API: CSV of B's account",
        "GET",
        "/api/v1/leads/export?account_id={b.account}",
        api=True,
        answers=FILTERED,
    ),
]


@pytest.fixture
async def two(sqlite_db: str, container: Any) -> Two:
    return await two_workspaces(container)


def _as_text(value: Any) -> Any:
    """Form values are strings."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return str(value)


async def _send(client: Any, attempt: Attempt, two: Two, side: str) -> tuple[int, str]:
    """Make ``attempt`` as A; ``side`` "a" swaps every B identifier for A's (the control)."""
    sides = {"a": two.a.ids(), "b": two.a.ids() if side == "a" else two.b.ids()}
    path = fill_ids(attempt.path, sides)
    headers = {"X-CSRF-Token": CSRF}
    kwargs: dict[str, Any] = {}
    if attempt.api:
        headers["Authorization"] = f"Bearer {two.a.secret}"
    if attempt.json is not None:
        kwargs["json"] = fill_ids(attempt.json, sides)
    elif attempt.form is not None:
        form = {k: _as_text(fill_ids(v, sides)) for k, v in attempt.form.items()}
        kwargs["form"] = {"csrf_token": CSRF, **form}
    response = await client.open(path, method=attempt.method, headers=headers, **kwargs)
    body = await response.get_data(as_text=True)
    if response.status_code in (302, 303) and not attempt.api:
        # What the user sees next: the page with the flashed message.
        after = await client.get(response.headers["Location"])
        body += await after.get_data(as_text=True)
    return response.status_code, body


@pytest.mark.parametrize("attempt", ATTEMPTS, ids=[a.name for a in ATTEMPTS])
async def test_another_workspaces_objects_are_out_of_reach(
    app: Any, two: Two, attempt: Attempt
) -> None:
    client = app.test_client()
    await sign_in_as(client, two.a.owner, two.a.workspace.id)
    before = await snapshot()
    status, body = await _send(client, attempt, two, "b")
    assert status in attempt.answers, f"{attempt.method} answered {status}: {body[:300]}"
    assert SECRET not in body.lower(), f"B shows through: {_around(body)}"
    assert await snapshot() == before, "the refused request changed something"
    if attempt.answers == FILTERED and "{b." not in attempt.path:
        assert "alpha" in body.lower(), "A's own list is empty: the check above proves nothing"
    if attempt.control:
        status, body = await _send(client, attempt, two, "a")
        assert status < 400, f"with A's own ids: {status}: {body[:500]}"


def _around(body: str) -> str:
    at = body.lower().index(SECRET)
    return body[max(at - 150, 0) : at + 150]
