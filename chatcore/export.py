"""Exports of chats as Markdown, JSON or plain text: a file for one chat; for several, a zip or one JSON file."""

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Engine

from chatcore import store
from chatcore.archive import ChatRecord, MessageRecord, chat_record, describe_documents, dump_archive
from chatcore.captions import reply_caption
from chatcore.models import Chat, Status, utc_now
from chatcore.retrieval import source_label

UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^\w\-. ()]+")
WINDOWS_RESERVED_NAMES = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)
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


def format_time(moment: datetime) -> str:
    """A timestamp for people, to the second, in UTC."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


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
    parts = [style.heading.format(f"{message.role.capitalize()} · {format_time(message.created_at)}")]
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


def sanitize_filename(title: str, fallback: str = "chat") -> str:
    """A file name stem from a title: no path or control characters, not hidden, of a safe length."""
    stem = " ".join(UNSAFE_FILENAME_CHARACTERS.sub("_", title).split())
    stem = stem.encode()[:MAX_FILENAME_STEM_BYTES].decode(errors="ignore").strip(" ._")
    if not stem or WINDOWS_RESERVED_NAMES.fullmatch(stem):
        return fallback
    return stem


def chat_filename(chat_id: int, title: str, fmt: Format) -> str:
    """The file name of one chat's export; the id keeps names unique within a zip."""
    return f"{sanitize_filename(title)}-{chat_id}.{fmt.value}"


def zip_files(files: Iterable[tuple[str, str]]) -> bytes:
    """A zip archive of these (name, text) files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in files:
            archive.writestr(name, text)
    return buffer.getvalue()


def load_chats(engine: Engine, chats: Iterable[Chat]) -> Iterator[ChatRecord]:
    """These chats with all their messages, read one chat at a time."""
    for chat in chats:
        yield chat_record(chat, store.list_messages(engine, chat.id))


@dataclass(frozen=True)
class ChatExport:
    """An export of chosen chats in one format; its content is built only when asked for."""

    engine: Engine
    chats: list[Chat]
    format: Format

    @property
    def is_zip(self) -> bool:
        """Several chats in a per-chat format go into a zip; JSON holds any number of chats itself."""
        return self.format != Format.JSON and len(self.chats) > 1

    @property
    def filename(self) -> str:
        """The file name to save the export under."""
        if len(self.chats) == 1:
            return chat_filename(self.chats[0].id, self.chats[0].title, self.format)
        extension = "zip" if self.is_zip else self.format.value
        return f"chatcore-export-{utc_now():%Y-%m-%d}.{extension}"

    @property
    def mime(self) -> str:
        """The file's media type."""
        return "application/zip" if self.is_zip else MEDIA_TYPES[self.format]

    def build(self) -> bytes:
        """The file's content."""
        records = load_chats(self.engine, self.chats)
        if self.format == Format.JSON:
            used = store.documents_by_chat(self.engine, [chat.id for chat in self.chats])
            return dump_archive([describe_documents(record, used.get(record.id, [])) for record in records]).encode()
        render = RENDERERS[self.format]
        rendered = ((record, render(record, self.source_labels(record))) for record in records)
        if not self.is_zip:
            return next(rendered)[1].encode()
        return zip_files((chat_filename(record.id, record.title, self.format), text) for record, text in rendered)

    def source_labels(self, chat: ChatRecord) -> Sources:
        """The labels of the passages each of the chat's replies was given, in one query."""
        replies = [message.id for message in chat.messages if message.role == "assistant"]
        given = store.reply_sources(self.engine, replies)
        return {reply: [source_label(n, document.name, document.kind, chunk.page) for n, document, chunk in items]
                for reply, items in given.items()}  # fmt: skip


def plan_export(engine: Engine, chat_ids: list[int] | None, fmt: Format) -> ChatExport:
    """An export of these chats (all when None); raise ExportError if one is missing or there are none."""
    chats = store.find_chats(engine, chat_ids)
    if chat_ids is not None and (missing := sorted(set(chat_ids) - {chat.id for chat in chats})):
        raise ExportError(f"No chat with id {', '.join(map(str, missing))}.")
    if not chats:
        raise ExportError("There are no chats to export.")
    return ChatExport(engine, chats, fmt)
