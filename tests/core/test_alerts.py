"""How each alert reads in chat."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from core.domain import alerts
from core.domain.chat import ActionVerb

CTX = alerts.AlertContext(timezone="Europe/Berlin", panel_url="https://r.example", workspace="Cafe")


@pytest.mark.parametrize(
    ("kind", "facts", "says", "link"),
    [
        (
            "post.published",
            {
                "post_id": 3,
                "username": "cafe",
                "permalink": "https://ig/p/1",
                "caption_snippet": "Hi",
            },
            "✅ Published post #3 on @cafe: Hi",
            "https://ig/p/1",
        ),
        (
            "post.failed",
            {"post_id": 3, "username": "cafe", "reason": "The image URL is not public"},
            "failed: The image URL is not public\nWhat to do:",
            "https://r.example/posts/3",
        ),
        (
            "post.deferred",
            {"post_id": 3, "reason": "daily limit", "until": "2025-03-05T20:00:00+00:00"},
            "tried again at Wed 5 Mar 2025, 21:00 Europe/Berlin (UTC+01:00)",
            None,
        ),
        (
            "lead.captured",
            {"person": "@fan", "username": "cafe", "rule": "Price", "fields": {"email": "a@b.c"}},
            "🎯 New lead from @fan on @cafe via “Price”\nemail: a@b.c",
            "https://r.example/leads",
        ),
        ("account.needs_reconnect", {"username": "cafe"}, "needs to be reconnected", None),
        (
            "account.disconnected",
            {"username": "cafe", "reason": "token revoked"},
            "token revoked",
            None,
        ),
        (
            "token.expiring",
            {"username": "cafe", "expires_at": "2025-03-12T09:00:00+00:00"},
            "expires Wed 12 Mar 2025, 10:00 Europe/Berlin",
            "https://r.example/accounts",
        ),
        (
            "ai.quota_reached",
            {"month": "2025-03", "used": 10, "quota": 9},
            "(10 of 9 tokens)",
            None,
        ),
        (
            "ai.reply_failed",
            {
                "person": "@fan · Ana · 12.3k followers",
                "username": "cafe",
                "rule_name": "Prices",
                "error": "the AI server timed out",
                "inbound_text": "How much?",
            },
            "⚠️ No AI reply was sent to @fan · Ana · 12.3k followers on @cafe (rule “Prices”): "
            "the AI server timed out. They wrote: How much?",
            "https://r.example/setup#step-ai",
        ),
        ("something.new", {"x": 1}, "Reelay has no words for", None),
    ],
)
def test_each_kind_says_what_happened(
    kind: str, facts: dict[str, object], says: str, link: str | None
) -> None:
    reply = alerts.render_event(kind, facts, CTX)
    assert says in reply.text
    urls = [b.url for b in reply.all_buttons() if b.url]
    if link:
        assert link in urls


def test_draft_pending_has_buttons_and_decided_has_none() -> None:
    facts = alerts.DraftFacts(
        id=5,
        status="pending",
        inbound_text="Price?",
        proposed_text="€5",
        final_text=None,
        channel="DM",
        person="@fan",
        rule="Prices",
        decided_by="",
        decided_at=None,
    )
    pending = alerts.render_draft(facts, CTX)
    assert [b.action.verb for b in pending.all_buttons() if b.action] == [
        ActionVerb.APPROVE,
        ActionVerb.EDIT,
        ActionVerb.REJECT,
    ]
    edited = replace(
        facts,
        status="edited",
        final_text="€5, see you",
        decided_by="eda@example.com",
        decided_at=datetime(2025, 3, 5, 9, 0, tzinfo=UTC),
    )
    done = alerts.render_draft(edited, CTX)
    assert done.text.startswith("✏️ Edited and sent by eda@example.com at Wed 5 Mar 2025, 10:00")
    assert "Sent instead: €5, see you" in done.text and not done.buttons
    expired = alerts.render_draft(replace(facts, status="expired"), CTX)
    assert expired.text.startswith("⌛ Expired, nothing was sent")


def _recorded_kinds() -> set[str]:
    """Every event kind a call in core/ or jobs/ records: ``DomainEvent.create(kind=…)``, the
    services' ``_event(…, kind)`` and ``announce(…, kind)`` helpers and ``_leave(event=…)``."""
    import ast
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found: set[str] = set()
    for path in [*root.joinpath("core").rglob("*.py"), *root.joinpath("jobs").rglob("*.py")]:
        module_name = ".".join(path.relative_to(root).with_suffix("").parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module = None
        for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
            name = ast.unparse(call.func)
            candidates: list[ast.expr] = [k.value for k in call.keywords if k.arg == "event"]
            if name.endswith("DomainEvent.create"):
                candidates += [k.value for k in call.keywords if k.arg == "kind"]
            elif name.split(".")[-1] in {"_event", "_announce", "announce", "store_event"}:
                candidates += call.args[1:2]
            for node in candidates:
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
                elif isinstance(node, ast.Name | ast.Attribute):
                    module = module or importlib.import_module(module_name)
                    value: object = module
                    for part in ast.unparse(node).split("."):
                        value = getattr(value, part, None)
                    if isinstance(value, str):
                        found.add(value)
    return found


def test_every_recorded_kind_has_a_sentence_without_raw_keys() -> None:
    kinds = _recorded_kinds()
    # The scan sees the kinds the services record (not only the ones this file names).
    assert {"post.published", "post.failed", "post.deferred", "lead.captured"} <= kinds
    assert {"ai.reply_failed", "draft.approval_needed", "token.expiring"} <= kinds
    assert kinds <= set(alerts.SENTENCES), kinds - set(alerts.SENTENCES)
    facts = {"post_id": 3, "username": "cafe", "person": "@fan", "igsid": "178", "x": "y"}
    for kind in alerts.SENTENCES:
        for given in ({}, facts):
            text = alerts.render_event(kind, given, CTX).text
            assert kind not in text and "igsid" not in text and "{" not in text, (kind, text)
            assert "None" not in text and "no words" not in text, (kind, text)
