"""Short lines shown under messages."""

from typing import Protocol

from chatcore.models import Status, tokens_per_second

STATUS_NOTES = {
    Status.STOPPED: "⏹ stopped",
    Status.PARTIAL: "⚠️ interrupted: the reply stopped here",
    Status.STREAMING: "✍️ still being written",
}


class Reply(Protocol):
    """What a caption is made of: a stored Message or an exported one."""

    model: str
    status: str
    reply_tokens: int | None
    reply_ms: float | None


def reply_caption(message: Reply) -> str:
    """Model, token count and speed of a reply, and whether it was cut off."""
    parts = [message.model] if message.model else []
    if message.reply_tokens:
        parts.append(f"{message.reply_tokens} tokens")
    if speed := tokens_per_second(message.reply_tokens, message.reply_ms):
        parts.append(f"{speed:.1f} tokens/s")
    if note := STATUS_NOTES.get(message.status):
        parts.append(note)
    return " · ".join(parts)
