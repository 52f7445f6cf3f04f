"""Meta webhook payloads → typed inbound events (pure: no I/O, never raises on bad input).

Both comment shapes are accepted: ``field``/``value`` right on the entry (Instagram Login
examples) and ``changes[]`` (Facebook Login examples); the comment id may be ``id`` or
``comment_id``. Messaging events come in ``entry[].messaging[]``; the App Dashboard's test
notifications and Meta's webhook field reference wrap the same item in
``changes[{"field": "messages", "value": {sender, recipient, timestamp, message}}]``, which is
read alike.

Each event gets a dedupe key that is stable across Meta's retries (comment id, message mid,
postback mid, …; a content hash when Meta gives no id), and a ``raw`` one-event payload in
Meta's own shape, which is what the inbox stores (for the event log) beside the event's
:func:`stored_fields`; the worker reads those back with :func:`from_stored`, so an event is
parsed once. Rows stored before the fields were kept are read with :func:`parse_payload`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields as dataclass_fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

MAX_KEY_LENGTH = 200


class EventKind(StrEnum):
    COMMENT = "comment"
    MESSAGE = "message"
    QUICK_REPLY = "quick_reply"
    STORY_REPLY = "story_reply"
    STORY_MENTION = "story_mention"
    POSTBACK = "postback"
    REACTION = "reaction"
    READ = "read"
    EDIT = "edit"
    REFERRAL = "referral"
    ECHO = "echo"
    OTHER = "other"  # a field Reelay does not act on (mentions, story_insights, …)
    MALFORMED = "malformed"


# Which rule trigger an event kind fires (None: no rule fires on it).
TRIGGER_OF: dict[EventKind, str] = {
    EventKind.COMMENT: "comment",
    EventKind.MESSAGE: "dm",
    EventKind.QUICK_REPLY: "postback",
    EventKind.STORY_REPLY: "story_reply",
    EventKind.STORY_MENTION: "story_mention",
    EventKind.POSTBACK: "postback",
    EventKind.REFERRAL: "ref_link",
}


def match_inputs(event: InboundEvent) -> list[tuple[str, str]]:
    """(trigger, text) pairs a rule is looked for with, in order: a quick-reply tap is a
    postback, then a DM; a referral or a postback carrying an ig.me ref first tries the
    ``ref_link`` rules."""
    if event.kind is EventKind.QUICK_REPLY:
        return [("postback", event.payload), ("dm", event.text)]
    if event.kind is EventKind.POSTBACK:
        tap = ("postback", event.payload or event.title)
        return [("ref_link", event.ref), tap] if event.ref else [tap]
    if event.kind is EventKind.REFERRAL:
        return [("ref_link", event.ref)] if event.ref else []
    trigger = event.trigger
    return [(trigger, event.text)] if trigger else []


# Events a conversation waiting for a lead-flow answer may consume.
FLOW_ANSWER_KINDS = frozenset({EventKind.MESSAGE, EventKind.QUICK_REPLY, EventKind.POSTBACK})

# Messaging webhook fields whose ``value`` is one ``messaging[]`` item when Meta sends them
# as ``changes[]`` (dashboard tests, the field reference).
MESSAGING_FIELDS = frozenset(
    {
        "messages",
        "messaging_postbacks",
        "message_reactions",
        "messaging_seen",
        "messaging_referral",
        "message_edit",
        "messaging_optins",
    }
)


@dataclass(frozen=True)
class InboundEvent:
    """One thing that happened on an account, as Reelay acts on it."""

    kind: EventKind
    account_id: str  # the entry id: the professional account (or Page) the event is for
    dedupe_key: str
    raw: dict[str, Any] = field(repr=False)
    field: str = ""
    sender_id: str = ""
    sender_username: str = ""
    recipient_id: str = ""
    text: str = ""
    mid: str = ""
    comment_id: str = ""
    parent_id: str = ""
    media_id: str = ""
    media_product_type: str = ""
    # A comment on an ad: Meta's comment webhook names the ad in ``media.ad_id``/``ad_title``.
    ad_id: str = ""
    ad_title: str = ""
    payload: str = ""  # postback or quick-reply payload
    ref: str = ""  # an ig.me link's ref: a referral's, or a postback's ``referral.ref``
    title: str = ""
    story_id: str = ""
    attachment_types: tuple[str, ...] = ()
    # A post the person shared in a DM: ``ig_post`` attachments (the legacy ``share`` one,
    # removed on 2026-04-27, is still read when it is the only one).
    shared_media_id: str = ""
    shared_url: str = ""
    is_deleted: bool = False
    timestamp: datetime | None = None
    error: str = ""  # why a MALFORMED event could not be read

    @property
    def trigger(self) -> str | None:
        if self.is_live:
            return "live_comment"
        return TRIGGER_OF.get(self.kind)

    @property
    def is_live(self) -> bool:
        """A comment on a Live broadcast (webhook field ``live_comments``)."""
        return self.kind is EventKind.COMMENT and self.field == "live_comments"

    @property
    def is_ad(self) -> bool:
        """A comment on an ad (``media.ad_id``, or an ``AD`` media product type)."""
        return bool(self.ad_id) or self.media_product_type.upper() == "AD"


# What the inbox keeps of a parsed event, beside the payload (which holds ``raw``).
_STORED = tuple(f.name for f in dataclass_fields(InboundEvent) if f.name != "raw")


def stored_fields(event: InboundEvent) -> dict[str, Any]:
    """``event`` as JSON-ready fields, all but ``raw``: read back by :func:`from_stored`."""
    values = {name: getattr(event, name) for name in _STORED}
    values["attachment_types"] = list(event.attachment_types)
    values["timestamp"] = event.timestamp.isoformat() if event.timestamp else None
    return values


def from_stored(values: Any, payload: Any = None) -> InboundEvent | None:
    """The event :func:`stored_fields` kept, without parsing its payload again. A row
    recorded before parsed events were kept has no such fields: its ``payload`` is parsed
    instead. None when neither holds one event. Its ``raw`` is left empty: the stored
    payload holds it."""
    if not isinstance(values, dict):
        if isinstance(payload, dict):
            events = parse_payload(payload)
            return events[0] if len(events) == 1 else None
        return None
    try:
        found = {name: values[name] for name in _STORED if name in values}
        found["kind"] = EventKind(values["kind"])
        found["attachment_types"] = tuple(values.get("attachment_types") or ())
        stamp = values.get("timestamp")
        found["timestamp"] = datetime.fromisoformat(stamp) if stamp else None
        return InboundEvent(raw={}, **found)
    except (KeyError, TypeError, ValueError):
        return None


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _timestamp(value: Any, *, millis: bool) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = value / 1000 if millis else value
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def content_hash(value: Any) -> str:
    """A stable hash of a JSON value (keys sorted), for events Meta gives no id."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _ident(value: Any, limit: int = 64) -> str:
    """An id as text; ids that are not short printable ASCII are replaced by their hash."""
    text = _str(value)
    if text.isascii() and text.isprintable() and len(text) <= limit:
        return text
    return "h" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _key(account_id: str, *parts: str) -> str:
    key = ":".join((account_id, *parts))
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{account_id[:40]}:{parts[0]}:h:{digest}"
    return key


def malformed(body: bytes | str, error: str) -> InboundEvent:
    """The event recorded for a signed body Reelay cannot read."""
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    digest = hashlib.sha256(data).hexdigest()
    text = data[:2000].decode("utf-8", "replace").replace("\x00", "")
    return InboundEvent(
        kind=EventKind.MALFORMED,
        account_id="",
        dedupe_key=f"malformed:{digest}",
        raw={"body": text},
        error=error[:500],
    )


def parse_body(body: bytes) -> list[InboundEvent]:
    """Split a raw POST body into events; an unreadable body is one MALFORMED event."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        return [malformed(body, f"not JSON: {exc}")]
    except RecursionError:
        return [malformed(body, "JSON nested too deeply")]
    if b"\\u0000" in body:
        # PostgreSQL stores no NUL character in text or JSON: drop them before anything keeps them.
        try:
            document = _without_nul(document)
        except RecursionError:
            return [malformed(body, "JSON nested too deeply")]
    events = parse_payload(document)
    if not events and not _valid_empty(document):
        return [malformed(body, "no entry[] in payload")]
    return events


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value


def _valid_empty(document: Any) -> bool:
    if isinstance(document, list):
        return bool(document) and all(
            isinstance(item, dict) and isinstance(item.get("entry"), list) for item in document
        )
    return isinstance(document, dict) and isinstance(document.get("entry"), list)


def parse_payload(document: Any) -> list[InboundEvent]:
    """All events of a Meta webhook payload (a dict with ``object`` and ``entry[]``).

    A list of such payloads is read too: Meta's Instagram example pages print every
    notification inside ``[ ... ]``, and tools replay them as written.
    """
    if isinstance(document, list):
        payloads = [item for item in document if isinstance(item, dict)]
        return [event for item in payloads for event in parse_payload(item)]
    if not isinstance(document, dict):
        return []
    obj = _str(document.get("object")) or "instagram"
    events: list[InboundEvent] = []
    for entry in _list(document.get("entry")):
        if not isinstance(entry, dict):
            events.append(_bad_entry(obj, entry, "entry is not an object"))
            continue
        try:
            events.extend(_entry_events(obj, entry))
        except RecursionError:
            events.append(_bad_entry(obj, entry, "entry nested too deeply"))
    return events


def _bad_entry(obj: str, entry: Any, error: str) -> InboundEvent:
    try:
        digest = content_hash(entry)
    except (ValueError, RecursionError):
        digest = hashlib.sha256(repr(entry).encode("utf-8", "replace")).hexdigest()
    return InboundEvent(
        kind=EventKind.MALFORMED,
        account_id="",
        dedupe_key=f"malformed:{digest}",
        raw={"object": obj, "entry": [entry]},
        error=error,
    )


def _entry_events(obj: str, entry: dict[str, Any]) -> list[InboundEvent]:
    account_id = _ident(entry.get("id"))
    time = entry.get("time")
    base = {"id": entry.get("id"), "time": time}
    events: list[InboundEvent] = []
    changes = _list(entry.get("changes"))
    if "field" in entry and "value" in entry:
        changes = [*changes, {"field": entry.get("field"), "value": entry.get("value")}]
    for change in changes:
        raw = {"object": obj, "entry": [{**base, "changes": [change]}]}
        events.append(_change_event(account_id, change, raw, time))
    for item in _list(entry.get("messaging")):
        raw = {"object": obj, "entry": [{**base, "messaging": [item]}]}
        events.append(_messaging_event(account_id, item, raw))
    for item in _list(entry.get("standby")):
        # Another app owns the thread (handover protocol): Reelay must stay silent.
        raw = {"object": obj, "entry": [{**base, "standby": [item]}]}
        events.append(
            InboundEvent(
                kind=EventKind.OTHER,
                account_id=account_id,
                dedupe_key=_key(account_id, "standby", content_hash(item)),
                raw=raw,
                field="standby",
            )
        )
    return events


def _change_event(account_id: str, change: Any, raw: dict[str, Any], time: Any) -> InboundEvent:
    change = _dict(change)
    name = _str(change.get("field"))
    value = _dict(change.get("value"))
    if name in MESSAGING_FIELDS and isinstance(value.get("sender"), dict):
        return _messaging_event(account_id, value, raw)
    if name not in {"comments", "live_comments"}:
        return InboundEvent(
            kind=EventKind.OTHER,
            account_id=account_id,
            dedupe_key=_key(account_id, name or "change", content_hash(change)),
            raw=raw,
            field=name,
        )
    comment_id = _ident(value.get("id")) or _ident(value.get("comment_id"))
    sender = _dict(value.get("from"))
    media = _dict(value.get("media"))
    if not comment_id:
        return InboundEvent(
            kind=EventKind.MALFORMED,
            account_id=account_id,
            dedupe_key=_key(account_id, "comment", "h", content_hash(change)),
            raw=raw,
            field=name,
            error="comment without id",
        )
    return InboundEvent(
        kind=EventKind.COMMENT,
        account_id=account_id,
        dedupe_key=_key(account_id, "comment", comment_id),
        raw=raw,
        field=name,
        sender_id=_ident(sender.get("id")),
        sender_username=_str(sender.get("username")),
        text=_str(value.get("text")),
        comment_id=comment_id,
        parent_id=_ident(value.get("parent_id")),
        media_id=_ident(media.get("id")) or _ident(value.get("media_id")),
        media_product_type=_str(media.get("media_product_type")),
        ad_id=_ident(media.get("ad_id")),
        ad_title=_str(media.get("ad_title"))[:200],
        timestamp=_timestamp(value.get("timestamp"), millis=False)
        or _timestamp(time, millis=time_in_millis(time)),
    )


def time_in_millis(value: Any) -> bool:
    """Entry ``time`` is seconds in Meta's comment samples and milliseconds in others."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 10**11


def _messaging_event(account_id: str, item: Any, raw: dict[str, Any]) -> InboundEvent:
    item = _dict(item)
    sender = _dict(item.get("sender"))
    common: dict[str, Any] = {
        "account_id": account_id,
        "raw": raw,
        "field": "messages",
        "sender_id": _ident(sender.get("id")),
        "sender_username": _str(sender.get("username")),
        "recipient_id": _ident(_dict(item.get("recipient")).get("id")),
        "timestamp": _timestamp(item.get("timestamp"), millis=True),
    }
    message = item.get("message")
    if isinstance(message, dict):
        return _message_event(account_id, message, common)
    postback = item.get("postback")
    if isinstance(postback, dict):
        mid = _ident(postback.get("mid"), 255)
        payload = _str(postback.get("payload"))
        return InboundEvent(
            kind=EventKind.POSTBACK,
            dedupe_key=_key(account_id, "postback", mid or content_hash(item)),
            mid=mid,
            payload=payload,
            ref=_str(_dict(postback.get("referral")).get("ref")),
            title=_str(postback.get("title")),
            text=_str(postback.get("title")),
            **common,
        )
    for name, kind in (
        ("reaction", EventKind.REACTION),
        ("read", EventKind.READ),
        ("message_edit", EventKind.EDIT),
        ("referral", EventKind.REFERRAL),
    ):
        part = item.get(name)
        if isinstance(part, dict):
            mid = _ident(part.get("mid"), 255)
            return InboundEvent(
                kind=kind,
                dedupe_key=_key(account_id, name, content_hash(item)),
                mid=mid,
                text=_str(part.get("text")),
                ref=_str(part.get("ref")) if kind is EventKind.REFERRAL else "",
                **common,
            )
    return InboundEvent(
        kind=EventKind.OTHER,
        dedupe_key=_key(account_id, "messaging", content_hash(item)),
        **common,
    )


def _message_event(
    account_id: str, message: dict[str, Any], common: dict[str, Any]
) -> InboundEvent:
    mid = _ident(message.get("mid"), 255)
    attachments = [_dict(a) for a in _list(message.get("attachments"))]
    types = tuple(_str(a.get("type")) for a in attachments)
    reply_to = _dict(message.get("reply_to"))
    story = _dict(reply_to.get("story"))
    quick = _dict(message.get("quick_reply"))
    if message.get("is_echo") is True:
        kind = EventKind.ECHO
        prefix = "echo"
    elif "story_mention" in types:
        kind, prefix = EventKind.STORY_MENTION, "message"
    elif story:
        kind, prefix = EventKind.STORY_REPLY, "message"
    elif quick:
        kind, prefix = EventKind.QUICK_REPLY, "message"
    else:
        kind, prefix = EventKind.MESSAGE, "message"
    shared = _shared_post(attachments)
    story_id = _str(story.get("id"))
    if kind is EventKind.STORY_MENTION:
        mention = next((a for a in attachments if _str(a.get("type")) == "story_mention"), {})
        story_id = story_id or _str(_dict(mention.get("payload")).get("id"))
    text = _str(message.get("text"))
    if kind is EventKind.ECHO and not text:
        text = _template_text(message, attachments)
    return InboundEvent(
        kind=kind,
        dedupe_key=_key(account_id, prefix, mid or content_hash(message)),
        mid=mid,
        text=text,
        payload=_str(quick.get("payload")),
        story_id=story_id,
        attachment_types=types,
        shared_media_id=_ident(shared.get("ig_post_media_id"), 64),
        shared_url=_str(shared.get("url")),
        is_deleted=message.get("is_deleted") is True,
        **common,
    )


def _template_text(message: dict[str, Any], attachments: list[dict[str, Any]]) -> str:
    """The text of a template the account sent (buttons), as its echo carries it: in the
    ``attachment`` it was sent with, or among the ``attachments``."""
    for attachment in [_dict(message.get("attachment")), *attachments]:
        text = _str(_dict(attachment.get("payload")).get("text"))
        if text:
            return text
    return ""


def _shared_post(attachments: list[dict[str, Any]]) -> dict[str, Any]:
    """The payload of a shared post: its ``ig_post`` attachment, else a legacy ``share``.

    During Meta's transition a share carried both, with the same post.
    """
    for kind in ("ig_post", "share"):
        for attachment in attachments:
            if _str(attachment.get("type")) == kind:
                return _dict(attachment.get("payload"))
    return {}


def graph_time(value: Any) -> datetime | None:
    """A time as the Graph API writes it (``2026-11-20T08:00:00+0000``), aware; None when
    it is not one."""
    if not isinstance(value, str):
        return None
    try:
        found = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            found = datetime.fromisoformat(value)
        except ValueError:
            return None
    return found.astimezone(UTC) if found.tzinfo else None


def comment_from_graph(account_id: str, comment: Any, media: Any) -> InboundEvent | None:
    """A comment read from ``GET /{media-id}/comments`` as the webhook Meta would have sent
    for it (``comments`` field/value on the account's entry), parsed by the same parser: the
    same event under the same dedupe key, so a late webhook of it is a duplicate.

    None when ``comment`` is not a comment object with an id.
    """
    comment, media = _dict(comment), _dict(media)
    if not _ident(comment.get("id")):
        return None
    sender = _dict(comment.get("from"))
    value: dict[str, Any] = {
        "id": comment.get("id"),
        "from": {
            "id": sender.get("id", ""),
            "username": sender.get("username") or comment.get("username") or "",
        },
        "text": _str(comment.get("text")),
        "media": {
            "id": media.get("id", ""),
            "media_product_type": _str(media.get("media_product_type")),
        },
    }
    if comment.get("parent_id"):
        value["parent_id"] = comment.get("parent_id")
    at = graph_time(comment.get("timestamp"))
    entry: dict[str, Any] = {"id": account_id, "field": "comments", "value": value}
    if at is not None:
        entry["time"] = int(at.timestamp())
    events = parse_payload({"object": "instagram", "entry": [entry]})
    if len(events) != 1 or events[0].kind is not EventKind.COMMENT:
        return None
    return events[0]
