"""The team-chat mirror's words: what is typed inside a conversation's topic or thread, the
topic's name, and how each message of the conversation reads there. Pure, never raises."""

from __future__ import annotations

from dataclasses import dataclass

from core.domain.followers import Follower, follower_label

# Telegram takes topic names of 1-128 characters, Discord thread names of 1-100.
MAX_TOPIC_NAME = 100
MAX_POST = 3500  # under Telegram's 4096 and within Discord's 2000 after the adapter's cut
TAKE_OVER_HOURS = 24.0
MAX_TAKE_OVER_HOURS = 24 * 7

THREAD_HELP = (
    "In this topic: write to answer the person (text or a photo), or\n"
    "/takeover [hours]: automations stay silent for them (24 h unless you say)\n"
    "/release: hand the conversation back to the automations\n"
    "/done: mark the conversation done\n"
    "/assign @name: give the conversation to a teammate (/assign me, /assign nobody)"
)
MIRROR_USAGE = "/mirror here: mirror the conversations to this chat (admins); /mirror off: stop"


@dataclass(frozen=True)
class TakeOver:
    hours: float = TAKE_OVER_HOURS


@dataclass(frozen=True)
class Release:
    pass


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Assign:
    name: str  # without the "@"; "me", or "" for nobody


@dataclass(frozen=True)
class ThreadHelp:
    pass


@dataclass(frozen=True)
class Unknown:
    """A command the topic does not know: said, not sent to the person."""

    problem: str


ThreadCommand = TakeOver | Release | Done | Assign | ThreadHelp | Unknown
NOBODY = frozenset({"nobody", "none", "-"})


def thread_command(text: str) -> ThreadCommand | None:
    """The command typed in a conversation's topic; None when ``text`` is a reply to send."""
    stripped = text.strip()
    if not stripped.startswith("/"):
        return None
    head, _, rest = stripped.partition(" ")
    name = head[1:].split("@", 1)[0].lower()
    rest = rest.strip()
    if name == "takeover":
        return _take_over(rest)
    if name == "release":
        return Release()
    if name == "done":
        return Done()
    if name == "assign":
        who = rest.removeprefix("@").strip()
        if not who:
            return Unknown("Say whom: /assign @name, /assign me or /assign nobody.")
        return Assign("" if who.lower() in NOBODY else who)
    if name == "help":
        return ThreadHelp()
    return Unknown(f"/{name} does not work in a conversation's topic.\n{THREAD_HELP}")


def _take_over(rest: str) -> ThreadCommand:
    if not rest:
        return TakeOver()
    number = rest.lower().removesuffix("hours").removesuffix("h").strip()
    try:
        hours = float(number)
    except ValueError:
        return Unknown("/takeover takes a number of hours, e.g. /takeover 4")
    if not 0 < hours <= MAX_TAKE_OVER_HOURS:
        return Unknown(f"Take over for up to {MAX_TAKE_OVER_HOURS} hours (a week).")
    return TakeOver(hours)


def mirror_switch(text: str) -> bool | None:
    """``/mirror here`` → True, ``/mirror off`` → False; None for anything else."""
    head, _, rest = text.strip().partition(" ")
    if head.split("@", 1)[0].lower() != "/mirror":
        return None
    word = rest.strip().lower()
    if word in {"here", "on", ""}:
        return True
    if word in {"off", "stop"}:
        return False
    return None


def topic_name(follower: Follower) -> str:
    """ "@username · Name" ("a follower (id …)" while the profile is unknown), within the
    limits."""
    short = Follower(
        igsid=follower.igsid,
        username=follower.username,
        name=follower.name,
        verified=follower.verified,
    )
    name = follower_label(short)
    return name if len(name) <= MAX_TOPIC_NAME else name[: MAX_TOPIC_NAME - 1] + "…"


SOURCE_WORDS = {
    "automation": "🤖 Automation",
    "inbox": "🧑‍💻 {author} (inbox)",
    "chat": "🧑‍💻 {author}",
    "instagram_app": "📱 Instagram app",
}


def post_text(direction: str, source: str, text: str, *, person: str, author: str = "") -> str:
    """How one message of the conversation reads in its topic."""
    if direction == "in":
        head = f"💬 {person}"
    else:
        head = SOURCE_WORDS.get(source, "↩️ Reelay").format(author=author or "A teammate")
    body = text.strip()
    line = f"{head}: {body}" if body else head
    return line if len(line) <= MAX_POST else line[: MAX_POST - 1] + "…"
