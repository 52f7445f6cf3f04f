"""Lead-capture flows: pure stepping through ``ask`` / ``save`` / ``send`` / ``branch`` steps.

A flow is the rule's ``lead_capture_flow`` list (the stored shape, which
``RuleDefinition.stored_columns`` writes):

- ``ask``: ``text``, ``field_type`` or ``field`` (``email``, ``phone``, ``name``, ``text`` or
  ``custom`` with ``key``), optional ``validation``, ``retry_message``, ``max_attempts``
  (default 3), ``give_up_message``, ``quick_replies`` (titles or {title, payload}).
- ``save``: the answers so far become a lead (once per flow; a flow that ends with answers
  and no ``save`` step saves at the end).
- ``send``: ``message`` and/or ``message_variations``, with placeholders.
- ``branch``: ``text`` and ``options`` [{title, payload, goto}]; the person's quick-reply tap
  (or typed title) chooses where to go; ``goto`` names a step ``id`` or ``step`` number, or
  ``end``. Any step may carry ``goto`` too.
- ``wait``: kept for old configs; an ``ask`` already waits for the reply.
- ``follow`` (must follow): the flow goes on only once the person follows the account. Meta
  answers ``is_user_follow_business`` only after the person wrote or tapped, so a flow that
  reaches the step on a message or a tap is ``check_follow`` (the caller asks Meta and calls
  :func:`followed`); on a comment it sends ``text`` ("Follow us, then tap Done") with a Done
  postback button at once. Any reply while waiting there (the Done tap) checks again. Texts
  of the steps before it wait in the state (``pending``) for the check.

Each turn of the flow produces at most one message (consecutive texts are joined), so a
flow started from a comment fits in the one private reply Meta allows.

**A new keyword mid-flow.** While a conversation waits for an answer, its next DM is the
answer first. If that DM is not a valid answer *and* it names a keyword of a ``dm`` rule
(``whole_word``/``contains``/``exact``; ``any`` rules never interrupt), the flow is dropped
and that rule runs: the person changed the subject. Otherwise the question is asked again
(until ``max_attempts``). A valid answer always wins, even if it contains a keyword.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from core.domain.messages import (
    Person,
    button_message,
    choose,
    fit_bytes,
    quick_reply_message,
    render,
)
from core.domain.rules import Button, normalize

STANDARD_FIELDS = ("email", "phone", "name")
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_RETRY = {
    "email": "That doesn't look like an email address. Could you check it and send it again?",
    "phone": "That doesn't look like a phone number. Please send it with the country code.",
    "name": "Sorry, I didn't catch your name. Could you send it again?",
    "custom": "Sorry, I didn't get that. Could you answer again?",
    "choice": "Please pick one of the options.",
}
DEFAULT_GIVE_UP = "No problem, we'll leave it there. Write to us any time!"
DEFAULT_FOLLOW = "Follow us, then tap Done to continue."
FOLLOW_DONE = "REELAY_FOLLOW_DONE"
FOLLOW_BUTTON = "Done"
MAX_STEPS_PER_TURN = 64
STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,20}$")

Status = Literal["waiting", "invalid", "completed", "gave_up", "check_follow"]


@dataclass(frozen=True)
class Option:
    title: str
    payload: str
    goto: str = ""


@dataclass(frozen=True)
class Step:
    kind: str
    id: str = ""
    texts: tuple[str, ...] = ()
    field: str = ""  # email, phone, name, custom (ask); empty for other kinds
    key: str = ""  # where the answer is stored
    retry_text: str = ""
    give_up_text: str = ""
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    options: tuple[Option, ...] = ()
    goto: str = ""


@dataclass(frozen=True)
class LeadFlow:
    steps: tuple[Step, ...]
    phone_region: str | None = None

    @classmethod
    def from_config(
        cls, steps: Sequence[Mapping[str, Any]], settings: Mapping[str, Any] | None = None
    ) -> LeadFlow:
        region = (settings or {}).get("phone_region")
        return cls(
            steps=tuple(read_step(raw, i) for i, raw in enumerate(steps)),
            phone_region=region.upper() if isinstance(region, str) and region else None,
        )

    def index_of(self, target: str, after: int) -> int | None:
        """The step ``target`` names (id or step number); ``after + 1`` when empty; None: end."""
        if not target:
            return after + 1
        if target == "end":
            return None
        for i, step in enumerate(self.steps):
            if step.id == target:
                return i
        return None


@dataclass(frozen=True)
class FlowTurn:
    """What one step of the conversation produced."""

    status: Status
    texts: tuple[str, ...] = ()
    quick_replies: tuple[Button, ...] = ()
    state: dict[str, Any] | None = None  # None: the flow is over
    lead: dict[str, Any] | None = None  # fields to store as a lead (at a save step)
    buttons: tuple[Button, ...] = ()  # postback buttons (the follow step's Done)

    def message(self) -> dict[str, Any] | None:
        """This turn's one message (texts joined, quick replies or buttons attached), or None."""
        text = "\n\n".join(t for t in self.texts if t)
        if not text:
            return None
        if self.buttons:
            return button_message(text, self.buttons)
        return quick_reply_message(fit_bytes(text), self.quick_replies)


def start(
    flow: LeadFlow,
    rule_id: int,
    person: Person,
    rng: random.Random,
    *,
    consented: bool = True,
) -> FlowTurn:
    """Run ``flow`` from its first step up to its first question (or its end).

    ``consented``: the person wrote or tapped (a comment is not enough for Meta to say
    whether they follow the account)."""
    state: dict[str, Any] = {"rule_id": rule_id, "at": 0, "attempts": 0, "answers": {}}
    turn = _run(flow, 0, state, person, rng, ())
    if turn.status == "check_follow" and not consented and turn.state is not None:
        return followed(flow, turn.state, False, person, rng)
    return turn


def followed(
    flow: LeadFlow,
    state: Mapping[str, Any],
    following: bool,
    person: Person,
    rng: random.Random,
) -> FlowTurn:
    """Go on from the follow step ``state`` waits at: past it when the person follows,
    else ask them to follow and tap Done (the step waits for the tap)."""
    current = dict(state)
    at = current.get("at")
    pending = tuple(str(t) for t in current.pop("pending", None) or ())
    current.pop("check_follow", None)
    if not isinstance(at, int) or not 0 <= at < len(flow.steps):
        return FlowTurn(status="completed", texts=pending)
    step = flow.steps[at]
    if step.kind != "follow":
        return FlowTurn(status="waiting", texts=pending, state=current)
    if following:
        current["following"] = True
        current["attempts"] = 0
        nxt = flow.index_of(step.goto, at)
        if nxt is None:
            return _finish(current, pending)
        return _run(flow, nxt, current, person, rng, pending)
    text = render(choose(step.texts or (DEFAULT_FOLLOW,), rng), person)
    return FlowTurn(
        status="waiting",
        texts=(*pending, text),
        buttons=_buttons(step.options),
        state=current,
    )


def answer(
    flow: LeadFlow,
    state: Mapping[str, Any],
    text: str,
    person: Person,
    rng: random.Random,
    *,
    payload: str = "",
) -> FlowTurn:
    """Feed the person's reply (``text``, or a quick-reply ``payload``) to the waiting step."""
    current = dict(state)
    current["answers"] = dict(state.get("answers") or {})
    at = current.get("at")
    if not isinstance(at, int) or not 0 <= at < len(flow.steps):
        return FlowTurn(status="completed")
    step = flow.steps[at]
    if step.kind == "follow":  # the Done tap, or anything they write: ask Meta again
        current["check_follow"] = True
        current["checks"] = int(current.get("checks") or 0) + 1
        return FlowTurn(status="check_follow", state=current)
    reply = text.strip() or payload.strip()
    if step.kind == "branch" or (step.kind == "ask" and step.options and payload):
        option = _chosen(step.options, payload, text)
        if option is not None:
            if step.key:
                current["answers"][step.key] = option.payload
            return _advance(flow, at, option.goto or step.goto, current, person, rng)
        if step.kind == "branch":
            return _retry(flow, step, current, person)
    value = validate(step.field, reply, region=flow.phone_region)
    if value is None:
        return _retry(flow, step, current, person)
    current["answers"][step.key] = value
    return _advance(flow, at, step.goto, current, person, rng)


def validate(kind: str, value: str, *, region: str | None = None) -> str | None:
    """The cleaned answer for a field of ``kind``, or None when it is not acceptable."""
    value = value.strip()
    if not value:
        return None
    if kind == "email":
        try:
            return validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError:
            return None
    if kind == "phone":
        try:
            number = phonenumbers.parse(value, region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind == "name":
        if len(value) > 120 or not any(ch.isalpha() for ch in value):
            return None
        return " ".join(value.split())
    return value[:1000]


def lead_fields(answers: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """Split answers into the Lead's standard columns and its custom fields."""
    standard = {k: str(v) for k, v in answers.items() if k in STANDARD_FIELDS}
    custom = {k: v for k, v in answers.items() if k not in STANDARD_FIELDS}
    return standard, custom


# ---------------------------------------------------------------- internals


def _advance(
    flow: LeadFlow,
    at: int,
    goto: str,
    state: dict[str, Any],
    person: Person,
    rng: random.Random,
) -> FlowTurn:
    nxt = flow.index_of(goto, at)
    state["attempts"] = 0
    if nxt is None:
        return _finish(state, ())
    return _run(flow, nxt, state, person, rng, ())


def _run(
    flow: LeadFlow,
    index: int,
    state: dict[str, Any],
    person: Person,
    rng: random.Random,
    texts: tuple[str, ...],
) -> FlowTurn:
    lead: dict[str, Any] | None = None
    visited = 0
    i: int | None = index
    while i is not None and i < len(flow.steps) and visited < MAX_STEPS_PER_TURN:
        visited += 1
        step = flow.steps[i]
        if step.kind in {"ask", "branch"}:
            if step.texts:
                texts = (*texts, render(choose(step.texts, rng), person))
            state["at"] = i
            state["attempts"] = 0
            return FlowTurn(
                status="waiting",
                texts=texts,
                quick_replies=_buttons(step.options),
                state=state,
                lead=lead,
            )
        if step.kind == "follow" and not state.get("following"):
            state.update(at=i, attempts=0, check_follow=True, pending=list(texts), checks=1)
            return FlowTurn(status="check_follow", state=state, lead=lead)
        if step.kind == "send" and step.texts:
            texts = (*texts, render(choose(step.texts, rng), person))
        elif step.kind == "save" and not state.get("saved"):
            state["saved"] = True
            lead = dict(state["answers"])
        elif step.kind == "end":
            break
        i = flow.index_of(step.goto, i)
    turn = _finish(state, texts)
    if lead is not None:
        return FlowTurn(status="completed", texts=turn.texts, lead=lead)
    return turn


def _finish(state: dict[str, Any], texts: tuple[str, ...]) -> FlowTurn:
    lead = None
    if not state.get("saved") and state.get("answers"):
        lead = dict(state["answers"])
    return FlowTurn(status="completed", texts=texts, lead=lead)


def _retry(flow: LeadFlow, step: Step, state: dict[str, Any], person: Person) -> FlowTurn:
    state["attempts"] = int(state.get("attempts") or 0) + 1
    if state["attempts"] >= step.max_attempts:
        return FlowTurn(status="gave_up", texts=(render(step.give_up_text, person),))
    kind = "choice" if step.kind == "branch" else step.field
    text = render(step.retry_text or DEFAULT_RETRY.get(kind, DEFAULT_RETRY["custom"]), person)
    return FlowTurn(
        status="invalid", texts=(text,), quick_replies=_buttons(step.options), state=state
    )


def _chosen(options: Sequence[Option], payload: str, text: str) -> Option | None:
    if payload:
        for option in options:
            if option.payload == payload:
                return option
    typed = normalize(text)
    if typed:
        for option in options:
            if normalize(option.title) == typed or normalize(option.payload) == typed:
                return option
    return None


def _buttons(options: Sequence[Option]) -> tuple[Button, ...]:
    return tuple(Button(title=o.title, payload=o.payload) for o in options)


def _texts(raw: Mapping[str, Any], *names: str) -> tuple[str, ...]:
    found: list[str] = []
    for name in names:
        value = raw.get(name)
        values = value if isinstance(value, list) else [value]
        found.extend(v.strip() for v in values if isinstance(v, str) and v.strip())
    return tuple(dict.fromkeys(found))


def _options(raw: Any) -> tuple[Option, ...]:
    options: list[Option] = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, str) and item.strip():
            options.append(Option(title=item.strip(), payload=item.strip()))
        elif isinstance(item, Mapping):
            title = str(item.get("title") or item.get("text") or "").strip()
            if title:
                payload = str(item.get("payload") or title).strip()
                options.append(Option(title, payload, str(item.get("goto") or "").strip()))
    return tuple(options)


def read_step(raw: Mapping[str, Any], position: int) -> Step:
    """One stored step (seed shape), read leniently; an unknown kind is skipped."""
    kind = str(raw.get("type") or "send").strip().lower()
    ident = str(raw.get("id") or raw.get("step") or position + 1).strip()
    goto = str(raw.get("goto") or "").strip()
    if kind == "ask":
        declared = str(raw.get("field_type") or raw.get("validation") or "").lower()
        named = str(raw.get("field") or "").lower()
        field_kind = next(
            (k for k in (declared, named) if k in STANDARD_FIELDS),
            "custom",
        )
        key = field_kind
        if field_kind == "custom":
            key = str(raw.get("key") or raw.get("field") or f"answer_{ident}").strip()
        attempts = raw.get("max_attempts")
        return Step(
            kind="ask",
            id=ident,
            texts=_texts(raw, "text", "message", "message_variations"),
            field=field_kind,
            key=key,
            retry_text=_first(raw, "retry_message", "invalid_message"),
            give_up_text=_first(raw, "give_up_message") or DEFAULT_GIVE_UP,
            max_attempts=attempts if isinstance(attempts, int) and attempts > 0 else 3,
            options=_options(raw.get("quick_replies") or raw.get("options")),
            goto=goto,
        )
    if kind == "branch":
        attempts = raw.get("max_attempts")
        return Step(
            kind="branch",
            id=ident,
            texts=_texts(raw, "text", "message"),
            key=str(raw.get("key") or "").strip(),
            retry_text=_first(raw, "retry_message", "invalid_message"),
            give_up_text=_first(raw, "give_up_message") or DEFAULT_GIVE_UP,
            max_attempts=attempts if isinstance(attempts, int) and attempts > 0 else 3,
            options=_options(raw.get("options") or raw.get("quick_replies")),
            goto=goto,
        )
    if kind == "follow":
        button = str(raw.get("button") or "").strip() or FOLLOW_BUTTON
        return Step(
            kind="follow",
            id=ident,
            texts=_texts(raw, "text", "message") or (DEFAULT_FOLLOW,),
            options=(Option(title=button, payload=FOLLOW_DONE),),
            goto=goto,
        )
    if kind in {"send", "save", "wait", "end"}:
        return Step(
            kind=kind,
            id=ident,
            texts=_texts(raw, "message_variations", "message", "text") if kind == "send" else (),
            goto=goto,
        )
    return Step(kind="skip", id=ident, goto=goto)


def _first(raw: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = raw.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""
