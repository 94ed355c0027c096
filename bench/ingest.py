"""Documents: ingesting a generated 300-page PDF, and retrieval over 20,000 chunks.

Prints one line per figure: the ingest time and pages per second (read, chunk, store in one
transaction, indexed), then the median retrieval time (targets: the PDF in under 5 s, retrieval under 20 ms)
on SQLite, and on PostgreSQL too when CHATCORE_TEST_POSTGRES_URL names a superuser.
Run: python bench/ingest.py
"""

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale import postgres_database
from chatcore import documents, retrieval, store
from chatcore.models import Chunk, Document
from tests.documents import make_pdf

PAGES = 300
CHUNKS = 20_000
CHUNKS_PER_DOCUMENT = 1_000
WORDS_PER_CHUNK = 150
QUESTIONS = ("Where does the river meet the mountain?", "What is the budget for travel?", "Who wrote the history?")
VOCABULARY = [a + b for a in ("ri", "mo", "ga", "py", "re", "tra", "bu", "mu", "pla", "hi") for b in
              ("ver", "untain", "rden", "thon", "cipe", "vel", "dget", "sic", "net", "story", "ck", "ll")]  # fmt: skip
VOCABULARY += ["river", "mountain", "budget", "travel", "history", "wrote", "meet"]


def pdf_pages(generator: random.Random) -> list[str]:
    """The text of each page: about 1,500 characters of words."""
    return [" ".join(generator.choice(VOCABULARY) for _ in range(250)) for _ in range(PAGES)]


def measure_ingest(label: str, engine, data: bytes) -> None:
    """Add the PDF to a chat and print the time and pages per second."""
    chat = store.create_chat(engine)
    started = time.perf_counter()
    added = documents.add_file(engine, chat.id, "generated.pdf", data, max_bytes=len(data))
    seconds = time.perf_counter() - started
    size = f"{len(data) / 2**20:.1f} MB, {added.document.chunk_count} chunks"
    speed = f"{seconds:.2f} s, {PAGES / seconds:.0f} pages/s"
    print(f"{label}: ingesting a {PAGES}-page PDF ({size}): {speed} (target < 5 s)")


def fill_chunks(engine, chat_id: int, generator: random.Random) -> None:
    """20,000 chunks in 20 documents of the chat, inserted in bulk."""
    for number in range(CHUNKS // CHUNKS_PER_DOCUMENT):
        document = Document(chat_id=chat_id, name=f"doc{number}.pdf", kind="pdf", sha256=f"bench{number}",
                            size=1, pages=CHUNKS_PER_DOCUMENT, chunk_count=CHUNKS_PER_DOCUMENT)  # fmt: skip
        rows = []
        for ordinal in range(CHUNKS_PER_DOCUMENT):
            text = " ".join(generator.choice(VOCABULARY) for _ in range(WORDS_PER_CHUNK))
            rows.append({"ordinal": ordinal, "page": ordinal + 1, "start": 0, "end": len(text), "text": text})
        store.save_document(engine, document, [])
        with engine.begin() as connection:
            connection.execute(insert(Chunk), [row | {"document_id": document.id} for row in rows])


def measure_retrieval(label: str, engine, generator: random.Random) -> None:
    """Fill 20,000 chunks and print the median time to find the passages for a question."""
    chat = store.create_chat(engine)
    fill_chunks(engine, chat.id, generator)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    timings = []
    for question in QUESTIONS * 5:
        started = time.perf_counter()
        retrieval.find_passages(engine, chat.id, question)
        timings.append((time.perf_counter() - started) * 1000)
    print(f"{label}: retrieval over {CHUNKS} chunks: {statistics.median(timings):.1f} ms (target < 20 ms)")


def measure(label: str, url: str, data: bytes) -> None:
    """Both figures on a fresh database."""
    engine = store.open_engine(url)
    measure_ingest(label, engine, data)
    measure_retrieval(label, engine, random.Random(11))
    engine.dispose()


def main() -> None:
    data = make_pdf(pdf_pages(random.Random(7)))
    with tempfile.TemporaryDirectory() as folder:
        measure("sqlite", f"sqlite:///{folder}/ingest.db", data)
    if server_url := os.environ.get("CHATCORE_TEST_POSTGRES_URL"):
        url, drop = postgres_database(server_url)
        try:
            measure("postgresql", url, data)
        finally:
            drop()


if __name__ == "__main__":
    main()
