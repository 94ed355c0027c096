"""Big databases: the sidebar over 10,000 chats, opening and exporting a 10,000-message chat, search.

Runs on SQLite, and on PostgreSQL too when CHATCORE_TEST_POSTGRES_URL names a superuser (a scratch
database is created and dropped). Prints one line per figure (median of 5),
targets: list and open < 20 ms, search (over 1,000,000 messages) < 100 ms, export < 1 s.
Run: python bench/scale.py
"""

import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, insert, make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatcore import search, store
from chatcore.export import Format, plan_export
from chatcore.models import Chat, Message, utc_now

CHATS = 10_000
BIG_CHAT_MESSAGES = 10_000
ALL_MESSAGES = 1_000_000
BATCH = 20_000
WORDS = ["river", "mountain", "garden", "python", "recipe", "travel", "budget", "music", "planet", "history"]


def fill(engine) -> int:
    """10,000 chats and 1,000,000 messages, 10,000 of them in one chat; returns that chat's id."""
    now = utc_now()
    with engine.begin() as connection:
        connection.execute(insert(Chat), [{"title": f"chat {i}", "model": "m", "system_prompt": "", "options": {},
                                           "created_at": now, "updated_at": now} for i in range(CHATS)])  # fmt: skip
    generator = random.Random(7)
    for start in range(0, ALL_MESSAGES, BATCH):
        rows = [message_row(index, generator, now) for index in range(start, start + BATCH)]
        with engine.begin() as connection:
            connection.execute(insert(Message), rows)
    return 1


def message_row(index: int, generator: random.Random, now) -> dict:
    """One message: the first 10,000 belong to chat 1, the rest are spread over all chats."""
    chat_id = 1 if index < BIG_CHAT_MESSAGES else generator.randrange(1, CHATS + 1)
    content = " ".join(generator.choice(WORDS) for _ in range(12)) + f" token{index}"
    return {"chat_id": chat_id, "role": "user" if index % 2 == 0 else "assistant", "content": content,
            "status": "complete", "error": "", "model": "m", "created_at": now}  # fmt: skip


def median_ms(action, rounds: int = 5) -> float:
    """Median wall time of an action, in milliseconds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(label: str, url: str) -> None:
    """Fill a fresh database at `url` and print the three figures."""
    engine = store.open_engine(url)
    started = time.perf_counter()
    big_chat = fill(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")  # a live database has planner statistics
    print(f"{label}: filled {CHATS} chats and {ALL_MESSAGES} messages in {time.perf_counter() - started:.0f} s")
    listing = median_ms(lambda: (store.list_chats(engine, 50), store.count_chats(engine)))
    print(f"{label}: sidebar listing of {CHATS} chats: {listing:.1f} ms (target < 20 ms)")
    opening = median_ms(lambda: (store.recent_messages(engine, big_chat, 50), store.count_messages(engine, big_chat)))
    print(f"{label}: opening a {BIG_CHAT_MESSAGES}-message chat: {opening:.1f} ms (target < 20 ms)")
    words = iter([f"{a} {b}" for a in WORDS for b in WORDS][:5])
    searching = median_ms(lambda: search.search_chats(engine, next(words)))
    print(f"{label}: search over {ALL_MESSAGES} messages: {searching:.1f} ms (target < 100 ms)")
    for fmt in Format:
        exporting = median_ms(plan_export(engine, [big_chat], fmt).build)
        print(
            f"{label}: exporting a {BIG_CHAT_MESSAGES}-message chat as {fmt.value}: {exporting:.0f} ms (target < 1 s)"
        )
    engine.dispose()


def postgres_database(server_url: str):
    """A scratch PostgreSQL database: its URL, and a function that drops it."""
    name = f"chatcore_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')

    return make_url(server_url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        measure("sqlite", f"sqlite:///{folder}/scale.db")
    if server_url := os.environ.get("CHATCORE_TEST_POSTGRES_URL"):
        url, drop = postgres_database(server_url)
        try:
            measure("postgresql", url)
        finally:
            drop()


if __name__ == "__main__":
    main()
