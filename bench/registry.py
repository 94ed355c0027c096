"""The background reply registry: concurrency, database writes, and latency added per token.

Against the stand-in Ollama (about 2000 tokens/s per reply), prints:
- the wall time of 20 replies written concurrently through the registry vs one, and the ratio;
- database writes (INSERT/UPDATE statements) per reply;
- time per token seen by a follower of a background reply vs streaming the turn directly
  (target <= 1.05x).
Run: python bench/registry.py
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatcore import generation, store
from chatcore.backends import OllamaBackend
from chatcore.workers import Registry
from tests.ollama_standin import StandinOllama

TOKENS = 1000
TOKEN_DELAY_S = 0.0005
CONCURRENT = 20
ROUNDS = 5
MODEL = "llama3:8b"


def replies_wall_time(registry: Registry, backend, engine, count: int) -> float:
    """Seconds until `count` replies started together have all finished."""
    chats = [store.create_chat(engine, model=MODEL).id for _ in range(count)]
    start = time.perf_counter()
    jobs = [registry.send(backend, chat_id, MODEL, "go") for chat_id in chats]
    for job in jobs:
        for _ in job.follow():
            pass
    return time.perf_counter() - start


def seconds_per_token(pieces) -> float:
    """Time from the start to the last piece, per token of the reply."""
    start = time.perf_counter()
    for _ in pieces:
        pass
    return (time.perf_counter() - start) / TOKENS


def count_writes(engine) -> list[int]:
    """A counter of INSERT and UPDATE statements run on the engine."""
    writes = [0]

    def on_execute(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            writes[0] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    return writes


def main() -> None:
    reply = " ".join(f"w{index}" for index in range(TOKENS))
    with tempfile.TemporaryDirectory() as folder, StandinOllama(token_delay=TOKEN_DELAY_S) as server:
        server.reply = lambda messages: reply
        engine = store.open_engine(f"sqlite:///{folder}/bench.db")
        backend = OllamaBackend(server.url)
        registry = Registry(engine, auto_title=False)

        one = replies_wall_time(registry, backend, engine, 1)
        many = replies_wall_time(registry, backend, engine, CONCURRENT)
        print(f"1 reply through the registry: {one:.2f} s")
        print(f"{CONCURRENT} concurrent replies through the registry: {many:.2f} s ({many / one:.2f}x the time of one)")

        writes = count_writes(engine)
        replies_wall_time(registry, backend, engine, 1)
        print(f"database writes per {TOKENS}-token reply: {writes[0]}")

        direct, followed = [], []
        for _ in range(ROUNDS):
            chat_id = store.create_chat(engine, model=MODEL).id
            direct.append(seconds_per_token(generation.run_turn(engine, backend, chat_id, "go", MODEL)))
            chat_id = store.create_chat(engine, model=MODEL).id
            followed.append(seconds_per_token(registry.send(backend, chat_id, MODEL, "go").follow()))
        direct_s, followed_s = statistics.median(direct), statistics.median(followed)
        print(f"per token, direct streaming: {direct_s * 1e6:.0f} us")
        print(f"per token, following a background reply: {followed_s * 1e6:.0f} us")
        print(f"per-token latency ratio (background / direct): {followed_s / direct_s:.3f}x (target <= 1.05x)")


if __name__ == "__main__":
    main()
