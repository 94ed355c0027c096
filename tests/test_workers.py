"""Replies written in background threads, against the stand-in Ollama over real HTTP."""

import threading

import pytest

from chatcore import documents, memory, retrieval, store
from chatcore.backends import Choice, FakeBackend, OllamaBackend, choose_backend
from chatcore.config import load_settings
from chatcore.context import MEMORY_HEADING
from chatcore.models import Status
from chatcore.prompt import ContextOverflowError
from chatcore.workers import ChatBusyError, DocumentWorker, Registry
from tests.conftest import join_reply_workers, wait_until
from tests.embedding import concept_vector
from tests.ollama_standin import StandinOllama

MODEL = "llama3:8b"
LIMIT = 50 * 2**20


@pytest.fixture
def slow_standin():
    with StandinOllama(token_delay=0.02, reply=lambda messages: "word " * 60) as server:
        yield server


def reply_requests(server) -> list[list[dict]]:
    """The messages of each chat request the stand-in got, summary requests left out."""
    requests = [request["messages"] for request in server.chat_requests]
    return [messages for messages in requests if messages[0]["content"] != memory.SUMMARY_INSTRUCTIONS]


def last_message(engine, chat_id):
    return store.recent_messages(engine, chat_id, limit=1)[0]


def test_a_reply_completes_with_nobody_following(engine, standin):
    registry = Registry(engine, auto_title=False)
    chat = store.create_chat(engine, model=MODEL)
    job = registry.send(OllamaBackend(standin.url), chat.id, MODEL, "hello")
    wait_until(lambda: registry.get(chat.id) is None)
    saved = last_message(engine, chat.id)
    assert (saved.content, saved.status) == ("Echo: hello", Status.COMPLETE)
    assert job.finished and job.error == ""


def test_following_gives_the_backlog_then_the_rest(engine, slow_standin):
    registry = Registry(engine, auto_title=False)
    chat = store.create_chat(engine, model=MODEL)
    job = registry.send(OllamaBackend(slow_standin.url), chat.id, MODEL, "go")
    wait_until(lambda: len(job.pieces) >= 5)
    assert "".join(job.follow()) == "word " * 60  # a follower arriving late still sees everything
    assert last_message(engine, chat.id).status == Status.COMPLETE


def test_stop_closes_the_connection_and_keeps_the_text(engine, slow_standin):
    registry = Registry(engine, auto_title=False)
    chat = store.create_chat(engine, model=MODEL)
    job = registry.send(OllamaBackend(slow_standin.url), chat.id, MODEL, "go")
    wait_until(lambda: len(job.pieces) >= 3)
    registry.stop(chat.id)
    wait_until(lambda: job.finished)
    wait_until(lambda: slow_standin.disconnects == 1)
    saved = last_message(engine, chat.id)
    assert saved.status == Status.STOPPED
    assert saved.content == "".join(job.pieces) and saved.content.startswith("word word word")
    assert len(saved.content) < len("word " * 60)


def test_stop_before_the_first_token_closes_the_request_and_marks_the_reply_stopped(engine, standin):
    standin.prompt_delay = 30  # a big model still loading
    registry = Registry(engine, auto_title=False)
    chat = store.create_chat(engine, model=MODEL)
    job = registry.send(OllamaBackend(standin.url), chat.id, MODEL, "go")
    wait_until(lambda: len(standin.chat_requests) == 1)
    registry.stop(chat.id)
    wait_until(lambda: job.finished, timeout=5)
    wait_until(lambda: standin.disconnects == 1)
    saved = last_message(engine, chat.id)
    assert (saved.content, saved.status, job.error) == ("", Status.STOPPED, "")


def test_ollama_killed_mid_stream_leaves_the_text_and_an_error(engine):
    server = StandinOllama(token_delay=0.02, reply=lambda messages: "word " * 100).start()
    registry = Registry(engine, auto_title=False)
    chat = store.create_chat(engine, model=MODEL)
    job = registry.send(OllamaBackend(server.url), chat.id, MODEL, "go")
    wait_until(lambda: len(job.pieces) >= 3)
    server.stop()
    wait_until(lambda: job.finished)
    saved = last_message(engine, chat.id)
    assert saved.status == Status.ERROR and saved.content.startswith("word word word")
    assert "broke off" in saved.error and job.error == saved.error


def test_two_chats_generate_at_the_same_time(engine, slow_standin):
    registry = Registry(engine, auto_title=False)
    backend = OllamaBackend(slow_standin.url)
    first, second = store.create_chat(engine, model=MODEL), store.create_chat(engine, model=MODEL)
    jobs = [registry.send(backend, first.id, MODEL, "one"), registry.send(backend, second.id, MODEL, "two")]
    assert registry.get(first.id) is not None and registry.get(second.id) is not None
    wait_until(lambda: all(job.finished for job in jobs))
    for chat in (first, second):
        assert last_message(engine, chat.id).status == Status.COMPLETE
        assert [m.role for m in store.recent_messages(engine, chat.id, limit=10)] == ["user", "assistant"]


def test_a_second_message_to_a_busy_chat_is_refused(engine, slow_standin):
    registry = Registry(engine, auto_title=False)
    backend = OllamaBackend(slow_standin.url)
    chat = store.create_chat(engine, model=MODEL)
    registry.send(backend, chat.id, MODEL, "first")
    with pytest.raises(ChatBusyError, match="still being written"):
        registry.send(backend, chat.id, MODEL, "second")
    registry.stop(chat.id)
    wait_until(lambda: registry.get(chat.id) is None)
    assert store.recent_messages(engine, chat.id, limit=10)[0].content == "first"
    assert store.count_messages(engine, chat.id) == 2


def test_concurrent_sends_to_one_chat_start_one_reply(engine, slow_standin):
    registry = Registry(engine, auto_title=False)
    backend = OllamaBackend(slow_standin.url)
    chat = store.create_chat(engine, model=MODEL)
    outcomes = []

    def send(text):
        try:
            registry.send(backend, chat.id, MODEL, text)
            outcomes.append("sent")
        except ChatBusyError:
            outcomes.append("refused")

    threads = [threading.Thread(target=send, args=(f"m{index}",)) for index in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 4 + ["sent"]
    registry.stop(chat.id)
    wait_until(lambda: registry.get(chat.id) is None)


def test_title_is_generated_in_the_background(engine):
    def reply(messages):
        return "Greeting the bot" if messages[-1]["content"].startswith("Write a title") else "Hi there!"

    with StandinOllama(reply=reply) as server:
        registry = Registry(engine)
        chat = store.create_chat(engine, model=MODEL)
        registry.send(OllamaBackend(server.url), chat.id, MODEL, "hello bot")
        wait_until(lambda: store.get_chat(engine, chat.id).title == "Greeting the bot")
        assert len(server.chat_requests) == 2


def test_a_message_too_long_is_refused_before_sending_and_the_chat_stays_free(engine, standin):
    registry = Registry(engine, auto_title=False)
    backend = OllamaBackend(standin.url)
    chat = store.create_chat(engine, model=MODEL, options={"num_ctx": 2048})
    with pytest.raises(ContextOverflowError, match="Your message is saved"):
        registry.send(backend, chat.id, MODEL, "x" * 10_000)
    assert registry.get(chat.id) is None and standin.chat_requests == []
    user, reply = store.recent_messages(engine, chat.id, limit=5)
    assert (user.content, reply.status) == ("x" * 10_000, Status.ERROR)
    registry.send(backend, chat.id, MODEL, "a shorter one")
    wait_until(lambda: registry.get(chat.id) is None)
    assert reply_requests(standin) == [[{"role": "user", "content": "a shorter one"}]]


def test_evicted_turns_are_summarised_in_the_background_and_pinned(engine):
    def reply(messages):
        if messages[0]["content"] == memory.SUMMARY_INSTRUCTIONS:
            return "Ana plans four days in Lisbon."
        return "Noted: " + "details " * 30

    with StandinOllama(reply=reply) as server:
        registry = Registry(engine, auto_title=False)
        backend = OllamaBackend(server.url)
        chat = store.create_chat(engine, model=MODEL, options={"num_ctx": 512})  # room for three turns
        for day in range(1, 5):
            registry.send(backend, chat.id, MODEL, f"Day {day} of my plans: " + "Lisbon " * 30)
            join_reply_workers()  # the reply, then its memory update
        assert store.get_chat(engine, chat.id).memory == "Ana plans four days in Lisbon."
        summary_request = server.chat_requests[-1]["messages"][1]["content"]
        assert "Day 1 of my plans" in summary_request and "Day 2" not in summary_request
        registry.send(backend, chat.id, MODEL, "What did I plan first?")
        wait_until(lambda: registry.get(chat.id) is None)
    sent = reply_requests(server)[-1]
    assert sent[0] == {"role": "system", "content": MEMORY_HEADING + "Ana plans four days in Lisbon."}
    assert not any("Day 1 of" in message["content"] for message in sent[1:])
    assert sent[-1] == {"role": "user", "content": "What did I plan first?"}


def test_a_base_model_is_not_asked_for_titles_or_summaries(engine):
    backend = FakeBackend(replies=["Tokyo.", "Tokyo!"], follows_instructions=False)
    registry = Registry(engine)
    chat = store.create_chat(engine, model="fake:latest")
    registry.send(backend, chat.id, "fake:latest", "What is the capital of Japan?")
    join_reply_workers()
    assert len(backend.calls) == 1
    assert store.get_chat(engine, chat.id).title == "What is the capital of Japan?"


@pytest.fixture
def embedding_standin():
    """An Ollama with a chat model and an embedding model whose vectors follow tests.embedding's concepts."""
    models = {MODEL: "ok", "nomic-embed-text": "embed"}
    with StandinOllama(models=models, embed=concept_vector, reply=lambda messages: "A short summary.") as server:
        yield server


def ollama_with_embeddings(server, monkeypatch) -> Choice:
    monkeypatch.setenv("OLLAMA_HOST", server.url)
    monkeypatch.delenv("CHATCORE_EMBED_MODEL", raising=False)
    monkeypatch.delenv("CHATCORE_BACKEND", raising=False)
    return choose_backend(load_settings())


def test_documents_get_vectors_and_a_summary_in_the_background(engine, embedding_standin, monkeypatch):
    choice = ollama_with_embeddings(embedding_standin, monkeypatch)
    assert choice.models == [MODEL] and choice.backend.embedder.model == "nomic-embed-text:latest"
    chat = store.create_chat(engine)
    document = documents.add_file(engine, chat.id, "cars.md", b"# Cars\n\nThe automobile is red.", LIMIT).document
    worker = DocumentWorker(engine)
    worker.catch_up(choice.backend, MODEL)
    worker.join()
    stored = store.get_document(engine, document.id)
    assert (stored.vectors_model, stored.summary, stored.summary_model) == (
        "nomic-embed-text:latest",
        "A short summary.",
        MODEL,
    )
    assert embedding_standin.embed_requests[0]["input"] == ["search_document: # Cars\n\nThe automobile is red."]
    assert worker.progress(document.id) == "" and not worker.busy()
    question = f"Which vehicle? ({engine.dialect.name})"  # not asked before, so its vector is not kept
    found = retrieval.find_passages(engine, chat.id, question, embedder=choice.backend.embedder)
    assert [passage.name for passage in found] == ["cars.md"]
    assert embedding_standin.embed_requests[-1]["input"] == [f"search_query: {question}"]
    worker.catch_up(choice.backend, MODEL)
    assert not worker.busy()  # nothing left to do


@pytest.mark.parametrize(
    ("follows_instructions", "model", "summaries"),
    [
        (False, "base", True),  # a base model only continues text
        (True, None, True),  # no model to write it
        (True, "fake:latest", False),  # turned off
    ],
)
def test_no_summary_is_asked_for_when_it_cannot_or_should_not_be_written(
    engine, follows_instructions, model, summaries
):
    backend = FakeBackend(follows_instructions=follows_instructions)
    documents.add_file(engine, None, "notes.txt", b"Some notes.", LIMIT)
    worker = DocumentWorker(engine, summaries=summaries)
    worker.catch_up(backend, model)
    worker.join()
    assert backend.calls == [] and not worker.busy()


@pytest.mark.parametrize(
    ("reply", "fail_after", "failure"),
    [("Never", 0, "The fake model failed mid-reply."), ("", None, "fake:latest wrote an empty summary.")],
)
def test_a_failure_is_shown_and_not_retried_at_once(engine, reply, fail_after, failure):
    document = documents.add_file(engine, None, "notes.txt", b"Some notes.", LIMIT).document
    backend = FakeBackend(replies=[reply], fail_after=fail_after)
    worker = DocumentWorker(engine)
    worker.catch_up(backend, "fake:latest")
    worker.join()
    assert worker.progress(document.id) == f"Failed: {failure} It is tried again in a few minutes."
    worker.catch_up(backend, "fake:latest")
    assert not worker.busy() and len(backend.calls) == 1
    assert store.get_document(engine, document.id).summary == ""
