"""Database tables: chats and their messages."""

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

DEFAULT_TITLE = "New chat"


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def tokens_per_second(reply_tokens: int | None, reply_ms: float | None) -> float | None:
    """Generation speed of a reply, when the model reported its token count and duration."""
    if not reply_tokens or not reply_ms:
        return None
    return reply_tokens / (reply_ms / 1000)


class Status(StrEnum):
    """How a message ended: complete, cut off with its text kept, or failed."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    ERROR = "error"


class Chat(SQLModel, table=True):
    """One conversation and its settings."""

    id: int | None = Field(default=None, primary_key=True)
    title: str = DEFAULT_TITLE
    model: str = ""
    system_prompt: str = ""
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now, index=True)


class Message(SQLModel, table=True):
    """One user or assistant message, with what the model reported about it."""

    __table_args__ = (Index("ix_message_chat_id_id", "chat_id", "id"),)

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
    created_at: datetime = Field(default_factory=utc_now)
