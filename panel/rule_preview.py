"""The rule editor's live preview: the rule played as a person would receive it.

The public reply, the DM (with its buttons or quick replies), its follow-up, and the lead flow
answered with sample answers, first option of every choice; always the first variation, so
the preview is stable while typing.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.domain import lead_flow
from core.domain.ai_replies import ApprovalMode
from core.domain.messages import Person, comment_reply, dm_message, follow_up_message
from core.domain.rule_definition import RuleDefinition
from core.domain.rules import COMMENT_TRIGGERS

SAMPLE_ANSWERS = {
    "email": "ana@example.com",
    "phone": "+14155552671",
    "name": "Ana",
    "custom": "Sample answer",
}

# What a new lead flow's last step says (the builder adds it; the preview notes its absence).
CLOSING_MESSAGE = "Thank you, {first_name}! We have your details and will be in touch soon."
SILENT_END = (
    "The flow ends here without a closing message: the person hears nothing after their "
    "last answer. Add a step that sends one."
)


@dataclass(frozen=True)
class Bubble:
    """One message in the preview: ``who`` is "person", "public" (a reply under the
    comment), "dm" or "note" (what happens without a message)."""

    who: str
    text: str
    buttons: tuple[str, ...] = ()
    quick_replies: tuple[str, ...] = ()
    cards: tuple[PreviewCard, ...] = ()


@dataclass(frozen=True)
class PreviewCard:
    title: str
    subtitle: str = ""
    image_url: str = ""
    buttons: tuple[str, ...] = ()


def preview(
    rule: RuleDefinition, sample: str = "", *, username: str = "sample_follower"
) -> list[Bubble]:
    """What a person writing ``sample`` would receive from ``rule`` (first variations)."""
    person = Person(username=username, first_name="", link=rule.reply_link)
    rng = _FirstChoice()
    said = sample or (rule.keywords[0] if rule.keywords else "Hello!")
    bubbles = [*_scope_notes(rule), Bubble("person", _said(rule.trigger, said))]
    if rule.trigger in COMMENT_TRIGGERS:
        reply = comment_reply(rule, person, rng)
        if reply:
            bubbles.append(Bubble("public", reply))
        if rule.hide_comment:
            bubbles.append(Bubble("note", "The comment is hidden: your followers no longer see it"))
    if rule.delay_s:
        bubbles.append(Bubble("note", f"Sent after {rule.delay_minutes:g} min"))
    if rule.ai is not None and rule.dm_type == "ai":
        held = rule.ai.approval == ApprovalMode.APPROVE.value
        bubbles.append(
            Bubble(
                "note",
                "An AI answer written from your instructions"
                + (", held until a teammate approves it" if held else ", sent at once"),
            )
        )
        return bubbles
    if rule.starts_flow:
        flow = rule.flow()
        consented = rule.trigger != "comment"
        turn = lead_flow.start(flow, 0, person, rng, consented=consented)
        checks = 0 if consented else 1  # from a comment, the first ask needs no check
        for _ in range(lead_flow.MAX_STEPS_PER_TURN):
            if turn.status == "check_follow" and turn.state is not None:
                # The preview's person follows once asked to.
                bubbles.append(Bubble("note", FOLLOW_NOTES[min(checks, 1)]))
                turn = lead_flow.followed(flow, turn.state, checks > 0, person, rng)
                checks += 1
            bubbles.extend(_turn_bubbles(turn))
            if turn.state is None or turn.status not in {"waiting", "invalid"}:
                break
            step = flow.steps[turn.state["at"]]
            reply, payload = _sample_answer(step)
            bubbles.append(Bubble("person", reply))
            turn = lead_flow.answer(flow, turn.state, reply, person, rng, payload=payload)
            if turn.status not in {"waiting", "check_follow"}:
                bubbles.extend(_turn_bubbles(turn))
                break
        if turn.status == "completed" and turn.message() is None:
            bubbles.append(Bubble("note", SILENT_END))
        return bubbles
    message = dm_message(rule, person, rng)
    if message is not None:
        bubbles.append(_bubble(message))
        bubbles.extend(_follow_up(rule, person))
    return bubbles


def wait_words(minutes: int) -> str:
    """A follow-up's wait in words: "2 h", "1 h 30 min", "45 min"."""
    hours, rest = divmod(max(0, minutes), 60)
    parts = ([f"{hours} h"] if hours else []) + ([f"{rest} min"] if rest or not hours else [])
    return " ".join(parts)


def _follow_up(rule: RuleDefinition, person: Person) -> list[Bubble]:
    message = follow_up_message(rule, person, 0)
    if rule.follow_up is None or message is None:
        return []
    note = (
        f"Sent {wait_words(rule.follow_up.wait_minutes)} later if they haven't answered; "
        "never after the 24-h window"
    )
    if rule.trigger in COMMENT_TRIGGERS:
        note += " (after a comment, only if they wrote to you in the last 24 h)"
    return [Bubble("note", note), _bubble(message)]


def _scope_notes(rule: RuleDefinition) -> list[Bubble]:
    notes = []
    if rule.waiting_for_post:
        notes.append("Waiting for your next post: it answers comments on that post once published")
    if rule.trigger == "comment" and rule.ad_comments == "only":
        notes.append("Only comments on your ads")
    elif rule.trigger == "comment" and rule.ad_comments == "skip":
        notes.append("Comments on your ads are left alone")
    return [Bubble("note", text) for text in notes]


FOLLOW_NOTES = (
    "Instagram is asked whether they follow you: not yet",
    "Instagram is asked again: they follow you now",
)


class _FirstChoice(random.Random):
    """Always the first variation: the preview is stable while typing."""

    def randrange(self, start: int, *args: Any, **kwargs: Any) -> int:
        return 0


def _said(trigger: str, text: str) -> str:
    if trigger == "story_mention":
        return "(mentions you in their story)"
    if trigger == "story_reply":
        return f"(replies to your story) {text}"
    if trigger == "postback":
        return f"(taps a button) {text}"
    if trigger == "live_comment":
        return f"(comments on your Live) {text}"
    return text


def _sample_answer(step: lead_flow.Step) -> tuple[str, str]:
    if step.options:
        return step.options[0].title, step.options[0].payload
    return SAMPLE_ANSWERS.get(step.field, SAMPLE_ANSWERS["custom"]), ""


def _turn_bubbles(turn: lead_flow.FlowTurn) -> list[Bubble]:
    found: list[Bubble] = []
    message = turn.message()
    if message is not None:
        found.append(_bubble(message))
    if turn.lead is not None:
        saved = ", ".join(f"{k}: {v}" for k, v in turn.lead.items())
        found.append(Bubble("note", f"Lead saved ({saved})"))
    return found


def _bubble(message: Mapping[str, Any]) -> Bubble:
    if "attachment" in message:
        payload = message["attachment"]["payload"]
        if isinstance(payload.get("elements"), list):
            return Bubble(
                "dm",
                "",
                cards=tuple(
                    PreviewCard(
                        title=str(e.get("title", "")),
                        subtitle=str(e.get("subtitle", "")),
                        image_url=str(e.get("image_url", "")),
                        buttons=tuple(str(b.get("title", "")) for b in e.get("buttons", [])),
                    )
                    for e in payload["elements"]
                ),
            )
        return Bubble(
            "dm",
            str(payload.get("text", "")),
            buttons=tuple(str(b.get("title", "")) for b in payload.get("buttons", [])),
        )
    return Bubble(
        "dm",
        str(message.get("text", "")),
        quick_replies=tuple(str(q.get("title", "")) for q in message.get("quick_replies", [])),
    )
