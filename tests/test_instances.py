"""Several app instances on one database: each reply owned there by one instance, followed and stopped from any.

An instance is a ReplyService: two in one process for most tests, and real processes (tests/instance.py) for
start-up, a killed instance, and two instances sending to the same chats at the same moment.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chatcore import store
from chatcore.backends import OllamaBackend
from chatcore.models import Status
from chatcore.replies import ChatBusyError, ReplyService
from tests.conftest import STALLED_REPLY, wait_until
from tests.ollama_standin import StandinOllama

ROOT = Path(__file__).resolve().parents[1]
MODEL = "llama3:8b"
SLOW_REPLY = "word " * 40
LEASE_S = 4.0  # short, so that a killed instance's reply is taken over soon; long enough to check it is not before
RACES = 50


@pytest.fixture
def slow_standin():
    """A stand-in Ollama writing a reply in about two seconds."""
    with StandinOllama(token_delay=0.05, reply=lambda messages: SLOW_REPLY) as server:
        yield server


@pytest.fixture
def other(engine):
    """A second app instance on the test's database."""
    service = ReplyService(engine, auto_title=False)
    yield service
    service.shutdown()


def chat_messages(engine, chat_id: int) -> list[tuple[str, str, str]]:
    return [(m.role, m.content, m.status) for m in store.list_messages(engine, chat_id)]


def reply_text(engine, chat_id: int) -> str:
    """The text saved so far of the chat's newest reply, if it has one yet."""
    newest = store.recent_messages(engine, chat_id, limit=1)
    return newest[0].content if newest and newest[0].role == "assistant" else ""


def test_a_message_sent_on_another_instance_mid_reply_is_queued_and_answered_by_the_owner(
    engine, replies, other, stalling_standin
):
    chat = store.create_chat(engine, model=MODEL)
    backend = OllamaBackend(stalling_standin.url)
    first = replies.send(backend, chat.id, MODEL, "first").reply
    sent = other.send(backend, chat.id, MODEL, "second")
    assert sent.queued and sent.reply.turn == first.turn  # the page follows the owner's reply
    assert other.working(chat.id)
    stalling_standin.resume()
    assert replies.settle(chat.id, timeout=60)
    assert chat_messages(engine, chat.id) == [
        ("user", "first", Status.COMPLETE),
        ("assistant", STALLED_REPLY, Status.COMPLETE),
        ("user", "second", Status.COMPLETE),
        ("assistant", STALLED_REPLY, Status.COMPLETE),
    ]
    assert len(stalling_standin.chat_requests) == 2 and not other.working(chat.id)


def test_another_instance_follows_the_reply_as_it_is_saved(engine, replies, other, slow_standin):
    chat = store.create_chat(engine, model=MODEL)
    written = replies.send(OllamaBackend(slow_standin.url), chat.id, MODEL, "tell me").reply
    followed = other.live(chat.id)
    assert followed.turn == written.turn and other.working(chat.id)
    parts = list(followed.follow())
    assert "".join(parts) == SLOW_REPLY and len(parts) > 1  # as saved, part by part
    assert followed.finished and followed.error == ""
    assert other.live(chat.id) is None and not other.working(chat.id)


def test_stop_on_another_instance_closes_the_owners_request_and_keeps_the_text(engine, replies, other, slow_standin):
    chat = store.create_chat(engine, model=MODEL)
    replies.send(OllamaBackend(slow_standin.url), chat.id, MODEL, "tell me")
    wait_until(lambda: reply_text(engine, chat.id))
    other.stop(chat.id)
    wait_until(lambda: slow_standin.disconnects == 1)
    assert replies.settle(chat.id, timeout=10)
    _, (_, content, status) = chat_messages(engine, chat.id)
    assert status == Status.STOPPED and content and SLOW_REPLY.startswith(content)


def test_a_stop_while_the_owners_model_loads_closes_its_request(engine, replies, other, standin):
    standin.prompt_delay = 60
    chat = store.create_chat(engine, model=MODEL)
    replies.send(OllamaBackend(standin.url), chat.id, MODEL, "anyone there?")
    wait_until(lambda: standin.chat_requests)
    other.stop(chat.id)
    wait_until(lambda: standin.disconnects == 1)
    assert replies.settle(chat.id, timeout=10)
    assert chat_messages(engine, chat.id)[-1] == ("assistant", "", Status.STOPPED)


def test_regenerating_on_another_instance_mid_reply_is_refused_and_changes_nothing(
    engine, replies, other, stalling_standin
):
    chat = store.create_chat(engine, model=MODEL)
    backend = OllamaBackend(stalling_standin.url)
    replies.send(backend, chat.id, MODEL, "tell me")
    with pytest.raises(ChatBusyError, match="still being written"):
        other.regenerate(backend, chat.id, MODEL)
    with pytest.raises(ChatBusyError, match="still being written"):
        other.resend_edited(backend, chat.id, MODEL, "tell me more")
    stalling_standin.resume()
    assert replies.settle(chat.id, timeout=60)
    assert chat_messages(engine, chat.id) == [
        ("user", "tell me", Status.COMPLETE),
        ("assistant", STALLED_REPLY, Status.COMPLETE),
    ]


def test_a_reply_whose_owner_died_is_interrupted_when_its_chat_is_opened_and_its_queue_answered(
    engine, replies, standin
):
    chat = store.create_chat(engine, model=MODEL)
    _, reply_id = store.add_exchange(engine, chat.id, "asked", MODEL, store.Lease("died", -1))  # its lease ran out
    store.update_message(engine, reply_id, content="half an ans")
    store.queue_message(engine, chat.id, "typed meanwhile", MODEL)
    assert replies.live(chat.id) is None and not replies.working(chat.id)
    assert chat_messages(engine, chat.id)[1] == ("assistant", "half an ans", Status.PARTIAL)
    assert replies.answer_queued(OllamaBackend(standin.url), chat.id, MODEL).text() == "Echo: typed meanwhile"


def run_instance(*args: str, **popen) -> subprocess.Popen:
    """An app instance in a process of its own (tests/instance.py)."""
    command = [sys.executable, "-m", "tests.instance", *args]
    return subprocess.Popen(command, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, text=True, **popen)


@pytest.mark.slow  # real instance processes
def test_an_instance_starting_leaves_another_instances_reply_alone(engine, db_url, slow_standin):
    slow_standin.token_delay = 0.3  # still writing when the other instance has started
    chat = store.create_chat(engine, model=MODEL)
    writer = run_instance(
        "reply", db_url, slow_standin.url, str(LEASE_S), str(chat.id), "tell me", stdout=subprocess.PIPE
    )
    wait_until(lambda: reply_text(engine, chat.id), timeout=30)
    starting = run_instance("start", db_url, stdout=subprocess.PIPE)
    assert starting.communicate(timeout=60)[0].strip() == "0"
    assert store.recent_messages(engine, chat.id, limit=1)[0].status == Status.STREAMING
    assert writer.communicate(timeout=60)[0].strip() == Status.COMPLETE
    assert chat_messages(engine, chat.id)[-1] == ("assistant", SLOW_REPLY, Status.COMPLETE)


@pytest.mark.slow  # real instance processes
def test_a_killed_instances_reply_is_interrupted_once_its_lease_runs_out_and_not_before(
    engine, db_url, replies, slow_standin
):
    slow_standin.token_delay = 0.5  # still writing long after the kill
    chat = store.create_chat(engine, model=MODEL)
    writer = run_instance("reply", db_url, slow_standin.url, str(LEASE_S), str(chat.id), "tell me")
    wait_until(lambda: reply_text(engine, chat.id), timeout=30)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    kept = reply_text(engine, chat.id)
    assert store.mark_interrupted_replies(engine) == 0  # an instance starting now: the lease still holds
    assert replies.working(chat.id) and replies.live(chat.id).pieces == [kept]
    wait_until(lambda: replies.live(chat.id) is None, timeout=5 * LEASE_S)
    assert chat_messages(engine, chat.id)[-1] == ("assistant", kept, Status.PARTIAL)


@pytest.fixture
def held_standin():
    """A stand-in Ollama that holds every reply before its first word, until the test resumes them."""
    with StandinOllama(stall_after=0) as server:
        yield server


@pytest.mark.slow  # real instance processes
def test_two_instances_sending_to_a_chat_at_the_same_moment_write_one_reply_and_queue_the_other(
    engine, db_url, held_standin
):
    chats = [store.create_chat(engine, model=MODEL).id for _ in range(RACES)]
    prefixes = ("alpha", "bravo")
    racers = [
        run_instance(
            "race", db_url, held_standin.url, prefix, *map(str, chats), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for prefix in prefixes
    ]
    assert [racer.stdout.readline().strip() for racer in racers] == ["ready", "ready"]
    for racer in racers:
        racer.stdin.write("go\n")
        racer.stdin.flush()
    queued = [set(json.loads(racer.stdout.readline())) for racer in racers]
    held_standin.resume()
    assert [racer.wait(timeout=120) for racer in racers] == [0, 0]
    assert queued[0].isdisjoint(queued[1]) and queued[0] | queued[1] == set(chats)  # one winner each time
    for chat_id in chats:
        first, second = ("bravo", "alpha") if chat_id in queued[0] else ("alpha", "bravo")
        assert chat_messages(engine, chat_id) == [
            ("user", f"{first} {chat_id}", Status.COMPLETE),
            ("assistant", f"Echo: {first} {chat_id}", Status.COMPLETE),
            ("user", f"{second} {chat_id}", Status.COMPLETE),
            ("assistant", f"Echo: {second} {chat_id}", Status.COMPLETE),
        ]
