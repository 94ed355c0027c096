"""Many messages at once, from threads and from two processes, on one database: nothing lost or reordered.

Messages sent to a chat while it has a reply being written are queued and answered together by the next reply.
"""

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

import pytest

from chatcore import store
from chatcore.backends import OllamaBackend
from chatcore.models import Status

ROOT = Path(__file__).resolve().parents[1]
MODEL = "llama3:8b"
TURNS = 50
CHATS = 5

SEND_MESSAGES = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from chatcore import store
    from chatcore.backends import OllamaBackend
    from chatcore.replies import ReplyService

    db_url, ollama_url, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    chat_ids = [int(chat_id) for chat_id in sys.argv[4:]]
    engine = store.create_db_engine(db_url)
    backend = OllamaBackend(ollama_url)
    service = ReplyService(engine, auto_title=False)

    def send(index):
        service.send(backend, chat_ids[index % len(chat_ids)], "llama3:8b", f"{prefix}-{index}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(25)))
    for chat_id in chat_ids:
        service.settle(chat_id)
    service.shutdown()
    """
)


def assert_every_message_once_and_answered_in_order(engine, chat_ids, expected_texts):
    seen = []
    for chat_id in chat_ids:
        messages = store.list_messages(engine, chat_id)
        assert messages[-1].role == "assistant"  # the last message is answered too
        for before, message in pairwise(messages):
            if message.role == "assistant":  # each reply right after the newest question it answers
                assert before.role == "user" and message.content == f"Echo: {before.content}"
        assert all(message.status == Status.COMPLETE for message in messages)
        seen += [message.content for message in messages if message.role == "user"]
    assert sorted(seen) == sorted(expected_texts)


def test_fifty_messages_from_threads(engine, replies, standin):
    chat_ids = [store.create_chat(engine, model=MODEL).id for _ in range(CHATS)]
    backend = OllamaBackend(standin.url)

    def send(index):
        replies.send(backend, chat_ids[index % CHATS], MODEL, f"thread-{index}")

    with ThreadPoolExecutor(10) as pool:
        list(pool.map(send, range(TURNS)))
    for chat_id in chat_ids:
        assert replies.settle(chat_id, timeout=60)
    assert_every_message_once_and_answered_in_order(engine, chat_ids, [f"thread-{index}" for index in range(TURNS)])


@pytest.mark.slow
def test_fifty_messages_from_two_processes(engine, db_url, standin):
    chat_ids = [str(store.create_chat(engine, model=MODEL).id) for _ in range(CHATS)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen([sys.executable, "-c", SEND_MESSAGES, db_url, standin.url, prefix, *chat_ids], env=env)
        for prefix in ("first", "second")
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    expected = [f"{prefix}-{index}" for prefix in ("first", "second") for index in range(TURNS // 2)]
    assert_every_message_once_and_answered_in_order(engine, [int(chat_id) for chat_id in chat_ids], expected)
