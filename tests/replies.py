"""Sending a message the way the chat page does, for tests and benchmarks."""

from chatcore.backends import Backend
from chatcore.replies import ReplyService


def reply_to(service: ReplyService, backend: Backend, chat_id: int, text: str, model: str = "fake:latest") -> str:
    """Send `text` through the reply service and wait for the whole reply and its follow-ups; the reply's text."""
    reply = service.send(backend, chat_id, model, text).reply
    text = reply.text()
    service.settle(chat_id)
    return text
