"""The reply service: replies written in worker threads, queued messages, follow-ups, against the stand-in Ollama."""

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from chatcore import documents, generation, memory, store, vectors
from chatcore.backends import FakeBackend, OllamaBackend
from chatcore.captions import context_caption
from chatcore.context import MEMORY_HEADING
from chatcore.generation import Turn
from chatcore.models import Status
from chatcore.prompt import ContextOverflowError, build_prompt
from chatcore.replies import MEMORY, TITLE, ChatBusyError, LiveReply, ReplyService
from tests.conftest import STALLED_REPLY, BuggyBackend, wait_until
from tests.embedding import ConceptEmbedder
from tests.ollama_standin import StandinOllama
from tests.replies import reply_to

MODEL = "llama3:8b"
LIMIT = 50 * 2**20


@pytest.fixture
def titling(engine):
    """A reply service that titles chats, as the app's does."""
    service = ReplyService(engine)
    yield service
    service.shutdown()


@pytest.fixture
def held_title():
    """A stand-in Ollama that answers at once but holds each title request until `release` is set."""
    release = threading.Event()

    def reply(messages):
        if messages[-1]["content"].startswith("Write a title"):
            release.wait(timeout=10)
            return "Greeting the bot"
        return "Hi there!"

    with StandinOllama(reply=reply) as server:
        server.release = release
        yield server
        release.set()


class OverlapCounter:
    """A backend that streams through another one, counting the most replies it streamed at once."""

    def __init__(self, backend):
        self.backend = backend
        self.streaming = 0
        self.most = 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def stream_chat(self, *args):
        """The other backend's stream, counted while it lasts."""
        with self._lock:
            self.streaming += 1
            self.most = max(self.most, self.streaming)
        try:
            yield from self.backend.stream_chat(*args)
        finally:
            with self._lock:
                self.streaming -= 1


def reply_requests(server) -> list[list[dict]]:
    """The messages of each chat request the stand-in got, summary requests left out."""
    requests = [request["messages"] for request in server.chat_requests]
    return [messages for messages in requests if messages[0]["content"] != memory.SUMMARY_INSTRUCTIONS]


def last_message(engine, chat_id):
    return store.recent_messages(engine, chat_id, limit=1)[0]


def roles_and_texts(engine, chat_id) -> list[tuple[str, str]]:
    return [(message.role, message.content) for message in store.list_messages(engine, chat_id)]


def test_a_reply_completes_with_nobody_following(engine, replies, standin):
    chat = store.create_chat(engine, model=MODEL)
    sent = replies.send(OllamaBackend(standin.url), chat.id, MODEL, "hello")
    wait_until(lambda: replies.live(chat.id) is None)
    saved = last_message(engine, chat.id)
    assert (saved.content, saved.status) == ("Echo: hello", Status.COMPLETE)
    assert not sent.queued and sent.reply.finished and sent.reply.error == ""


def test_following_gives_the_backlog_then_the_rest(engine, replies, stalling_standin):
    chat = store.create_chat(engine, model=MODEL)
    reply = replies.send(OllamaBackend(stalling_standin.url), chat.id, MODEL, "go").reply
    wait_until(lambda: len(reply.pieces) >= 3)
    stalling_standin.resume()
    assert "".join(reply.follow()) == STALLED_REPLY  # a follower arriving late still sees everything
    assert last_message(engine, chat.id).status == Status.COMPLETE


def test_following_until_a_deadline_returns_at_it_while_the_text_keeps_coming(engine, replies, stalling_standin):
    chat = store.create_chat(engine, model=MODEL)
    reply = replies.send(OllamaBackend(stalling_standin.url), chat.id, MODEL, "go").reply
    wait_until(lambda: reply.pieces)
    deadline = time.monotonic() + 0.2
    early = "".join(reply.follow(until=deadline))
    assert deadline <= time.monotonic() < deadline + 0.5 and not reply.finished
    assert STALLED_REPLY.startswith(early) and len(early) < len(STALLED_REPLY)
    stalling_standin.resume()
    assert reply.text() == STALLED_REPLY == last_message(engine, chat.id).content  # a late follower gets it all


def test_following_every_so_often_joins_the_text_that_came_meanwhile():
    reply, words = LiveReply(1, Turn(1, 2)), [f"{number} " for number in range(60)]

    def write():
        for word in words:
            reply.append(word)
            time.sleep(0.002)
        reply.finish()

    writer = threading.Thread(target=write)
    writer.start()
    arrivals = [(time.monotonic(), piece) for piece in reply.follow(every=0.05)]
    writer.join()
    assert "".join(piece for _, piece in arrivals) == "".join(words)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(arrivals)]
    assert 2 <= len(arrivals) < len(words) and min(gaps) >= 0.05


def test_stop_closes_the_connection_and_keeps_the_text(engine, replies, stalling_standin):
    chat = store.create_chat(engine, model=MODEL)
    reply = replies.send(OllamaBackend(stalling_standin.url), chat.id, MODEL, "go").reply
    wait_until(lambda: len(reply.pieces) >= 3)
    replies.stop(chat.id)
    wait_until(lambda: reply.finished)
    wait_until(lambda: stalling_standin.disconnects == 1)
    saved = last_message(engine, chat.id)
    assert saved.status == Status.STOPPED
    assert saved.content == "".join(reply.pieces) and saved.content.startswith("word word word")
    assert len(saved.content) < len(STALLED_REPLY)


def test_stop_before_the_first_token_closes_the_request_and_marks_the_reply_stopped(engine, replies, standin):
    standin.prompt_delay = 30  # a big model still loading
    chat = store.create_chat(engine, model=MODEL)
    reply = replies.send(OllamaBackend(standin.url), chat.id, MODEL, "go").reply
    wait_until(lambda: len(standin.chat_requests) == 1)
    replies.stop(chat.id)
    wait_until(lambda: reply.finished, timeout=5)
    wait_until(lambda: standin.disconnects == 1)
    saved = last_message(engine, chat.id)
    assert (saved.content, saved.status, reply.error) == ("", Status.STOPPED, "")


def test_ollama_killed_mid_stream_leaves_the_text_and_an_error(engine, replies):
    server = StandinOllama(token_delay=0.02, reply=lambda messages: "word " * 100).start()
    chat = store.create_chat(engine, model=MODEL)
    reply = replies.send(OllamaBackend(server.url), chat.id, MODEL, "go").reply
    wait_until(lambda: len(reply.pieces) >= 3)
    server.stop()
    wait_until(lambda: reply.finished)
    saved = last_message(engine, chat.id)
    assert saved.status == Status.ERROR and saved.content.startswith("word word word")
    assert "broke off mid-reply" in saved.error and reply.error == saved.error
    assert saved.error.endswith(". The text so far is kept. Regenerate the reply to try again.")


def test_two_chats_generate_at_the_same_time(engine, replies, stalling_standin):
    backend = OllamaBackend(stalling_standin.url)
    first, second = store.create_chat(engine, model=MODEL), store.create_chat(engine, model=MODEL)
    sent = [replies.send(backend, first.id, MODEL, "one"), replies.send(backend, second.id, MODEL, "two")]
    wait_until(lambda: all(len(outcome.reply.pieces) >= 3 for outcome in sent))  # both are being written
    stalling_standin.resume()
    wait_until(lambda: all(outcome.reply.finished for outcome in sent))
    for chat in (first, second):
        assert last_message(engine, chat.id).status == Status.COMPLETE
        assert [m.role for m in store.recent_messages(engine, chat.id, limit=10)] == ["user", "assistant"]


def test_a_message_sent_during_a_reply_is_queued_and_answered_after_it(engine, replies, stalling_standin):
    backend = OllamaBackend(stalling_standin.url)
    chat = store.create_chat(engine, model=MODEL)
    first = replies.send(backend, chat.id, MODEL, "first")
    second = replies.send(backend, chat.id, MODEL, "second")
    assert second.queued and second.reply is first.reply
    queued = last_message(engine, chat.id)
    assert (queued.role, queued.content, queued.status) == ("user", "second", Status.QUEUED)
    stalling_standin.resume()
    first.reply.text()
    assert replies.settle(chat.id, timeout=10)
    assert roles_and_texts(engine, chat.id) == [
        ("user", "first"),
        ("assistant", STALLED_REPLY),
        ("user", "second"),
        ("assistant", STALLED_REPLY),
    ]
    assert reply_requests(stalling_standin)[1] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": STALLED_REPLY},
        {"role": "user", "content": "second"},
    ]
    assert len(reply_requests(stalling_standin)) == 2
    assert {message.status for message in store.list_messages(engine, chat.id)} == {Status.COMPLETE}


def test_a_message_queued_behind_a_stopped_reply_is_answered_after_it(engine, replies, stalling_standin):
    backend = OllamaBackend(stalling_standin.url)
    chat = store.create_chat(engine, model=MODEL)
    first = replies.send(backend, chat.id, MODEL, "first").reply
    assert replies.send(backend, chat.id, MODEL, "second").queued
    wait_until(lambda: len(first.pieces) >= 3)
    replies.stop(chat.id)
    stopped = first.text()
    stalling_standin.resume()
    assert replies.settle(chat.id, timeout=10)
    assert roles_and_texts(engine, chat.id) == [
        ("user", "first"),
        ("assistant", stopped),
        ("user", "second"),
        ("assistant", STALLED_REPLY),
    ]
    assert [message.status for message in store.list_messages(engine, chat.id)][1::2] == [
        Status.STOPPED,
        Status.COMPLETE,
    ]
    assert reply_requests(stalling_standin)[1] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": stopped},
        {"role": "user", "content": "second"},
    ]


def test_two_queued_messages_are_answered_together_by_one_reply(engine, replies, stalling_standin):
    backend = OllamaBackend(stalling_standin.url)
    chat = store.create_chat(engine, model=MODEL)
    first = replies.send(backend, chat.id, MODEL, "first").reply
    assert replies.send(backend, chat.id, MODEL, "second").queued
    assert replies.send(backend, chat.id, MODEL, "third").queued
    stalling_standin.resume()
    first.text()
    assert replies.settle(chat.id, timeout=10)
    assert [role for role, _ in roles_and_texts(engine, chat.id)] == ["user", "assistant", "user", "user", "assistant"]
    requests = reply_requests(stalling_standin)
    assert len(requests) == 2
    assert requests[1][-2:] == [{"role": "user", "content": "second"}, {"role": "user", "content": "third"}]


def test_concurrent_sends_to_one_chat_write_one_reply_at_a_time_and_answer_them_all(engine, replies, stalling_standin):
    backend = OverlapCounter(OllamaBackend(stalling_standin.url))
    chat = store.create_chat(engine, model=MODEL)
    texts = [f"m{index}" for index in range(8)]
    start = threading.Barrier(len(texts))
    outcomes = []

    def send(text):
        start.wait()
        outcomes.append(replies.send(backend, chat.id, MODEL, text))

    threads = [threading.Thread(target=send, args=(text,)) for text in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcome.queued for outcome in outcomes) == [False] + [True] * 7
    stalling_standin.resume()
    assert replies.settle(chat.id, timeout=20)
    messages = store.list_messages(engine, chat.id)
    assert sorted(message.content for message in messages if message.role == "user") == texts
    assert messages[-1].role == "assistant"
    assert all(message.status == Status.COMPLETE for message in messages)
    assert backend.most == 1 and len(reply_requests(stalling_standin)) <= 2


def test_a_message_sent_while_a_refused_one_is_planned_is_answered(engine, replies):
    backend = FakeBackend(replies=["Answered."])
    planning, release = threading.Event(), threading.Event()

    def context_length(model):  # planning a request asks it first; Ollama's may take a while
        planning.set()
        release.wait(timeout=10)

    backend.context_length = context_length
    chat = store.create_chat(engine, model="fake:latest", options={"num_ctx": 2048})
    with ThreadPoolExecutor(2) as pool:
        too_long = pool.submit(replies.send, backend, chat.id, "fake:latest", "x" * 10_000)
        assert planning.wait(timeout=10)
        short = pool.submit(replies.send, backend, chat.id, "fake:latest", "short")
        wait_until(lambda: last_message(engine, chat.id).status == Status.QUEUED)
        release.set()
        with pytest.raises(ContextOverflowError):
            too_long.result()
        assert short.result().queued
    assert replies.settle(chat.id, timeout=10)
    assert roles_and_texts(engine, chat.id) == [
        ("user", "x" * 10_000),
        ("assistant", ""),
        ("user", "short"),
        ("assistant", "Answered."),
    ]


def test_a_storage_failure_while_answering_the_queue_leaves_it_queued(engine, replies, stalling_standin, monkeypatch):
    backend = OllamaBackend(stalling_standin.url)
    chat = store.create_chat(engine, model=MODEL)
    first = replies.send(backend, chat.id, MODEL, "first").reply
    assert replies.send(backend, chat.id, MODEL, "second").queued

    def refuse(*_args):
        raise store.StorageError("The database refused to save: disk I/O error.")

    monkeypatch.setattr(store, "answer_queued", refuse)
    stalling_standin.resume()
    first.text()
    assert replies.settle(chat.id, timeout=10) and not replies.working(chat.id)
    assert last_message(engine, chat.id).status == Status.QUEUED  # for the next page load to answer


def test_regenerating_or_editing_while_a_reply_is_written_is_refused(engine, replies, standin):
    standin.stall_after = 0
    backend = OllamaBackend(standin.url)
    chat = store.create_chat(engine, model=MODEL)
    live = replies.send(backend, chat.id, MODEL, "first").reply
    with pytest.raises(ChatBusyError, match="still being written"):
        replies.regenerate(backend, chat.id, MODEL)
    with pytest.raises(ChatBusyError, match="still being written"):
        replies.resend_edited(backend, chat.id, MODEL, "edited")
    assert roles_and_texts(engine, chat.id) == [("user", "first"), ("assistant", "")]
    assert replies.live(chat.id) is live and not live.finished


def test_title_is_generated_in_the_background(engine, titling):
    def reply(messages):
        return "Greeting the bot" if messages[-1]["content"].startswith("Write a title") else "Hi there!"

    with StandinOllama(reply=reply) as server:
        chat = store.create_chat(engine, model=MODEL)
        titling.send(OllamaBackend(server.url), chat.id, MODEL, "hello bot")
        wait_until(lambda: store.get_chat(engine, chat.id).title == "Greeting the bot")
        assert len(server.chat_requests) == 2


def test_follow_ups_show_the_title_while_it_is_written(engine, titling, held_title):
    chat = store.create_chat(engine, model=MODEL)
    assert titling.send(OllamaBackend(held_title.url), chat.id, MODEL, "hello bot").reply.text() == "Hi there!"
    wait_until(lambda: len(held_title.chat_requests) == 2)  # the title is being written
    assert titling.follow_ups(chat.id) == {TITLE, MEMORY} and titling.working(chat.id)
    held_title.release.set()
    wait_until(lambda: not titling.follow_ups(chat.id))
    assert store.get_chat(engine, chat.id).title == "Greeting the bot" and not titling.working(chat.id)


def test_settle_waits_for_the_follow_ups(engine, titling, held_title):
    chat = store.create_chat(engine, model=MODEL)
    titling.send(OllamaBackend(held_title.url), chat.id, MODEL, "hello bot").reply.text()
    wait_until(lambda: len(held_title.chat_requests) == 2)  # the title is being written, and held
    assert not titling.settle(chat.id, timeout=0)
    held_title.release.set()
    assert titling.settle(chat.id, timeout=10)
    assert store.get_chat(engine, chat.id).title == "Greeting the bot"


def test_a_message_too_long_is_refused_before_sending_and_the_chat_stays_free(engine, replies, standin):
    backend = OllamaBackend(standin.url)
    chat = store.create_chat(engine, model=MODEL, options={"num_ctx": 2048})
    with pytest.raises(ContextOverflowError, match="Your message is saved"):
        replies.send(backend, chat.id, MODEL, "x" * 10_000)
    assert replies.live(chat.id) is None and not replies.working(chat.id) and standin.chat_requests == []
    user, reply = store.recent_messages(engine, chat.id, limit=5)
    assert (user.content, reply.status) == ("x" * 10_000, Status.ERROR)
    reply_to(replies, backend, chat.id, "a shorter one", MODEL)
    assert reply_requests(standin) == [[{"role": "user", "content": "a shorter one"}]]


def test_a_refused_message_is_left_out_of_the_preview_until_regenerated_with_room(engine, replies, standin):
    backend = OllamaBackend(standin.url)
    chat = store.create_chat(engine, model=MODEL, options={"num_ctx": 2048})
    reply_to(replies, backend, chat.id, "hello", MODEL)
    with pytest.raises(ContextOverflowError):
        replies.send(backend, chat.id, MODEL, "x" * 10_000)
    window = replies.preview(backend, chat.id, MODEL).window
    assert window.messages == reply_requests(standin)[0] + [{"role": "assistant", "content": "Echo: hello"}]
    assert window.complete and not window.overflows
    caption = context_caption(window, store.count_messages(engine, chat.id), True)
    assert caption == "context: 2 of 4 messages · 8 / 1,536 tokens · memory on"
    store.update_chat(engine, chat.id, options={"num_ctx": 8192})
    replies.regenerate(backend, chat.id, MODEL).text()
    assert replies.settle(chat.id, timeout=10)
    assert reply_requests(standin)[-1][-1] == {"role": "user", "content": "x" * 10_000}
    assert len(replies.preview(backend, chat.id, MODEL).window.history) == 4


def test_evicted_turns_are_summarised_in_the_background_and_pinned(engine, replies):
    def reply(messages):
        if messages[0]["content"] == memory.SUMMARY_INSTRUCTIONS:
            return "Ana plans four days in Lisbon."
        return "Noted: " + "details " * 30

    with StandinOllama(reply=reply) as server:
        backend = OllamaBackend(server.url)
        chat = store.create_chat(engine, model=MODEL, options={"num_ctx": 512})  # room for three turns
        for day in range(1, 5):
            reply_to(replies, backend, chat.id, f"Day {day} of my plans: " + "Lisbon " * 30, MODEL)
        assert store.get_chat(engine, chat.id).memory == "Ana plans four days in Lisbon."
        summary_request = server.chat_requests[-1]["messages"][1]["content"]
        assert "Day 1 of my plans" in summary_request and "Day 2" not in summary_request
        reply_to(replies, backend, chat.id, "What did I plan first?", MODEL)
    sent = reply_requests(server)[-1]
    assert sent[0] == {"role": "system", "content": MEMORY_HEADING + "Ana plans four days in Lisbon."}
    assert not any("Day 1 of" in message["content"] for message in sent[1:])
    assert sent[-1] == {"role": "user", "content": "What did I plan first?"}


def test_a_base_model_is_not_asked_for_titles_or_summaries(engine, titling):
    backend = FakeBackend(replies=["Tokyo.", "Tokyo!"], follows_instructions=False)
    chat = store.create_chat(engine, model="fake:latest")
    reply_to(titling, backend, chat.id, "What is the capital of Japan?")
    assert len(backend.calls) == 1 and titling.follow_ups(chat.id) == set()
    assert store.get_chat(engine, chat.id).title == "What is the capital of Japan?"


def test_a_preview_leaves_the_documents_out_and_is_none_for_a_deleted_chat(engine, replies):
    embedder = ConceptEmbedder()
    backend = FakeBackend(embedder=embedder)
    chat = store.create_chat(engine, model="fake:latest")
    added = documents.add_file(engine, chat.id, "cars.md", b"# Cars\n\nThe automobile is red.", LIMIT)
    vectors.embed_document(engine, embedder, added.document.id)
    store.add_message(engine, chat.id, "user", f"Which vehicle is red? (a preview, {engine.dialect.name})")
    embedder.calls.clear()
    preview = replies.preview(backend, chat.id, "fake:latest")
    assert embedder.calls == [] and preview.sources == ()
    assert preview.window.messages[-1]["content"].startswith("Which vehicle is red?")
    assert build_prompt(engine, backend, store.get_chat(engine, chat.id), "fake:latest").sources  # a real request
    assert embedder.calls  # looks them up
    store.delete_chat(engine, chat.id)
    assert replies.preview(backend, chat.id, "fake:latest") is None


def test_shutdown_stops_the_live_replies_and_keeps_their_text(engine, stalling_standin):
    service = ReplyService(engine, auto_title=False)
    backend = OllamaBackend(stalling_standin.url)
    chats = [store.create_chat(engine, model=MODEL).id for _ in range(2)]
    live = [service.send(backend, chat_id, MODEL, "go").reply for chat_id in chats]
    assert service.send(backend, chats[0], MODEL, "later").queued
    wait_until(lambda: all(len(reply.pieces) >= 3 for reply in live))
    service.shutdown()
    assert all(reply.finished for reply in live) and not any(service.working(chat_id) for chat_id in chats)
    for chat_id, reply in zip(chats, live, strict=True):
        saved = store.list_messages(engine, chat_id)[1]
        assert (saved.status, saved.content) == (Status.STOPPED, "".join(reply.pieces))
    assert last_message(engine, chats[0]).status == Status.QUEUED  # for the next process to answer
    assert len(stalling_standin.chat_requests) == 2


def test_messages_left_queued_are_answered_on_request(engine, replies, standin):
    backend = OllamaBackend(standin.url)
    chat = store.create_chat(engine, model=MODEL)
    assert replies.answer_queued(backend, chat.id, MODEL) is None
    for text in ("left", "behind"):
        store.queue_message(engine, chat.id, text, MODEL)  # by a process that ended before answering them
    assert replies.answer_queued(backend, chat.id, MODEL).text() == "Echo: behind"
    assert replies.settle(chat.id, timeout=10)
    assert roles_and_texts(engine, chat.id) == [("user", "left"), ("user", "behind"), ("assistant", "Echo: behind")]
    assert reply_requests(standin) == [[{"role": "user", "content": "left"}, {"role": "user", "content": "behind"}]]
    assert {message.status for message in store.list_messages(engine, chat.id)} == {Status.COMPLETE}
    assert replies.answer_queued(backend, chat.id, MODEL) is None


def test_an_error_of_chatcores_own_keeps_the_text_and_says_so_in_words(engine, replies, caplog):
    chat = store.create_chat(engine, model="fake:latest")
    assert replies.send(BuggyBackend(), chat.id, "fake:latest", "hi").reply.text() == "Half a reply"
    replies.settle(chat.id)
    saved = store.recent_messages(engine, chat.id, limit=1)[0]
    error = f"{generation.UNEXPECTED_FAILURE} The text so far is kept. Regenerate the reply to try again."
    assert (saved.status, saved.content, saved.error) == (Status.ERROR, "Half a reply", error)
    assert "a bug in chatcore" in caplog.text  # the details are in the log, not in the user's chat
