"""Tracked links, pure parts: finding and rewriting links, UTM tags, bots, codes, the funnel."""

from __future__ import annotations

from core.domain import tracked_links as links
from core.domain.messages import button_message, text_message
from core.domain.rules import Button


def test_links_in_text_buttons_and_cards_are_rewritten_and_punctuation_kept() -> None:
    message = button_message(
        "See https://shop.example/a?x=1. Or (https://shop.example/b)!",
        [Button(title="Shop", url="https://shop.example/c"), Button(title="Yes", payload="YES")],
    )
    assert links.urls_in(message) == [
        "https://shop.example/a?x=1",
        "https://shop.example/b",
        "https://shop.example/c",
    ]
    out = links.rewrite_message(message, lambda url: "https://r.example/l/" + url[-1])
    payload = out["attachment"]["payload"]
    assert payload["text"] == "See https://r.example/l/1. Or (https://r.example/l/b)!"
    assert payload["buttons"][0]["url"] == "https://r.example/l/c"
    assert payload["buttons"][1] == {"type": "postback", "title": "Yes", "payload": "YES"}
    assert message["attachment"]["payload"]["buttons"][0]["url"] == "https://shop.example/c"


def test_card_buttons_and_default_actions_are_links_too() -> None:
    card = {
        "title": "Shoe",
        "default_action": {"type": "web_url", "url": "https://shop.example/shoe"},
        "buttons": [{"type": "web_url", "url": "https://shop.example/buy", "title": "Buy"}],
    }
    message = {"attachment": {"type": "template", "payload": {"elements": [card]}}}
    assert set(links.urls_in(message)) == {"https://shop.example/shoe", "https://shop.example/buy"}
    out = links.rewrite_message(message, str.upper)
    (element,) = out["attachment"]["payload"]["elements"]
    assert element["default_action"]["url"] == "HTTPS://SHOP.EXAMPLE/SHOE"
    assert element["buttons"][0]["url"] == "HTTPS://SHOP.EXAMPLE/BUY"


def test_text_without_links_is_unchanged() -> None:
    assert links.urls_in(text_message("no links here")) == []


def test_utm_tags_are_added_without_replacing_the_links_own() -> None:
    url = links.with_utm("https://shop.example/p?utm_source=ig&a=1", campaign="sale", medium="dm")
    assert url == "https://shop.example/p?utm_source=ig&a=1&utm_medium=dm&utm_campaign=sale"


def test_rule_slug() -> None:
    assert links.rule_slug("Spring Sale — Été 2026!", 4) == "spring-sale-ete-2026"
    assert links.rule_slug("🔥🔥", 4) == "rule-4"


def test_only_preview_bots_are_bots() -> None:
    for agent in (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "meta-externalagent/1.1",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Twitterbot/1.0",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    ):
        assert links.is_preview_bot(agent), agent
    for agent in (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 Instagram 300.0.0.0 (iPhone14,2; iOS 17_0)",
        "curl/8.5.0",
        "",
    ):
        assert not links.is_preview_bot(agent), agent


def test_codes_are_random_and_keys_are_per_person_and_target() -> None:
    codes = {links.new_code() for _ in range(100)}
    assert len(codes) == 100 and all(links.is_code(c) for c in codes)
    assert not links.is_code("../../etc") and not links.is_code("short")
    key = links.link_key(1, "dm", "v1", "p1", "https://a.example")
    assert key == links.link_key(1, "dm", "v1", "p1", "https://a.example")
    assert key != links.link_key(1, "dm", "v1", "p2", "https://a.example")
    assert key != links.link_key(1, "dm", "v2", "p1", "https://a.example")


def test_funnel_shows_dm_opened_only_where_reads_were_reported() -> None:
    funnel = links.Funnel(triggered=3, replied=3, opened=None, clicked=1, clicks=2, leads=1)
    assert [name for name, _ in funnel.stages()] == ["Triggered", "Replied", "Clicked", "Lead"]
    read = links.Funnel(triggered=3, replied=3, opened=2, clicked=1, clicks=2, leads=1)
    assert ("DM opened", 2) in read.stages()


def test_variant_is_the_variation_that_was_sent() -> None:
    assert links.variant_of(["A {x}", "B {x}"], "B 1", lambda t: t.replace("{x}", "1")) == "v2"
    assert links.variant_of([], "anything", str) == "v1"
