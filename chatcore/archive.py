"""The JSON export format: chats with every field of their messages, the passages each reply was given and what
documents they use, validated strictly."""

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


class ArchiveError(ValueError):
    """A file that is not a valid chatcore export; the message says what is wrong."""


def as_utc(moment: datetime) -> datetime:
    """The same moment in UTC; naive times are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_format_version(version: int) -> int:
    """Accept only the formats this chatcore knows: the one it writes and the older ones."""
    if version not in READABLE_VERSIONS:
        raise PydanticCustomError(
            "format_version",
            "version {version} is not supported; this chatcore reads versions {expected}",
            {"version": version, "expected": " and ".join(map(str, READABLE_VERSIONS))},
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
            raise ValueError(f"memory_until: {self.memory_until} is not the id of one of this chat's messages")
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
    """Validate an export file; raise ArchiveError naming each problem and where it is."""
    if len(data) > MAX_FILE_BYTES:
        raise ArchiveError(f"The file is larger than {MAX_FILE_BYTES // 2**20} MB.")
    try:
        return Archive.model_validate_json(data)
    except ValidationError as error:
        raise ArchiveError(describe_problems(error)) from None


def describe_problems(error: ValidationError) -> str:
    """The first few validation problems as a list, each with its place in the file."""
    problems = error.errors(include_url=False)
    lines = [f"- {place_in_file(problem['loc'])}: {problem['msg']}" for problem in problems[:MAX_REPORTED_ERRORS]]
    if len(problems) > MAX_REPORTED_ERRORS:
        lines.append(f"- … and {len(problems) - MAX_REPORTED_ERRORS} more")
    return "This is not a valid chatcore export:\n" + "\n".join(lines)


def place_in_file(location: tuple[int | str, ...]) -> str:
    """A validation location as a path, e.g. chats[0].messages[3].role."""
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in location)[1:] or "file"
    return path if len(path) <= MAX_PLACE_CHARS else path[:MAX_PLACE_CHARS] + "…"
