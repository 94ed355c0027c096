"""Database tables: chats, their messages, what each model's tokenizer was seen to do, and documents."""

import uuid
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, TypeDecorator, text
from sqlmodel import Field, SQLModel

DEFAULT_TITLE = "New chat"


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator):
    """A timestamp handed back in UTC, timezone-aware, on every database (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        """Store aware times in UTC."""
        return value.astimezone(UTC) if value is not None and value.tzinfo else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """Read times back as aware UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_uid() -> str:
    """A random id that names a chat in every database it is exported to."""
    return str(uuid.uuid4())


def tokens_per_second(reply_tokens: int | None, reply_ms: float | None) -> float | None:
    """Generation speed of a reply, when the model reported its token count and duration."""
    if not reply_tokens or not reply_ms:
        return None
    return reply_tokens / (reply_ms / 1000)


class Status(StrEnum):
    """Where a message stands: queued, being written, complete, cut at the length limit, stopped by the user,
    cut off by a failure, or failed."""

    QUEUED = "queued"
    STREAMING = "streaming"
    COMPLETE = "complete"
    CUT = "cut"  # ended by the model at the length it may write (Ollama's done_reason "length")
    STOPPED = "stopped"
    PARTIAL = "partial"
    ERROR = "error"


class Chat(SQLModel, table=True):
    """One conversation and its settings."""

    id: int | None = Field(default=None, primary_key=True)
    uid: str = Field(default_factory=new_uid, unique=True, index=True)
    title: str = DEFAULT_TITLE
    model: str = ""
    system_prompt: str = ""
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    memory: str = ""  # the rolling summary of the turns that fell out of the window
    memory_until: int | None = None  # id of the last message the memory covers
    memory_enabled: bool = True
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime, index=True)


STREAMING_ONLY = "status = 'streaming'"  # the replies being written: few, so an index of their own finds them at once


class Message(SQLModel, table=True):
    """One user or assistant message, with what the model reported about it.

    A reply being written is owned by one app instance (`owner`), as long as that instance keeps renewing its lease.
    """

    __table_args__ = (
        Index("ix_message_chat_id_id", "chat_id", "id"),
        Index(
            "ix_message_streaming",
            "chat_id",
            sqlite_where=text(STREAMING_ONLY),
            postgresql_where=text(STREAMING_ONLY),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_column=Column(Integer, ForeignKey("chat.id", ondelete="CASCADE"), nullable=False))
    role: str
    content: str = ""
    status: str = Status.COMPLETE
    error: str = ""
    model: str = ""
    prompt_tokens: int | None = None
    reply_tokens: int | None = None
    prompt_ms: float | None = None
    reply_ms: float | None = None
    total_ms: float | None = None
    tokens: int | None = None  # what the message costs in a prompt, as the model measured it
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    owner: str = ""  # the app instance writing the reply
    lease_until: datetime | None = Field(default=None, sa_type=UtcDateTime)  # by the database's clock
    stop_requested: bool = False  # set by any instance; the owner stops the reply at its next heartbeat
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # when a reply ended


class TokenRatio(SQLModel, table=True):
    """Characters and tokens of a model's measured messages: its learned characters per token."""

    __tablename__ = "token_ratio"

    model: str = Field(primary_key=True)
    chars: int
    tokens: int


class Document(SQLModel, table=True):
    """An uploaded file: in one chat, or in the library (no chat) to be attached to any chat."""

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("chat.id", ondelete="CASCADE"), nullable=True, index=True)
    )
    name: str  # as uploaded: shown as text, never used as a path
    kind: str
    sha256: str = Field(unique=True)
    size: int
    pages: int
    chunk_count: int
    status: str = "ready"
    created_at: datetime = Field(default_factory=utc_now, sa_type=UtcDateTime)
    summary: str = ""  # written once, in the background, by summary_model
    summary_model: str = ""
    vectors_model: str = ""  # the embedding model every chunk has a vector from, if any


class Chunk(SQLModel, table=True):
    """A passage of a document: its order, page or section, and characters [start, end) there."""

    __table_args__ = (Index("ix_chunk_document_id_ordinal", "document_id", "ordinal"),)

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(sa_column=Column(Integer, ForeignKey("document.id", ondelete="CASCADE"), nullable=False))
    ordinal: int
    page: int
    start: int
    end: int
    text: str


class ChunkVector(SQLModel, table=True):
    """A chunk's embedding vector: little-endian float32, of unit length."""

    __tablename__ = "chunk_vector"

    chunk_id: int = Field(sa_column=Column(Integer, ForeignKey("chunk.id", ondelete="CASCADE"), primary_key=True))
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class DocumentAttachment(SQLModel, table=True):
    """A library document attached to a chat."""

    __tablename__ = "document_attachment"

    chat_id: int = Field(sa_column=Column(Integer, ForeignKey("chat.id", ondelete="CASCADE"), primary_key=True))
    document_id: int = Field(
        sa_column=Column(Integer, ForeignKey("document.id", ondelete="CASCADE"), primary_key=True, index=True)
    )


class ReplySource(SQLModel, table=True):
    """A passage a reply was given, under the number it was cited by, kept as given when its document is deleted."""

    __tablename__ = "reply_source"

    message_id: int = Field(sa_column=Column(Integer, ForeignKey("message.id", ondelete="CASCADE"), primary_key=True))
    label: int = Field(primary_key=True)
    document_sha256: str  # the document it came from, while one with this content is stored
    document_name: str
    document_kind: str
    page: int
    text: str
