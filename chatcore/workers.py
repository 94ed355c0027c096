"""Work in background threads: replies, which no click, page switch or reload can cut off, and documents."""

import queue
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

from sqlalchemy import Engine

from chatcore import generation, memory, store, summaries, vectors
from chatcore.backends import Backend, BackendError, StopSignal
from chatcore.config import DEFAULT_NUM_CTX, DEFAULT_REPLY_RESERVE
from chatcore.generation import Turn
from chatcore.prompt import Prompt

RETRY_AFTER_S = 300  # a document whose processing failed is not tried again sooner


class ChatBusyError(RuntimeError):
    """A reply is already being written in this chat."""


class Job:
    """One reply being written: its text so far in memory, and how it ended."""

    def __init__(self, chat_id: int, turn: Turn):
        self.chat_id = chat_id
        self.turn = turn
        self.pieces: list[str] = []
        self.error = ""
        self.stop = StopSignal()
        self.finished = False
        self._changed = threading.Condition()

    def append(self, piece: str) -> None:
        """Add text and wake the followers."""
        with self._changed:
            self.pieces.append(piece)
            self._changed.notify_all()

    def finish(self, error: str = "") -> None:
        """Record the end of the reply and wake the followers."""
        with self._changed:
            self.error = error
            self.finished = True
            self._changed.notify_all()

    def follow(self) -> Iterator[str]:
        """The text so far, then new text as it arrives, until the reply ends."""
        sent = 0
        while True:
            with self._changed:
                while len(self.pieces) == sent and not self.finished:
                    self._changed.wait()
                new = self.pieces[sent:]
                over = self.finished
            sent += len(new)
            if new:
                yield "".join(new)
            elif over:
                return


class Registry:
    """The replies being written in this process against one database, one per chat at most."""

    def __init__(self, engine: Engine, auto_title: bool = True, reply_reserve: float = DEFAULT_REPLY_RESERVE):
        self.engine = engine
        self.auto_title = auto_title
        self.reply_reserve = reply_reserve
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()

    def get(self, chat_id: int) -> Job | None:
        """The reply being written in a chat, if any."""
        with self._lock:
            return self._jobs.get(chat_id)

    def send(self, backend: Backend, chat_id: int, model: str, text: str) -> Job:
        """Save the user's message and start writing the reply."""
        return self._launch(backend, chat_id, model, partial(generation.start_turn, self.engine, chat_id, text, model))

    def regenerate(self, backend: Backend, chat_id: int, model: str) -> Job:
        """Write the last reply again, replacing it."""
        return self._launch(backend, chat_id, model, partial(generation.restart_reply, self.engine, chat_id, model))

    def resend_edited(self, backend: Backend, chat_id: int, model: str, text: str) -> Job:
        """Replace the last user message with `text` and answer it anew."""
        restart = partial(generation.restart_reply, self.engine, chat_id, model, text)
        return self._launch(backend, chat_id, model, restart)

    def stop(self, chat_id: int) -> None:
        """Stop the reply being written in a chat; its text so far is kept."""
        if job := self.get(chat_id):
            job.stop.set()

    def _launch(self, backend: Backend, chat_id: int, model: str, prepare: Callable[[], Turn]) -> Job:
        """Save the turn, plan its request (a refusal raises ContextOverflowError here), write it in a thread."""
        with self._lock:
            if chat_id in self._jobs:
                raise ChatBusyError("A reply is still being written in this chat. Wait for it, or stop it first.")
            job = Job(chat_id, prepare())
            self._jobs[chat_id] = job
        try:
            prompt = generation.plan_reply(self.engine, backend, chat_id, job.turn, model, self.reply_reserve)
        except Exception as failure:  # the chat must not stay busy
            self._release(job, str(failure))
            raise
        worker = threading.Thread(target=self._run, args=(job, backend, prompt), daemon=True)
        worker.name = f"reply-chat-{chat_id}"
        worker.start()
        return job

    def _release(self, job: Job, error: str) -> None:
        with self._lock:
            del self._jobs[job.chat_id]
        job.finish(error)

    def _run(self, job: Job, backend: Backend, prompt: Prompt) -> None:
        error = ""
        stream = generation.stream_reply(self.engine, backend, job.turn, prompt, job.stop)
        try:
            for piece in stream:
                job.append(piece)
        except BackendError as failure:
            error = str(failure)
        except Exception as failure:  # the worker must always finish and leave the registry
            error = f"Unexpected error: {failure!r}"
        finally:
            self._release(job, error)
        if error or not backend.follows_instructions:  # a base model's titles and summaries are noise
            return
        if self.auto_title and not job.stop.is_set():
            generation.improve_title(self.engine, backend, job.chat_id, prompt.model)
        memory.update_memory(self.engine, backend, job.chat_id, prompt.model, self.reply_reserve)


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
            except Exception as failure:  # the thread must go on with the next document
                reason = str(failure) if isinstance(failure, BackendError) else f"{failure!r}."
                with self._lock:
                    self._failures[document_id] = (time.monotonic(), reason)
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

    def _report(self, document_id: int, progress: str) -> None:
        with self._lock:
            self._progress[document_id] = progress
