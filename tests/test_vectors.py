"""Chunk vectors: stored for a whole document at once, searched by cosine within a chat's documents."""

import numpy as np
import pytest

from chatcore import documents, store, vectors
from tests.embedding import ConceptEmbedder

LIMIT = 50 * 2**20


@pytest.mark.parametrize(("values", "unit"), [([3.0, 4.0], [0.6, 0.8]), ([0.0, 0.0], [0.0, 0.0]), ([2.0], [1.0])])
def test_vectors_are_stored_at_unit_length_as_float32(values, unit):
    assert np.frombuffer(vectors.pack_vector(values), dtype="<f4").tolist() == pytest.approx(unit)


def add_paragraphs(engine, chat_id: int, name: str, paragraphs: list[str]) -> int:
    """A Markdown document with one section per paragraph; its id."""
    text = "\n\n".join(f"# Part {number}\n\n{paragraph}" for number, paragraph in enumerate(paragraphs, start=1))
    return documents.add_file(engine, chat_id, name, text.encode(), LIMIT).document.id


def test_every_chunk_gets_a_vector_in_batches_and_the_document_is_marked(engine, monkeypatch):
    monkeypatch.setattr(vectors, "BATCH", 2)
    chat = store.create_chat(engine)
    document_id = add_paragraphs(engine, chat.id, "notes.md", ["cars", "money", "rivers", "cars and money", "x"])
    embedder = ConceptEmbedder()
    progress = []
    vectors.embed_document(engine, embedder, document_id, progress.append)
    chunk_count = store.get_document(engine, document_id).chunk_count
    assert [len(call) for call in embedder.calls] == [2, 2, 1] and chunk_count == 5
    assert progress == [f"Indexing by meaning: {done} of 5 passages" for done in (0, 2, 4)]
    assert store.get_document(engine, document_id).vectors_model == "concepts"
    assert len(store.document_vectors(engine, document_id)) == chunk_count


def test_a_failure_midway_stores_nothing(engine, monkeypatch):
    monkeypatch.setattr(vectors, "BATCH", 1)
    chat = store.create_chat(engine)
    document_id = add_paragraphs(engine, chat.id, "notes.md", ["cars", "money"])
    embedder = ConceptEmbedder()
    original = embedder.embed
    embedder.embed = lambda texts: original(texts) if not embedder.calls else embedder_failure()
    with pytest.raises(RuntimeError):
        vectors.embed_document(engine, embedder, document_id)
    assert store.document_vectors(engine, document_id) == []
    assert store.get_document(engine, document_id).vectors_model == ""


def embedder_failure():
    raise RuntimeError("the model went away")


def test_the_nearest_chunks_are_the_chat_s_closest_in_meaning(engine):
    chat, other = store.create_chat(engine), store.create_chat(engine)
    mine = add_paragraphs(engine, chat.id, "mine.md", ["the river", "a budget", "cars and a river"])
    theirs = add_paragraphs(engine, other.id, "theirs.md", ["rivers and streams"])
    embedder = ConceptEmbedder()
    for document_id in (mine, theirs):
        vectors.embed_document(engine, embedder, document_id)
    nearest = vectors.nearest_chunks(engine, embedder, chat.id, "water", limit=10)
    texts = {chunk.id: chunk.text for chunk in store.document_chunks(engine, mine)}
    assert [texts[chunk_id] for chunk_id in nearest] == ["# Part 1\n\nthe river", "# Part 3\n\ncars and a river"]
    assert vectors.nearest_chunks(engine, embedder, chat.id, "water", limit=1) == nearest[:1]


def test_a_document_deleted_and_another_added_in_its_place_is_not_read_from_the_cache(engine):
    chat = store.create_chat(engine)
    embedder = ConceptEmbedder()
    first = add_paragraphs(engine, chat.id, "first.md", ["money"])
    vectors.embed_document(engine, embedder, first)
    assert vectors.nearest_chunks(engine, embedder, chat.id, "budget", limit=5)
    store.delete_document(engine, first)
    second = add_paragraphs(engine, chat.id, "second.md", ["cars"])
    vectors.embed_document(engine, embedder, second)
    nearest = vectors.nearest_chunks(engine, embedder, chat.id, "vehicle", limit=5)
    assert nearest == [chunk.id for chunk in store.document_chunks(engine, second)]
