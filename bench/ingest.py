"""Documents: ingesting a generated 300-page PDF, a corpus of odd real-world files, and retrieval over 20,000 chunks.

Prints one line per figure: the ingest time and pages per second (read, chunk, store in one
transaction, indexed), then the median retrieval time (targets: the PDF in under 5 s, retrieval under 20 ms)
on SQLite, and on PostgreSQL too when CHATCORE_TEST_POSTGRES_URL names a superuser.

Retrieval is timed over text-like chunks, whose words follow Zipf's law as a language's do, so a question's
words are in some chunks and not others; then over the same chunks with 768-dimension vectors, fused, as a
ratio to the words alone; then over the worst case, a small vocabulary where every word of the question is
in nearly every chunk, so every chunk is ranked.
The corpus run adds every file of the sample documents (`shared/docs`) and, when given, of the real-world corpus
of odd files (bench/corpus-sources.md lists them) to a fresh SQLite database: files per second (against reading
them in this process, without a worker or a database), the slowest five, the peak memory of reading them, and how
many files had each outcome.
Run: python bench/ingest.py [FOLDER]  (the real-world corpus's folder; by default CHATCORE_TEST_CORPUS's, if set)
"""

import itertools
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import postgres_database
from chatcore import documents, retrieval, store, vectors
from chatcore.ingestion import extract_document
from chatcore.models import Chunk, Document
from tests.documents import CORPUS, SAMPLES, make_pdf

PAGES = 300
CHUNKS = 20_000
CHUNKS_PER_DOCUMENT = 1_000
WORDS_PER_CHUNK = 150
DIMENSIONS = 768  # as nomic-embed-text's
SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "pe", "da", "gu", "ha", "ji", "ko", "ba", "fe", "zo")
# Synthetic words ranked by frequency; the tenth in a chunk of 150 words most of the time, the 3,000th rarely.
ZIPF_WORDS = [a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES]
ZIPF_WEIGHTS = list(itertools.accumulate(1 / rank for rank in range(1, len(ZIPF_WORDS) + 1)))
ZIPF_QUESTIONS = tuple(
    f"Where does the {ZIPF_WORDS[a]} meet the {ZIPF_WORDS[b]} and {ZIPF_WORDS[c]}?"
    for a, b, c in ((40, 600, 2500), (90, 300, 1200), (25, 800, 4000))
)
WORST_QUESTIONS = (
    "Where does the river meet the mountain?",
    "What is the budget for travel?",
    "Who wrote the history?",
)
WORST_WORDS = [a + b for a in ("ri", "mo", "ga", "py", "re", "tra", "bu", "mu", "pla", "hi") for b in
               ("ver", "untain", "rden", "thon", "cipe", "vel", "dget", "sic", "net", "story", "ck", "ll")]  # fmt: skip
WORST_WORDS += ["river", "mountain", "budget", "travel", "history", "wrote", "meet"]
# A refusal's kind, by the words that say it; the first that matches.
REASONS = (
    ("password protected", ("password protected", "encrypted")),
    ("damaged", ("damaged",)),
    ("no text", ("no text found",)),
    ("not that kind of file", ("not a ", "older Word", "only PDF", "zip file")),
    ("too large", ("MB; files of at most", "more than chatcore can unpack", "unpacks to far more")),
    ("too slow", ("took longer than",)),
)


def pdf_pages(generator: random.Random) -> list[str]:
    """The text of each page: about 1,500 characters of words."""
    return [" ".join(generator.choices(ZIPF_WORDS, cum_weights=ZIPF_WEIGHTS, k=250)) for _ in range(PAGES)]


def measure_ingest(label: str, engine, data: bytes) -> None:
    """Add the PDF to a chat and print the time and pages per second."""
    chat = store.create_chat(engine)
    started = time.perf_counter()
    added = documents.add_file(engine, chat.id, "generated.pdf", data, max_bytes=len(data))
    seconds = time.perf_counter() - started
    size = f"{len(data) / 2**20:.1f} MB, {added.document.chunk_count} chunks"
    speed = f"{seconds:.2f} s, {PAGES / seconds:.0f} pages/s"
    print(f"{label}: ingesting a {PAGES}-page PDF ({size}): {speed} (target < 5 s)")


def fill_chunks(engine, chat_id: int, words) -> None:
    """20,000 chunks in 20 documents of the chat, inserted in bulk; `words(k)` makes a chunk's words."""
    for number in range(CHUNKS // CHUNKS_PER_DOCUMENT):
        document = Document(chat_id=chat_id, name=f"doc{number}.pdf", kind="pdf", sha256=f"bench{chat_id}-{number}",
                            size=1, pages=CHUNKS_PER_DOCUMENT, chunk_count=CHUNKS_PER_DOCUMENT)  # fmt: skip
        rows = []
        for ordinal in range(CHUNKS_PER_DOCUMENT):
            text = " ".join(words(WORDS_PER_CHUNK))
            rows.append({"ordinal": ordinal, "page": ordinal + 1, "start": 0, "end": len(text), "text": text})
        store.save_document(engine, document, [])
        with engine.begin() as connection:
            connection.execute(insert(Chunk), [row | {"document_id": document.id} for row in rows])


def median_retrieval_ms(engine, chat_id: int, questions: tuple[str, ...], embedder=None) -> float:
    """The median time to find the passages for each question, five times over."""
    timings = []
    for question in questions * 5:
        started = time.perf_counter()
        retrieval.find_passages(engine, chat_id, question, embedder=embedder)
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure_retrieval(label: str, engine, corpus: str, words, questions: tuple[str, ...]) -> int:
    """Fill a chat with 20,000 chunks and print the median time to find the passages for a question; the chat's id."""
    chat = store.create_chat(engine)
    fill_chunks(engine, chat.id, words)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    median = median_retrieval_ms(engine, chat.id, questions)
    print(f"{label}: retrieval over {CHUNKS} chunks of {corpus}: {median:.1f} ms (target < 20 ms)")
    return chat.id


class NearbyEmbedder:
    """Random unit vectors for chunks; a question's is near one chunk's, as a real question is near its answer."""

    model = "bench-embed"

    def __init__(self, chunk_ids: list[int]):
        self.chunk_ids = chunk_ids

    def chunk_vector(self, chunk_id: int) -> np.ndarray:
        """The chunk's vector, the same every time."""
        return np.random.default_rng(chunk_id).standard_normal(DIMENSIONS)

    def embed(self, texts: list[str], question: bool = False) -> list[list[float]]:
        """Vectors near those of chunks picked by the texts."""
        near = (self.chunk_ids[zlib.crc32(text.encode()) % len(self.chunk_ids)] for text in texts)
        return [(self.chunk_vector(chunk_id) + np.random.default_rng(0).standard_normal(DIMENSIONS)).tolist()
                for chunk_id in near]  # fmt: skip


def measure_fused_retrieval(label: str, engine, chat_id: int, questions: tuple[str, ...]) -> None:
    """Give the chat's chunks vectors, then print the median retrieval time, fused, against the words alone."""
    chunks = {
        document.id: [chunk.id for chunk in store.document_chunks(engine, document.id)]
        for document in store.list_documents(engine, chat_id)
    }
    embedder = NearbyEmbedder([chunk_id for ids in chunks.values() for chunk_id in ids])
    for document_id, ids in chunks.items():
        packed = {chunk_id: vectors.pack_vector(embedder.chunk_vector(chunk_id)) for chunk_id in ids}
        store.save_vectors(engine, document_id, embedder.model, packed)
    words = median_retrieval_ms(engine, chat_id, questions)
    median_retrieval_ms(engine, chat_id, questions, embedder)  # vectors read into memory once, as in the app
    fused = median_retrieval_ms(engine, chat_id, questions, embedder)
    ratio = f"{fused / words:.2f}x the words alone"
    print(f"{label}: retrieval fused with {DIMENSIONS}-dimension vectors: {fused:.1f} ms ({ratio})")


@contextmanager
def fresh_engine(kind: str) -> Iterator[Engine]:
    """An engine on a new, empty database of the kind ("sqlite" or "postgresql"), gone afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        url, drop = (f"sqlite:///{folder}/bench.db", None)
        if kind == "postgresql":
            url, drop = postgres_database(os.environ["CHATCORE_TEST_POSTGRES_URL"])
        engine = store.open_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()
            if drop:
                drop()


def measure(kind: str, data: bytes) -> None:
    """Each figure on a fresh database of the kind."""
    with fresh_engine(kind) as engine:
        measure_ingest(kind, engine, data)
    generator = random.Random(11)
    text_like = partial(generator.choices, ZIPF_WORDS, cum_weights=ZIPF_WEIGHTS)
    worst = partial(generator.choices, WORST_WORDS)
    with fresh_engine(kind) as engine:
        chat_id = measure_retrieval(kind, engine, "text-like words", lambda k: text_like(k=k), ZIPF_QUESTIONS)
        measure_fused_retrieval(kind, engine, chat_id, ZIPF_QUESTIONS)
    with fresh_engine(kind) as engine:
        measure_retrieval(kind, engine, "the worst case", lambda k: worst(k=k), WORST_QUESTIONS)


def reason_of(message: str) -> str:
    """The kind of a refusal, from its message."""
    return next((reason for reason, words in REASONS if any(word in message for word in words)), "other")


def peak_memory_mb() -> float:
    """The most memory this process has held (resident), in MB; a worker reading a file needs no more than that file."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_corpus(folders: list[Path]) -> None:
    """Add every file of the folders to a fresh database; print files per second, the slowest, memory, outcomes."""
    files = sorted(
        path for folder in folders for path in folder.iterdir() if path.suffix != ".md" or path.stem != "SOURCES"
    )
    before, started = peak_memory_mb(), time.perf_counter()
    for path in files:
        with suppress(Exception):  # what the worker turns into a refusal
            extract_document(path.name, path.read_bytes(), 2**30)
    baseline, peak = time.perf_counter() - started, peak_memory_mb()
    timings, outcomes = [], Counter()
    with fresh_engine("sqlite") as engine:
        chat = store.create_chat(engine)
        for path in files:
            started = time.perf_counter()
            succeeded, message = documents.add_file_and_say(engine, chat.id, path.name, path.read_bytes(), 2**30)
            timings.append((time.perf_counter() - started, path.name))
            outcomes["read" if succeeded else f"refused: {reason_of(message)}"] += 1
    seconds = sum(timing for timing, _name in timings)
    speed = f"{len(files) / seconds:.1f} files/s, {seconds / baseline:.2f}x the time of reading them in-process"
    print(f"corpus: {len(files)} files added in {seconds:.1f} s, {speed}")
    slowest = ", ".join(f"{name} {timing:.2f} s" for timing, name in sorted(timings, reverse=True)[:5])
    print(f"corpus: the slowest five: {slowest}")
    print(f"corpus: peak memory reading them all in one process: {peak:.0f} MB ({peak / before:.2f}x before reading)")
    print(f"corpus: outcomes: {', '.join(f'{outcome} {count}' for outcome, count in sorted(outcomes.items()))}")


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS
    if corpus and not corpus.is_dir():
        sys.exit(f"no folder {corpus}: give the real-world corpus's folder, or nothing")
    if folders := [folder for folder in (corpus, SAMPLES) if folder and folder.is_dir()]:
        measure_corpus(folders)
    else:
        print(f"corpus: skipped, no sample documents in {SAMPLES} and no corpus given")
    data = make_pdf(pdf_pages(random.Random(7)))
    measure("sqlite", data)
    if os.environ.get("CHATCORE_TEST_POSTGRES_URL"):
        measure("postgresql", data)


if __name__ == "__main__":
    main()
