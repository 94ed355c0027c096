"""Building a chat's context window: its cost must not grow with the length of the chat.

For chats of 50, 1,000, 10,000 and 100,000 messages (inserted in bulk into one database), prints the median time to
build the next request's window as a reply does (chat settings, learned ratio, newest rows until the
budget is full), then the ratio largest / smallest (target <= 2x; absolute target < 20 ms at 10,000).
Run: python bench/context_window.py
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatcore import store
from chatcore.backends import FakeBackend
from chatcore.prompt import build_prompt
from tests.history import fill_chat

SIZES = (50, 1_000, 10_000, 100_000)
ROUNDS = 30
MODEL = "llama3:8b"


def median_build_ms(engine, chat_id: int) -> tuple[float, int]:
    """Median milliseconds to build the chat's window, and how many messages it holds."""
    backend = FakeBackend()
    timings = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        window = build_prompt(engine, backend, store.get_chat(engine, chat_id), MODEL).window
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings), len(window.history)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = store.open_engine(f"sqlite:///{folder}/bench.db")
        chats = {size: store.create_chat(engine, model=MODEL).id for size in SIZES}
        for size, chat_id in chats.items():
            fill_chat(engine, chat_id, size)
        # Every chat is measured in the same database, so only the length of the chat differs.
        results = {}
        for size, chat_id in chats.items():
            results[size], kept = median_build_ms(engine, chat_id)
            print(f"window build, {size:,}-message chat: {results[size]:.2f} ms ({kept} messages in the window)")
        largest, smallest = results[SIZES[-1]], results[SIZES[0]]
        print(f"ratio {SIZES[-1]:,} / {SIZES[0]:,} messages: {largest / smallest:.2f}x (target <= 2x)")
        engine.dispose()


if __name__ == "__main__":
    main()
