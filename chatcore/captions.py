"""Short lines shown under messages and above the input, and the labels chats are chosen by."""

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from chatcore.backends import SUGGESTED_MODEL
from chatcore.context import Window
from chatcore.generation import title_from_text
from chatcore.models import Chat, Document, Message, Status, tokens_per_second, utc_now

SIZE_UNITS = ("B", "KB", "MB", "GB")
STATUS_NOTES = {
    Status.STOPPED: "stopped",
    Status.PARTIAL: "interrupted: the reply stopped here",
    Status.STREAMING: "still being written",
    Status.CUT: "cut off at the length limit: ask it to go on",
}
LISTED_DOCUMENTS = 3  # the documents an empty chat names; the rest are counted
LABEL_TITLE_CHARS = 50  # a chat's title is cut to this in its label, which then shows its time even in a narrow chip
EMOJI = {Status.STOPPED: "⏹", Status.PARTIAL: "⚠️", Status.STREAMING: "✍️", Status.CUT: "✂️"}  # in exported files
# Streamlit's Material icons, as its Markdown writes them: its own font draws them, where emoji need one installed.
ICONS = {
    Status.STOPPED: ":material/stop_circle:",
    Status.PARTIAL: ":material/warning:",
    Status.STREAMING: ":material/edit_note:",
    Status.CUT: ":material/content_cut:",
}


class Reply(Protocol):
    """What a caption is made of: a stored Message or an exported one."""

    model: str
    status: str
    reply_tokens: int | None
    reply_ms: float | None


def reply_caption(message: Reply, symbols: dict[str, str] = EMOJI) -> str:
    """Model, token count and speed of a reply, and whether it was cut off, marked by one of `symbols`."""
    parts = [message.model] if message.model else []
    if message.reply_tokens:
        parts.append(f"{message.reply_tokens} tokens")
    if speed := tokens_per_second(message.reply_tokens, message.reply_ms):
        parts.append(f"{speed:.1f} tokens/s")
    if note := STATUS_NOTES.get(message.status):
        parts.append(f"{symbols[message.status]} {note}")
    return " · ".join(parts)


def format_time(moment: datetime) -> str:
    """A timestamp for people, to the second, in UTC."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def short_time(moment: datetime) -> str:
    """A timestamp for people, to the minute, in UTC: "29 Nov 14:05", with the year when it is not this one."""
    year = "" if moment.year == utc_now().year else f" {moment.year}"
    return f"{moment.day} {moment:%b}{year} {moment:%H:%M}"


def chat_labels(chats: list[Chat]) -> dict[int, str]:
    """Each chat's label, in the order given: "Title · 29 Nov 14:05", numbered (2), (3)… by age where those agree."""
    labels, seen = {}, Counter()  # a label of its own for each: Streamlit's pickers tell options apart by label
    for chat in sorted(chats, key=lambda chat: chat.id):
        label = f"{title_from_text(chat.title, LABEL_TITLE_CHARS)} · {short_time(chat.created_at)}"
        seen[label] += 1
        labels[chat.id] = f"{label} ({seen[label]})" if seen[label] > 1 else label
    return {chat.id: labels[chat.id] for chat in chats}


def finished_note(message: Message) -> str | None:
    """When a reply was finished, if that was recorded."""
    return f"Finished {format_time(message.finished_at)}" if message.finished_at else None


def context_caption(window: Window, total_messages: int, memory_enabled: bool, pending: Iterable[str] = ()) -> str:
    """What the next request carries: "context: N of M messages · T / C tokens · memory on", and work `pending`."""
    memory = "memory on" if memory_enabled else "memory off"
    messages = f"{len(window.history)} of {total_messages} messages"
    work = "".join(f" · {task}…" for task in sorted(pending))
    return f"context: {messages} · {window.tokens:,} / {window.budget:,} tokens · {memory}{work}"


def no_model_note(offered: bool) -> str:
    """What the message input says while no model is picked: to pick one of those `offered`, or that none can answer."""
    return "Choose a model in the sidebar to go on" if offered else "No model to answer: see the sidebar"


def no_models_notice(host: str) -> str:
    """Why an Ollama that answers offers no model, and what to do."""
    return f"Ollama at {host} has no model to chat with yet: pull one with `ollama pull {SUGGESTED_MODEL}`."


def documents_note(names: list[str]) -> str:
    """What a chat with documents and no messages can be asked: "Ask about a.md, b.pdf and c.txt, or anything else."."""
    listed = names[:LISTED_DOCUMENTS]
    if len(names) > len(listed):
        listed.append(f"{len(names) - len(listed)} more")
    named = listed[0] if len(listed) == 1 else f"{', '.join(listed[:-1])} and {listed[-1]}"
    return f"Ask about {named}, or anything else."


def outside_note(summarised: bool) -> str:
    """The divider above the oldest message the model is sent."""
    return "earlier messages are summarised" if summarised else "earlier messages are not sent to the model"


def file_size(size: int) -> str:
    """A size as Streamlit's file uploader shows it (outside Windows), e.g. 80.1KB: the two must agree.

    Like the uploader, in units of 1000, moving up a unit past half of the next one, to one decimal rounded
    half up from the value divided in floating point.
    """
    value, unit = float(size), 0
    while unit < len(SIZE_UNITS) - 1 and value > 500:
        value, unit = value / 1000, unit + 1
    return f"{Decimal(value).quantize(Decimal('0.1'), ROUND_HALF_UP)}{SIZE_UNITS[unit]}"


def document_caption(document: Document) -> str:
    """A document's kind, pages or sections, size and chunk count, and whether it has vectors."""
    unit = "page" if document.kind == "pdf" else "section"
    size = file_size(document.size)
    pages = f"{document.pages} {unit}{'s' if document.pages != 1 else ''}"
    chunks = f"{document.chunk_count} passage{'s' if document.chunk_count != 1 else ''}"
    meaning = " · searchable by meaning" if document.vectors_model else ""
    return f"{document.kind.upper()} · {pages} · {size} · {chunks}{meaning}"
