"""An app instance in a process of its own, for the tests of several instances on one database.

python -m tests.instance start DB_URL
    start as the app does: bring the schema up to date and mark the replies whose owner died; print how many
python -m tests.instance reply DB_URL OLLAMA_URL LEASE_S CHAT_ID TEXT
    answer TEXT in a chat, holding the reply with a lease of LEASE_S seconds; print the reply's status
python -m tests.instance race DB_URL OLLAMA_URL PREFIX CHAT_ID...
    print "ready"; at the next line on stdin, send "PREFIX CHAT_ID" to every chat at once; print the ids of
    the chats where the message was queued behind another instance's reply; wait for every reply to end
"""

import json
import sys
from concurrent.futures import ThreadPoolExecutor

from chatcore import store
from chatcore.backends import OllamaBackend
from chatcore.replies import ReplyService

MODEL = "llama3:8b"


def start(db_url: str) -> None:
    """Open the database as the app does at start-up."""
    engine = store.open_engine(db_url)
    print(store.mark_interrupted_replies(engine), flush=True)


def reply(db_url: str, ollama_url: str, lease_s: str, chat_id: str, text: str) -> None:
    """Answer one message and wait for the whole reply."""
    engine = store.create_db_engine(db_url)
    service = ReplyService(engine, auto_title=False, lease_s=float(lease_s))
    service.send(OllamaBackend(ollama_url), int(chat_id), MODEL, text).reply.text()
    service.shutdown()
    print(store.recent_messages(engine, int(chat_id), limit=1)[0].status, flush=True)


def race(db_url: str, ollama_url: str, prefix: str, *chat_ids: str) -> None:
    """Send one message to each chat at once when told to, and say which were queued."""
    engine = store.create_db_engine(db_url)
    service = ReplyService(engine, auto_title=False)
    backend = OllamaBackend(ollama_url)
    chats = [int(chat_id) for chat_id in chat_ids]
    print("ready", flush=True)
    sys.stdin.readline()
    with ThreadPoolExecutor(len(chats)) as pool:
        sent = list(pool.map(lambda chat_id: service.send(backend, chat_id, MODEL, f"{prefix} {chat_id}"), chats))
    print(json.dumps([chat_id for chat_id, result in zip(chats, sent, strict=True) if result.queued]), flush=True)
    for chat_id in chats:
        service.settle(chat_id)
    service.shutdown()


if __name__ == "__main__":
    {"start": start, "reply": reply, "race": race}[sys.argv[1]](*sys.argv[2:])
