"""The reply service: concurrency, database writes, and latency added per token.

Against the stand-in Ollama (about 2000 tokens/s per reply), prints:
- the wall time of 20 replies written concurrently through the reply service vs one, and the ratio;
- database writes (INSERT/UPDATE statements) per reply;
- time per token seen by a follower of a reply the service writes vs streaming the turn's steps directly
  in the calling thread (target <= 1.05x).
Run: python bench/replies.py
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
from chatcore.replies import ReplyService
from tests.ollama_standin import StandinOllama

TOKENS = 1000
TOKEN_DELAY_S = 0.0005
CONCURRENT = 20
ROUNDS = 5
MODEL = "llama3:8b"


def replies_wall_time(service: ReplyService, backend, engine, count: int) -> float:
    """Seconds until `count` replies started together have all been written; their follow-ups end after."""
    chats = [store.create_chat(engine, model=MODEL).id for _ in range(count)]
    start = time.perf_counter()
    replies = [service.send(backend, chat_id, MODEL, "go").reply for chat_id in chats]
    for reply in replies:
        reply.text()
    seconds = time.perf_counter() - start
    for chat_id in chats:
        service.settle(chat_id)
    return seconds


def direct_pieces(engine, backend, chat_id: int):
    """The baseline: the turn's steps run in the calling thread; the message is saved and the request planned now."""
    turn = generation.start_turn(engine, chat_id, "go", MODEL, store.Lease("bench", 60.0))
    prompt = generation.plan_reply(engine, backend, chat_id, turn, MODEL)
    return generation.stream_reply(engine, backend, turn, prompt)


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
        service = ReplyService(engine, auto_title=False)

        one = replies_wall_time(service, backend, engine, 1)
        many = replies_wall_time(service, backend, engine, CONCURRENT)
        print(f"1 reply through the reply service: {one:.2f} s")
        ratio = many / one
        print(f"{CONCURRENT} concurrent replies through the reply service: {many:.2f} s ({ratio:.2f}x the time of one)")

        writes = count_writes(engine)
        replies_wall_time(service, backend, engine, 1)
        print(f"database writes per {TOKENS}-token reply: {writes[0]}")

        direct, followed = [], []
        for _ in range(ROUNDS):
            chat_id = store.create_chat(engine, model=MODEL).id
            direct.append(seconds_per_token(direct_pieces(engine, backend, chat_id)))
            chat_id = store.create_chat(engine, model=MODEL).id
            followed.append(seconds_per_token(service.send(backend, chat_id, MODEL, "go").reply.follow()))
            service.settle(chat_id)
        service.shutdown()
        direct_s, followed_s = statistics.median(direct), statistics.median(followed)
        print(f"per token, direct streaming: {direct_s * 1e6:.0f} us")
        print(f"per token, following a reply the service writes: {followed_s * 1e6:.0f} us")
        print(f"per-token latency ratio (service / direct): {followed_s / direct_s:.3f}x (target <= 1.05x)")


if __name__ == "__main__":
    main()
