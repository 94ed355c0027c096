"""Short lines shown under messages."""

from chatcore.models import Message, Status

STATUS_NOTES = {
    Status.STOPPED: "⏹ stopped",
    Status.PARTIAL: "⚠️ interrupted: the reply stopped here",
    Status.STREAMING: "✍️ still being written",
}


def reply_caption(message: Message) -> str:
    """Model, token count and speed of a reply, and whether it was cut off."""
    parts = [message.model] if message.model else []
    if message.reply_tokens:
        parts.append(f"{message.reply_tokens} tokens")
    if speed := message.tokens_per_second():
        parts.append(f"{speed:.1f} tokens/s")
    if note := STATUS_NOTES.get(message.status):
        parts.append(note)
    return " · ".join(parts)
