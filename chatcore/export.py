"""Exports of chats as Markdown, JSON or plain text: a file for one chat; for several, a zip or one JSON file."""

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import Engine

from chatcore import store
from chatcore.archive import ChatRecord, MessageRecord, chat_record, describe_documents, dump_archive
from chatcore.captions import format_time, reply_caption
from chatcore.models import Chat, Status, utc_now
from chatcore.retrieval import given_label

WORD = re.compile(r"[^\W_]+")  # letters and digits, in any script: what a file name may hold anywhere
MAX_FILENAME_STEM_BYTES = 100  # well under the 255 bytes file systems allow, leaving room for suffixes


class Format(StrEnum):
    """The export formats, valued by their file extension."""

    MARKDOWN = "md"
    JSON = "json"
    TEXT = "txt"

    @property
    def label(self) -> str:
        """The format's name for people."""
        return {"md": "Markdown", "json": "JSON", "txt": "Plain text"}[self.value]


class ExportError(ValueError):
    """An export that cannot be made, such as one of a chat that does not exist."""


@dataclass(frozen=True)
class TranscriptStyle:
    """How a human-readable transcript marks its parts."""

    title: str
    heading: str
    note: str
    rule: str


MARKDOWN_STYLE = TranscriptStyle(title="# {}", heading="### {}", note="*{}*", rule="---")
TEXT_STYLE = TranscriptStyle(title="{}", heading="[{}]", note="({})", rule="=" * 40)


Sources = dict[int, list[str]]  # message id -> the labels of the passages the reply was given


def render_transcript(chat: ChatRecord, style: TranscriptStyle, sources: Sources) -> str:
    """A readable transcript: title, settings, then each message with its role, time, outcome and sources."""
    details = [f"Started {format_time(chat.created_at)}", f"last active {format_time(chat.updated_at)}"]
    if chat.model:
        details.append(f"model {chat.model}")
    parts = [style.title.format(" ".join(chat.title.split())), style.note.format(" · ".join(details))]
    if chat.system_prompt:
        parts.append(f"{style.heading.format('System prompt')}\n\n{chat.system_prompt}")
    parts.append(style.rule)
    parts.extend(render_message(message, style, sources.get(message.id, [])) for message in chat.messages)
    return "\n\n".join(parts) + "\n"


def render_message(message: MessageRecord, style: TranscriptStyle, sources: list[str]) -> str:
    """One message: a heading with role and time, the text, what went wrong or the reply's figures, its sources."""
    moment = message.finished_at or message.created_at  # a reply is dated when it was finished, if that is known
    parts = [style.heading.format(f"{message.role.capitalize()} · {format_time(moment)}")]
    if message.content:
        parts.append(message.content)
    if message.status == Status.ERROR:
        parts.append(style.note.format(f"Error: {message.error}"))
    if message.role == "assistant" and (caption := reply_caption(message)):
        parts.append(style.note.format(caption))
    if sources:
        parts.append(style.note.format("Sources: " + "; ".join(sources)))
    return "\n\n".join(parts)


def render_markdown(chat: ChatRecord, sources: Sources) -> str:
    """A chat as Markdown; message texts are Markdown already and are kept as they are."""
    return render_transcript(chat, MARKDOWN_STYLE, sources)


def render_text(chat: ChatRecord, sources: Sources) -> str:
    """A chat as plain text."""
    return render_transcript(chat, TEXT_STYLE, sources)


RENDERERS: dict[Format, Callable[[ChatRecord, Sources], str]] = {
    Format.MARKDOWN: render_markdown,
    Format.TEXT: render_text,
}
MEDIA_TYPES = {Format.MARKDOWN: "text/markdown", Format.JSON: "application/json", Format.TEXT: "text/plain"}


def slugify(title: str, fallback: str = "chat") -> str:
    """A file name stem from a title: its words in lower case, joined by hyphens, of a safe length."""
    stem = "-".join(WORD.findall(title.lower()))
    stem = stem.encode()[:MAX_FILENAME_STEM_BYTES].decode(errors="ignore").strip("-")
    return stem or fallback


def chat_filename(title: str, day: date, fmt: Format) -> str:
    """The file name of one chat's export, e.g. trip-to-lisbon-2025-03-01.md."""
    return f"{slugify(title)}-{day:%Y-%m-%d}.{fmt.value}"


def name_files(rendered: Iterable[tuple[ChatRecord, str]], day: date, fmt: Format) -> Iterator[tuple[str, str]]:
    """Each (chat, text) as (file name, text) for a zip; a name already taken gets the chat's id added."""
    taken = set()
    for record, text in rendered:
        title = record.title
        while (name := chat_filename(title, day, fmt)) in taken:
            title = f"{title} {record.id}"
        taken.add(name)
        yield name, text


def zip_files(files: Iterable[tuple[str, str]]) -> bytes:
    """A zip archive of these (name, text) files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in files:
            archive.writestr(name, text)
    return buffer.getvalue()


def read_chat(engine: Engine, chat: Chat) -> tuple[ChatRecord, Sources]:
    """A chat with all its messages and the passages its replies were given, and the labels of those passages."""
    messages = store.list_messages(engine, chat.id)
    given = store.reply_sources(engine, [message.id for message in messages if message.role == "assistant"])
    labels = {reply: [given_label(source, present) for source, present in items] for reply, items in given.items()}
    passages = {reply: [source for source, _ in items] for reply, items in given.items()}
    return chat_record(chat, messages, passages), labels


def load_chats(engine: Engine, chats: Iterable[Chat]) -> Iterator[tuple[ChatRecord, Sources]]:
    """These chats, each with the labels of its replies' passages, read one chat at a time."""
    for chat in chats:
        yield read_chat(engine, chat)


@dataclass(frozen=True)
class ChatExport:
    """An export of chosen chats in one format; its content is built only when asked for."""

    engine: Engine
    chats: list[Chat]
    format: Format

    @property
    def day(self) -> date:
        """The day of the export, in UTC, which its file names carry."""
        return utc_now().date()

    @property
    def is_zip(self) -> bool:
        """Several chats in a per-chat format go into a zip; JSON holds any number of chats itself."""
        return self.format != Format.JSON and len(self.chats) > 1

    @property
    def filename(self) -> str:
        """The file name to save the export under."""
        if len(self.chats) == 1:
            return chat_filename(self.chats[0].title, self.day, self.format)
        extension = "zip" if self.is_zip else self.format.value
        return f"chatcore-export-{self.day:%Y-%m-%d}.{extension}"

    @property
    def mime(self) -> str:
        """The file's media type."""
        return "application/zip" if self.is_zip else MEDIA_TYPES[self.format]

    def build(self) -> bytes:
        """The file's content."""
        loaded = load_chats(self.engine, self.chats)
        if self.format == Format.JSON:
            used = store.documents_by_chat(self.engine, [chat.id for chat in self.chats])
            return dump_archive([describe_documents(record, used.get(record.id, [])) for record, _ in loaded]).encode()
        render = RENDERERS[self.format]
        rendered = ((record, render(record, labels)) for record, labels in loaded)
        if not self.is_zip:
            return next(rendered)[1].encode()
        return zip_files(name_files(rendered, self.day, self.format))


def plan_export(engine: Engine, chat_ids: list[int] | None, fmt: Format) -> ChatExport:
    """An export of these chats (all when None); raise ExportError if one is missing or there are none."""
    chats = store.find_chats(engine, chat_ids)
    if chat_ids is not None and (missing := sorted(set(chat_ids) - {chat.id for chat in chats})):
        raise ExportError(f"No chat with id {', '.join(map(str, missing))}.")
    if not chats:
        raise ExportError("There are no chats to export.")
    return ChatExport(engine, chats, fmt)
