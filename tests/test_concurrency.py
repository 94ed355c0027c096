"""Many turns at once, from threads and from two processes, on one database: nothing lost or reordered."""

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chatcore import generation, store
from chatcore.backends import OllamaBackend

ROOT = Path(__file__).resolve().parents[1]
MODEL = "llama3:8b"
TURNS = 50
CHATS = 5

RUN_TURNS = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from chatcore import generation, store
    from chatcore.backends import OllamaBackend

    db_url, ollama_url, prefix, chat_ids = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    engine = store.create_db_engine(db_url)
    backend = OllamaBackend(ollama_url)

    def turn(index):
        chat_id = int(chat_ids[index % len(chat_ids)])
        return "".join(generation.run_turn(engine, backend, chat_id, f"{prefix}-{index}", "llama3:8b"))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(turn, range(25)))
    """
)


def assert_every_turn_once_and_in_order(engine, chat_ids, expected_texts):
    seen = []
    for chat_id in chat_ids:
        messages = store.recent_messages(engine, chat_id, limit=10_000)
        questions, answers = messages[0::2], messages[1::2]
        assert all(m.role == "user" for m in questions) and all(m.role == "assistant" for m in answers)
        for question, answer in zip(questions, answers, strict=True):
            assert answer.content == f"Echo: {question.content}"  # each reply right after its question
        seen += [m.content for m in questions]
    assert sorted(seen) == sorted(expected_texts)


def test_fifty_turns_from_threads(engine, standin):
    chat_ids = [store.create_chat(engine, model=MODEL).id for _ in range(CHATS)]
    backend = OllamaBackend(standin.url)

    def turn(index):
        chat_id = chat_ids[index % CHATS]
        return "".join(generation.run_turn(engine, backend, chat_id, f"thread-{index}", MODEL))

    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(turn, range(TURNS)))
    assert replies == [f"Echo: thread-{index}" for index in range(TURNS)]
    assert_every_turn_once_and_in_order(engine, chat_ids, [f"thread-{index}" for index in range(TURNS)])


def test_fifty_turns_from_two_processes(engine, db_url, standin):
    chat_ids = [str(store.create_chat(engine, model=MODEL).id) for _ in range(CHATS)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen([sys.executable, "-c", RUN_TURNS, db_url, standin.url, prefix, *chat_ids], env=env)
        for prefix in ("first", "second")
    ]
    assert [process.wait(timeout=120) for process in processes] == [0, 0]
    expected = [f"{prefix}-{index}" for prefix in ("first", "second") for index in range(TURNS // 2)]
    assert_every_turn_once_and_in_order(engine, [int(chat_id) for chat_id in chat_ids], expected)
