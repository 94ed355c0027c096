"""Embedding vectors of document chunks: made in batches, stored per document, searched in memory by cosine."""

import threading
from collections.abc import Callable
from functools import lru_cache

import numpy as np
from sqlalchemy import Engine

from chatcore import store
from chatcore.backends import Embedder

BATCH = 32  # chunks per embedding request: few requests, each short enough to report progress
# Below this cosine a chunk is not about the question: without a floor every question, even "hello",
# would be sent the nearest chunks of every document.
MIN_SIMILARITY = 0.4
QUESTIONS_KEPT = 256
# Keyed by model name, not by embedder: a new backend (and embedder) is made every few seconds.
_questions: dict[tuple[str, str], np.ndarray] = {}
_questions_lock = threading.Lock()


def pack_vector(values: list[float]) -> bytes:
    """A vector as stored: scaled to unit length, little-endian float32."""
    vector = np.asarray(values, dtype="<f4")
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).astype("<f4").tobytes()


def embed_document(
    engine: Engine, embedder: Embedder, document_id: int, progress: Callable[[str], None] = lambda _: None
) -> None:
    """Store a vector for every chunk of a document, all at once at the end (BackendError if the model fails)."""
    chunks = store.document_chunks(engine, document_id)
    vectors: dict[int, bytes] = {}
    for start in range(0, len(chunks), BATCH):
        progress(f"Indexing by meaning: {start} of {len(chunks)} passages")
        batch = chunks[start : start + BATCH]
        for chunk, vector in zip(batch, embedder.embed([chunk.text for chunk in batch]), strict=True):
            vectors[chunk.id] = pack_vector(vector)
    store.save_vectors(engine, document_id, embedder.model, vectors)


def nearest_chunks(engine: Engine, embedder: Embedder, chat_id: int, question: str, limit: int) -> list[int]:
    """Ids of the chat's chunks closest in meaning to the question, closest first (BackendError if unreachable)."""
    documents = store.documents_with_vectors(engine, chat_id, embedder.model)
    if not documents:
        return []
    loaded = [document_matrix(engine, document.id, document.sha256, embedder.model) for document in documents]
    question_unit = question_vector(embedder, question)
    ids = np.concatenate([chunk_ids for chunk_ids, _ in loaded])
    scores = np.concatenate([matrix @ question_unit for _, matrix in loaded])  # not one matrix: no copy
    best = np.argpartition(-scores, limit - 1)[:limit] if len(scores) > limit else np.arange(len(scores))
    best = best[np.argsort(-scores[best], kind="stable")]
    return [int(ids[index]) for index in best if scores[index] >= MIN_SIMILARITY]


@lru_cache(maxsize=64)
def document_matrix(engine: Engine, document_id: int, sha256: str, model: str) -> tuple[np.ndarray, np.ndarray]:
    """A document's chunk ids and vectors, read once: they never change while the document and model stay.

    The content hash is part of the key because SQLite may give a deleted document's id to a new one.
    """
    rows = store.document_vectors(engine, document_id)
    ids = np.array([chunk_id for chunk_id, _ in rows], dtype=np.int64)
    matrix = np.frombuffer(b"".join(vector for _, vector in rows), dtype="<f4").reshape(len(rows), -1)
    return ids, matrix


def question_vector(embedder: Embedder, question: str) -> np.ndarray:
    """The question's unit vector; kept by model and text, as every redraw of the chat page asks again."""
    key = (embedder.model, question)
    with _questions_lock:
        if key in _questions:
            return _questions[key]
    vector = np.frombuffer(pack_vector(embedder.embed([question], question=True)[0]), dtype="<f4")
    with _questions_lock:
        if len(_questions) >= QUESTIONS_KEPT:
            del _questions[next(iter(_questions))]  # the oldest
        _questions[key] = vector
    return vector
