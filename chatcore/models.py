"""Database tables: chats, their messages, and what each model's tokenizer was seen to do."""

from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer
from sqlmodel import Field, SQLModel

DEFAULT_TITLE = "New chat"


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class Status(StrEnum):
    """Where a message stands: being written, complete, stopped by the user, cut off, or failed."""

    STREAMING = "streaming"
    COMPLETE = "complete"
    STOPPED = "stopped"
    PARTIAL = "partial"
    ERROR = "error"


class Chat(SQLModel, table=True):
    """One conversation and its settings."""

    id: int | None = Field(default=None, primary_key=True)
    title: str = DEFAULT_TITLE
    model: str = ""
    system_prompt: str = ""
    options: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    memory: str = ""  # the rolling summary of the turns that fell out of the window
    memory_until: int | None = None  # id of the last message the memory covers
    memory_enabled: bool = True
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
    tokens: int | None = None  # what the message costs in a prompt, as the model measured it
    created_at: datetime = Field(default_factory=utc_now)

    def tokens_per_second(self) -> float | None:
        """Generation speed of this reply, when the model reported it."""
        if not self.reply_tokens or not self.reply_ms:
            return None
        return self.reply_tokens / (self.reply_ms / 1000)


class TokenRatio(SQLModel, table=True):
    """Characters and tokens of a model's measured messages: its learned characters per token."""

    __tablename__ = "token_ratio"

    model: str = Field(primary_key=True)
    chars: int
    tokens: int
