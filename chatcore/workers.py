"""Documents' vectors and summaries, written in a background thread."""

import logging
import queue
import threading
import time
from functools import partial

from sqlalchemy import Engine

from chatcore import store, summaries, vectors
from chatcore.backends import Backend, BackendError
from chatcore.config import DEFAULT_NUM_CTX

_LOGGER = logging.getLogger(__name__)
RETRY_AFTER_S = 300  # a document whose processing failed is not tried again sooner
OWN_FAILURE = "chatcore ran into an error of its own (the details are in its log)."


class DocumentWorker:
    """Each document's vectors and summary, written in one background thread, a document at a time."""

    def __init__(self, engine: Engine, num_ctx: int = DEFAULT_NUM_CTX, summaries: bool = True):
        self.engine = engine
        self.num_ctx = num_ctx
        self.summaries = summaries
        self._queue: queue.Queue = queue.Queue()
        self._queued: set[int] = set()
        self._progress: dict[int, str] = {}
        self._failures: dict[int, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def catch_up(self, backend: Backend, model: str | None) -> None:
        """Queue the documents still missing what the backend can give them: vectors, a summary by `model`."""
        embedder_model = backend.embedder.model if backend.embedder else ""
        summarise = self.summaries and bool(model) and backend.follows_instructions
        for document in store.documents_to_process(self.engine, embedder_model, summarise):
            self._enqueue(document.id, backend, model if summarise else None)

    def progress(self, document_id: int) -> str:
        """What is being done to a document now, or why it failed last; empty if neither."""
        with self._lock:
            if document_id in self._progress:
                return self._progress[document_id]
            if document_id in self._queued:
                return "Waiting for its turn"
            failure = self._failures.get(document_id)
        return f"Failed: {failure[1]} It is tried again in a few minutes." if failure else ""

    def busy(self) -> bool:
        """Whether documents are queued or being processed."""
        with self._lock:
            return bool(self._queued)

    def join(self) -> None:
        """Wait until every queued document is done."""
        self._queue.join()

    def _enqueue(self, document_id: int, backend: Backend, model: str | None) -> None:
        with self._lock:
            failure = self._failures.get(document_id)
            if document_id in self._queued or (failure and time.monotonic() - failure[0] < RETRY_AFTER_S):
                return
            self._queued.add(document_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, daemon=True, name="documents")
                self._thread.start()
        self._queue.put((document_id, backend, model))

    def _serve(self) -> None:
        while True:
            document_id, backend, model = self._queue.get()
            try:
                self._process(document_id, backend, model)
            except BackendError as failure:
                self._record_failure(document_id, str(failure))
            except Exception:  # the thread must go on with the next document
                _LOGGER.exception("Processing document %s failed", document_id)
                self._record_failure(document_id, OWN_FAILURE)
            finally:
                with self._lock:
                    self._queued.discard(document_id)
                    self._progress.pop(document_id, None)
                self._queue.task_done()

    def _process(self, document_id: int, backend: Backend, model: str | None) -> None:
        """Vectors first (they are quick and improve every question), then the summary."""
        document = store.get_document(self.engine, document_id)
        if document is None:  # deleted while it waited
            return
        report = partial(self._report, document_id)
        if backend.embedder and document.vectors_model != backend.embedder.model:
            vectors.embed_document(self.engine, backend.embedder, document_id, report)
        if model and not document.summary:
            summary = summaries.summarise_document(self.engine, backend, model, document_id, self.num_ctx, report)
            if not summary:  # stored, it would count as none and be asked for again at every page run
                raise BackendError(f"{model} wrote an empty summary.")
            store.save_summary(self.engine, document_id, summary, model)
        with self._lock:
            self._failures.pop(document_id, None)

    def _record_failure(self, document_id: int, reason: str) -> None:
        with self._lock:
            self._failures[document_id] = (time.monotonic(), reason)

    def _report(self, document_id: int, progress: str) -> None:
        with self._lock:
            self._progress[document_id] = progress
