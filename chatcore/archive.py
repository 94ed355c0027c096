"""The JSON export format: chats with every field of their messages, the passages each reply was given and what
documents they use, validated strictly."""

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PositiveInt,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chatcore.encodings import MismarkedTextError, decode_marked
from chatcore.models import Chat, Document, Message, ReplySource, Status, utc_now

FORMAT_VERSION = 2  # 2 added chats' uid, replies' finished_at and sources
READABLE_VERSIONS = (1, 2)
MAX_FILE_BYTES = 200 * 2**20
MAX_CHATS = 10_000
MAX_MESSAGES_PER_CHAT = 100_000
MAX_TITLE_CHARS = 500
MAX_TEXT_CHARS = 2_000_000
MAX_NAME_CHARS = 200
MAX_OPTIONS = 100
MAX_DOCUMENTS_PER_CHAT = 10_000
MAX_SOURCES_PER_REPLY = 1_000
MAX_REPORTED_ERRORS = 5
MAX_PLACE_CHARS = 100  # a place names keys from the file, which may be long

EXPORT_TO_IMPORT = "Export chats as JSON on chatcore's Export page to get a file to import."
EXPORT_AGAIN = "export the chats again as JSON on chatcore's Export page"
NOT_UTF8 = (
    "The file is not in UTF-8, the text encoding of chatcore's exports: an editor may have saved it in another one. "
    f"Save it as UTF-8 in your text editor (in Windows Notepad: Save As, Encoding: UTF-8), or {EXPORT_AGAIN}."
)
JSON_ERROR_PLACE = re.compile(r"at line (\d+) column (\d+)$")  # where the JSON parser says it gave up
MEMORY_OUTSIDE_CHAT = "has `memory_until` {memory_until}, which is not the id of one of its messages"
DATE_AND_TIME = "must be a date and time such as 2025-03-01T09:00:00Z"
OBJECT = "must be a JSON object, in braces"
WHOLE_NUMBER = "must be a whole number"
# What each kind of validation problem means, said of the field it is in; `ctx` fills in the braces.
PREDICATES = {
    "missing": "is missing",
    "extra_forbidden": "is not part of a chatcore export",
    "model_type": OBJECT,
    "dict_type": OBJECT,
    "list_type": "must be a list, in brackets",
    "int_type": WHOLE_NUMBER,
    "int_from_float": WHOLE_NUMBER,
    "greater_than": "must be more than {gt:g}",
    "greater_than_equal": "must be {ge:g} or more",
    "float_type": "must be a number",
    "finite_number": "must be a number, not NaN or infinity",
    "bool_type": "must be true or false",
    "string_type": "must be text, in quotes",
    "string_too_long": "is longer than {max_length} characters",
    "string_pattern_mismatch": "is not in the form chatcore writes",
    "literal_error": "must be {expected}",
    "enum": "must be {expected}",
    "datetime_type": DATE_AND_TIME,
    "datetime_parsing": DATE_AND_TIME,
    "datetime_from_date_parsing": DATE_AND_TIME,
    "too_long": "has more than {max_length} entries",
    "memory_until": MEMORY_OUTSIDE_CHAT,
}
ITEM_NAMES = {"chats": "chat", "messages": "message", "documents": "document", "sources": "source"}


class ArchiveError(ValueError):
    """A file that is not a valid chatcore export; the message says what is wrong."""


def as_utc(moment: datetime) -> datetime:
    """The same moment in UTC; naive times are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_format_version(version: int) -> int:
    """Accept only the formats this chatcore knows: the one it writes and the older ones."""
    if version not in READABLE_VERSIONS:
        raise PydanticCustomError(
            "format_version", "version {version} is not one this chatcore reads", {"version": version}
        )
    return version


UtcTime = Annotated[datetime, AfterValidator(as_utc)]
Name = Annotated[str, Field(max_length=MAX_NAME_CHARS)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
TokenCount = Annotated[int | None, Field(ge=0)]
Millis = Annotated[float | None, Field(ge=0, allow_inf_nan=False)]
DocumentName = Annotated[str, Field(max_length=MAX_TITLE_CHARS)]
DocumentKind = Literal["pdf", "docx", "txt", "md"]
Sha256 = Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
Uid = Annotated[str, Field(pattern="^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]


class Record(BaseModel):
    """Strict: no type coercion, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class SourceRecord(Record):
    """A passage a reply was given, as it was given."""

    label: PositiveInt
    document_sha256: Sha256
    document_name: DocumentName
    document_kind: DocumentKind
    page: Annotated[int, Field(ge=0)]
    text: Text


class MessageRecord(Record):
    """One message, as exported."""

    id: PositiveInt
    role: Literal["user", "assistant", "system"]
    content: Text
    status: Status
    error: Text
    model: Name
    prompt_tokens: TokenCount
    reply_tokens: TokenCount
    prompt_ms: Millis
    reply_ms: Millis
    total_ms: Millis
    tokens: TokenCount = None
    created_at: UtcTime
    finished_at: UtcTime | None = None
    sources: Annotated[list[SourceRecord], Field(max_length=MAX_SOURCES_PER_REPLY)] = []


class DocumentRecord(Record):
    """A document a chat uses, described: its contents are not exported."""

    name: DocumentName
    kind: DocumentKind
    sha256: Sha256
    size: Annotated[int, Field(ge=0)]
    pages: Annotated[int, Field(ge=0)]
    chunk_count: Annotated[int, Field(ge=0)]
    library: bool
    created_at: UtcTime
    summary: Text = ""
    summary_model: Name = ""


class ChatRecord(Record):
    """One chat with its settings and all its messages, as exported."""

    id: PositiveInt
    uid: Uid | None = None  # the chat's in every database; absent from version 1 files
    title: Annotated[str, Field(max_length=MAX_TITLE_CHARS)]
    model: Name
    system_prompt: Text
    options: Annotated[dict[Name, JsonValue], Field(max_length=MAX_OPTIONS)]
    memory: Text = ""
    memory_until: PositiveInt | None = None
    memory_enabled: bool = True
    created_at: UtcTime
    updated_at: UtcTime
    messages: Annotated[list[MessageRecord], Field(max_length=MAX_MESSAGES_PER_CHAT)]
    documents: Annotated[list[DocumentRecord], Field(max_length=MAX_DOCUMENTS_PER_CHAT)] = []

    @model_validator(mode="after")
    def check_memory_until(self) -> "ChatRecord":
        """The memory must cover up to one of the chat's own messages."""
        if self.memory_until is not None and self.memory_until not in {message.id for message in self.messages}:
            raise PydanticCustomError("memory_until", MEMORY_OUTSIDE_CHAT, {"memory_until": self.memory_until})
        return self


class Archive(Record):
    """A whole export file: one chat or many."""

    format_version: Annotated[int, AfterValidator(check_format_version)]
    exported_at: UtcTime
    chats: Annotated[list[ChatRecord], Field(max_length=MAX_CHATS)]


def chat_record(chat: Chat, messages: list[Message], sources: dict[int, list[ReplySource]]) -> ChatRecord:
    """The record of a stored chat and the passages its replies were given (by message id); built unvalidated,
    since what is stored is exported as it is."""
    records = [message_record(message, sources.get(message.id, [])) for message in messages]
    return ChatRecord.model_construct(**chat.model_dump(), messages=records)


def describe_documents(record: ChatRecord, documents: list[Document]) -> ChatRecord:
    """The record with the documents its chat uses described."""
    return record.model_copy(update={"documents": [document_record(document) for document in documents]})


def document_record(document: Document) -> DocumentRecord:
    """The description of a stored document."""
    fields = document.model_dump(include=set(DocumentRecord.model_fields) - {"library"})
    return DocumentRecord.model_construct(**fields, library=document.chat_id is None)


def message_record(message: Message, sources: list[ReplySource]) -> MessageRecord:
    """The record of a stored message and the passages it was given."""
    given = [SourceRecord.model_construct(**source.model_dump(exclude={"message_id"})) for source in sources]
    fields = message.model_dump(include=set(MessageRecord.model_fields) - {"status", "sources"})  # not who writes it
    return MessageRecord.model_construct(**fields, status=Status(message.status), sources=given)


def dump_archive(chats: list[ChatRecord]) -> str:
    """The JSON text of an export of these chats, stamped with the current time."""
    archive = Archive.model_construct(format_version=FORMAT_VERSION, exported_at=utc_now(), chats=chats)
    return archive.model_dump_json(indent=2)


def parse_archive(data: bytes) -> Archive:
    """Validate an export file; raise ArchiveError saying, in words, what is wrong, where, and what to do."""
    if len(data) > MAX_FILE_BYTES:
        raise ArchiveError(
            f"The file is larger than {MAX_FILE_BYTES // 2**20} MB, the most chatcore imports at once. "
            "Export fewer chats per file on chatcore's Export page, then import each file."
        )
    data = as_utf8(data)
    try:
        return Archive.model_validate_json(data)
    except ValidationError as error:
        raise ArchiveError(describe_problems(data, error)) from None


def as_utf8(data: bytes) -> bytes:
    """The file's bytes in UTF-8 without the byte order mark editors may add to UTF-8 or UTF-16 text."""
    try:
        marked = decode_marked(data)
    except MismarkedTextError as error:
        damaged = f"The file is {error}: it is damaged. Import an undamaged copy, or {EXPORT_AGAIN}."
        raise ArchiveError(damaged) from None
    return data if marked is None else marked.encode()


def is_utf8(data: bytes) -> bool:
    """Whether the bytes are UTF-8 with no NUL bytes, which UTF-16 text without its byte order mark is full of."""
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


def describe_problems(data: bytes, error: ValidationError) -> str:
    """Why the file cannot be imported: not JSON, cut short, not UTF-8, damaged, foreign, too new, or its bad places."""
    problems = error.errors(include_url=False)
    if problems[0]["type"] == "json_invalid":
        return describe_broken_json(data, problems[0]["ctx"]["error"])
    version = next((problem for problem in problems if problem["loc"] == ("format_version",)), None)
    if version is not None or problems[0]["loc"] == ():
        return describe_foreign_file(version)
    return describe_bad_places(problems)


def describe_broken_json(data: bytes, parser_error: str) -> str:
    """Why a file that is not whole JSON cannot be imported."""
    if not data.strip():
        return f"The file is empty. {EXPORT_TO_IMPORT}"
    if not data.lstrip().startswith(b"{"):  # every export begins as a JSON object
        return f"This file is not a chatcore export: its contents are not JSON. {EXPORT_TO_IMPORT}"
    if parser_error.startswith("EOF"):  # how the JSON parser words running out of file before the JSON ends
        return f"The file is cut short: it ends before the export does. Import the whole file, or {EXPORT_AGAIN}."
    if not is_utf8(data):
        return NOT_UTF8
    found = JSON_ERROR_PLACE.search(parser_error)
    place = f" at line {found[1]}, column {found[2]}" if found else ""
    return f"The file is damaged: it stops being valid JSON{place}. Repair the file there, or {EXPORT_AGAIN}."


def describe_foreign_file(version: dict | None) -> str:
    """Why a file whose format version is missing or wrong, or that is no JSON object, cannot be imported."""
    number = (version or {}).get("ctx", {}).get("version")  # given only for a whole number this chatcore cannot read
    if isinstance(number, int) and number > FORMAT_VERSION:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        return (
            f"This export is from a newer chatcore (format version {number}); this one reads format versions "
            f"{readable}. Update chatcore, then import the file again."
        )
    return f"This file is not a chatcore export: it is JSON, but of another kind. {EXPORT_TO_IMPORT}"


def describe_bad_places(problems: list[dict]) -> str:
    """The first few places where an export breaks the format, each in words, and what to do."""
    lines = [f"- {describe_place(problem)}" for problem in problems[:MAX_REPORTED_ERRORS]]
    if len(problems) > MAX_REPORTED_ERRORS:
        lines.append(f"- … and {len(problems) - MAX_REPORTED_ERRORS} more")
    return (
        "This chatcore export has problems, so nothing was imported:\n"
        + "\n".join(lines)
        + f"\n\nCorrect these places in the file, or {EXPORT_AGAIN}."
    )


def describe_place(problem: dict) -> str:
    """One problem in words, e.g. Chat 2, message 1: `role` must be 'user', 'assistant' or 'system'."""
    where, field = place_in_file(problem["loc"])
    predicate = PREDICATES.get(problem["type"], "is not what chatcore writes there").format(**problem.get("ctx", {}))
    subject = ": ".join(part for part in (where, field and f"`{field}`") if part)
    return f"{subject[:1].upper()}{subject[1:]} {predicate}"


def place_in_file(location: tuple[int | str, ...]) -> tuple[str, str | None]:
    """Where a problem is, in words (e.g. chat 2, message 1), and the field there, if any, as the file names it."""
    steps, fields = [], []
    for part, following in zip(location, (*location[1:], None), strict=True):
        if isinstance(following, int):
            steps.append(f"{ITEM_NAMES.get(part, part)} {following + 1}")
        elif isinstance(part, str):
            fields.append(part)
    field = ".".join(fields)
    field = field if len(field) <= MAX_PLACE_CHARS else field[:MAX_PLACE_CHARS] + "…"
    return ", ".join(steps), field or None
