"""The line under each reply."""

import pytest

from chatcore.captions import reply_caption
from chatcore.models import Message, Status


@pytest.mark.parametrize(
    ("fields", "caption"),
    [
        ({"model": "llama3:8b", "reply_tokens": 50, "reply_ms": 2000.0}, "llama3:8b · 50 tokens · 25.0 tokens/s"),
        ({"model": "llama3:8b"}, "llama3:8b"),
        ({"model": "m", "reply_tokens": 3, "reply_ms": 0.0}, "m · 3 tokens"),
        ({"model": "m", "status": Status.PARTIAL}, "m · ⚠️ interrupted: the reply stopped here"),
        ({"model": "m", "status": Status.STOPPED}, "m · ⏹ stopped"),
        ({"status": Status.STREAMING}, "✍️ still being written"),
        ({"status": Status.ERROR}, ""),
        ({}, ""),
    ],
)
def test_reply_caption(fields, caption):
    assert reply_caption(Message(chat_id=1, role="assistant", **fields)) == caption
