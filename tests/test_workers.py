"""Documents' vectors and summaries written in a background thread, against the stand-in Ollama over real HTTP."""

import pytest

from chatcore import documents, retrieval, store
from chatcore.backends import Choice, FakeBackend, choose_backend
from chatcore.config import load_settings
from chatcore.workers import OWN_FAILURE, DocumentWorker
from tests.conftest import BuggyBackend
from tests.embedding import concept_vector
from tests.ollama_standin import StandinOllama

MODEL = "llama3:8b"
LIMIT = 50 * 2**20


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


def test_an_error_of_chatcores_own_is_shown_in_words_and_logged(engine, caplog):
    document = documents.add_file(engine, None, "notes.txt", b"Some notes.", LIMIT).document
    worker = DocumentWorker(engine)
    worker.catch_up(BuggyBackend(), "fake:latest")
    worker.join()
    assert worker.progress(document.id) == f"Failed: {OWN_FAILURE} It is tried again in a few minutes."
    assert "a bug in chatcore" in caplog.text
