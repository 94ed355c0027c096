"""Sending a message the way the chat page does, for tests and benchmarks."""

from chatcore import store
from chatcore.backends import Backend
from chatcore.replies import ReplyService

LEASE = store.Lease("tests", 60.0)  # an instance's hold on a reply that no other takes over during a test


def reply_to(service: ReplyService, backend: Backend, chat_id: int, text: str, model: str = "fake:latest") -> str:
    """Send `text` through the reply service and wait for the whole reply and its follow-ups; the reply's text."""
    reply = service.send(backend, chat_id, model, text).reply
    text = reply.text()
    service.settle(chat_id)
    return text
