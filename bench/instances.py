"""Several app instances on one PostgreSQL database: replies owned in the database, followed from another instance.

Three instance processes (tests/instance.py) each send, at the same moment, a message to 20 chats of their own
and to the 20 chats of the next instance: every chat gets two messages from two instances at once. Against the
stand-in Ollama, prints:
- replies completed (target: every message answered), replies lost (target 0), and double replies, two replies
  written in one chat at once (target 0);
- meanwhile, in this process, the time each piece of a reply reaches a follower in another instance vs a follower
  in the owning instance (the baseline), per token (target: at most the flush interval + 100 ms more).
Needs CHATCORE_TEST_POSTGRES_URL (a superuser's URL: a scratch database is created and dropped).
Run: python bench/instances.py
"""

import os
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import postgres_database
from chatcore import generation, store
from chatcore.backends import OllamaBackend
from chatcore.models import Status
from chatcore.replies import ReplyService
from tests.ollama_standin import StandinOllama

ROOT = Path(__file__).resolve().parents[1]
INSTANCES = 3
CHATS_EACH = 20
TOKENS = 50
TOKEN_DELAY_S = 0.02
FOLLOWED_TOKENS = 200
FOLLOWED_REPLIES = 3
MODEL = "llama3:8b"


class Requests:
    """The stand-in's replies, noting when each chat's requests start: two closer than a reply lasts overlapped."""

    def __init__(self):
        self.starts: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def reply(self, messages: list[dict]) -> str:
        """A reply of TOKENS words to a load message ("PREFIX CHAT_ID"), or of FOLLOWED_TOKENS to any other."""
        first = next(message["content"] for message in messages if message["role"] == "user")
        if first.startswith("follow"):
            return "word " * FOLLOWED_TOKENS
        with self._lock:
            self.starts[first.split()[-1]].append(time.monotonic())
        return "word " * TOKENS

    def doubles(self) -> int:
        """Chats where a request started before the previous one could have ended."""
        lasting = TOKENS * TOKEN_DELAY_S
        return sum(any(b - a < lasting for a, b in pairwise(s)) for s in self.starts.values())


def run_instances(url: str, ollama_url: str, chats: list[int]) -> list[subprocess.Popen]:
    """The instance processes, each ready to send to its chats and the next instance's."""
    groups = [chats[index * CHATS_EACH : (index + 1) * CHATS_EACH] for index in range(INSTANCES)]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    instances = []
    for index in range(INSTANCES):
        targets = groups[index] + groups[(index + 1) % INSTANCES]
        command = [
            sys.executable,
            "-m",
            "tests.instance",
            "race",
            url,
            ollama_url,
            f"instance{index}",
            *map(str, targets),
        ]
        instances.append(
            subprocess.Popen(command, cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        )
    for instance in instances:
        assert instance.stdout.readline().strip() == "ready"
    return instances


def arrivals(pieces) -> list[tuple[int, float]]:
    """(length of the text so far, monotonic time) at each piece."""
    seen, length = [], 0
    for piece in pieces:
        length += len(piece)
        seen.append((length, time.monotonic()))
    return seen


def follow_lag(engine, backend) -> float:
    """Mean seconds by which each piece of a reply reaches a follower in another instance after one in the owner."""
    owner, other = ReplyService(engine, auto_title=False), ReplyService(engine, auto_title=False)
    lags = []
    try:
        for _ in range(FOLLOWED_REPLIES):
            chat_id = store.create_chat(engine, model=MODEL).id
            written = owner.send(backend, chat_id, MODEL, "follow me").reply
            followed = other.live(chat_id)
            seen_here: list[tuple[int, float]] = []
            here = threading.Thread(target=lambda reply=written, seen=seen_here: seen.extend(arrivals(reply.follow())))
            here.start()
            there = arrivals(followed.follow())
            here.join()
            for length, seen_at in seen_here:
                lags.append(next(at for have, at in there if have >= length) - seen_at)
            owner.settle(chat_id)
    finally:
        owner.shutdown()
        other.shutdown()
    return statistics.mean(lags)


def count(engine, chats: list[int]) -> tuple[int, int]:
    """Replies completed, and messages sent that no reply answers."""
    completed = lost = 0
    for chat_id in chats:
        messages = store.list_messages(engine, chat_id)
        completed += sum(m.role == "assistant" and m.status == Status.COMPLETE for m in messages)
        answered = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
        lost += 2 - sum(m.role == "user" and i < answered for i, m in enumerate(messages))
    return completed, lost


def main() -> None:
    server_url = os.environ.get("CHATCORE_TEST_POSTGRES_URL")
    if not server_url:
        sys.exit("set CHATCORE_TEST_POSTGRES_URL to a PostgreSQL superuser's URL")
    url, drop = postgres_database(server_url)
    requests = Requests()
    try:
        engine = store.open_engine(url)
        with StandinOllama(token_delay=TOKEN_DELAY_S, reply=requests.reply) as standin:
            chats = [store.create_chat(engine, model=MODEL).id for _ in range(INSTANCES * CHATS_EACH)]
            instances = run_instances(url, standin.url, chats)
            started = time.perf_counter()
            for instance in instances:
                instance.stdin.write("go\n")
                instance.stdin.flush()
            lag = follow_lag(engine, OllamaBackend(standin.url))
            assert [instance.wait(timeout=600) for instance in instances] == [0] * INSTANCES
            seconds = time.perf_counter() - started
        completed, lost = count(engine, chats)
        sent = 2 * len(chats)
        at_once = f"{INSTANCES} instances x {2 * CHATS_EACH} messages at once"
        print(f"{at_once}: {completed} of {sent} replies completed in {seconds:.1f} s")
        print(f"replies lost: {lost} (target 0)")
        print(f"double replies in one chat: {requests.doubles()} (target 0)")
        flush_ms = generation.FLUSH_INTERVAL_S * 1000
        print(
            f"following from another instance: +{lag * 1000:.0f} ms per token over following in the owner "
            f"({lag * 1000 / flush_ms:.2f}x the flush interval of {flush_ms:.0f} ms; target <= {flush_ms + 100:.0f} ms)"
        )
        engine.dispose()
    finally:
        drop()


if __name__ == "__main__":
    main()
