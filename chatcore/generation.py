"""A whole chat turn: save the user's message, build the window, stream the reply, save it."""

import time
from collections.abc import Iterator

from sqlalchemy import Engine

from chatcore import store
from chatcore.backends import Backend, BackendError, Metrics
from chatcore.config import DEFAULT_NUM_CTX
from chatcore.context import build_window, prompt_budget
from chatcore.models import DEFAULT_TITLE, Status

FLUSH_INTERVAL_S = 0.5
TITLE_LENGTH = 60


def title_from_text(text: str, limit: int = TITLE_LENGTH) -> str:
    """A chat title from a first message: one line, cut at a word boundary."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line or DEFAULT_TITLE
    cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
    return cut.rstrip(" ,.;:") + "…"


def request_options(chat_options: dict) -> dict:
    """The model options for a request; num_ctx is always set so Ollama never truncates silently."""
    return {"num_ctx": DEFAULT_NUM_CTX} | chat_options


def run_turn(engine: Engine, backend: Backend, chat_id: int, text: str, model: str) -> Iterator[str]:
    """Save the user's message now; return the generator that streams the reply and saves it."""
    save_user_message(engine, chat_id, text)
    return stream_reply(engine, backend, chat_id, model)


def save_user_message(engine: Engine, chat_id: int, text: str) -> None:
    """Store what the user typed; a chat's first message also becomes its title."""
    chat = store.get_chat(engine, chat_id)
    store.add_message(engine, chat_id, "user", text)
    if chat.title == DEFAULT_TITLE and store.count_messages(engine, chat_id) == 1:
        store.update_chat(engine, chat_id, title=title_from_text(text))


def stream_reply(engine: Engine, backend: Backend, chat_id: int, model: str) -> Iterator[str]:
    """Yield the reply's text; it is saved as it streams and, in `finally`, however it ends."""
    chat = store.get_chat(engine, chat_id)
    options = request_options(chat.options)
    history = store.iter_messages_newest_first(engine, chat_id)
    window = build_window(chat.system_prompt, history, prompt_budget(options["num_ctx"]))
    reply = ReplyRecorder(engine, chat_id, model)
    pieces = backend.stream_chat(model, window, options)
    try:
        for piece in pieces:
            if isinstance(piece, Metrics):
                reply.metrics = piece
                continue
            reply.append(piece)
            yield piece
        reply.status = Status.COMPLETE
    except BackendError as error:
        reply.fail(str(error))
        raise
    except Exception as error:
        reply.fail(f"Unexpected error: {error!r}")
        raise
    finally:
        pieces.close()
        reply.save()


class ReplyRecorder:
    """The assistant message being written, flushed to the database every half second.

    Its row is created at the first flush, not before the request, so that no database
    write stands between the model's first token and the user's screen.
    """

    def __init__(self, engine: Engine, chat_id: int, model: str):
        self.engine = engine
        self.chat_id = chat_id
        self.model = model
        self.message_id: int | None = None
        self.parts: list[str] = []
        self.status = Status.PARTIAL
        self.error = ""
        self.metrics = Metrics()
        self.last_flush = time.monotonic()

    def append(self, piece: str) -> None:
        """Add text; write it to the database if the last write is old enough."""
        self.parts.append(piece)
        if time.monotonic() - self.last_flush >= FLUSH_INTERVAL_S:
            self._write(content="".join(self.parts))
            self.last_flush = time.monotonic()

    def fail(self, error: str) -> None:
        """Mark the reply as failed with a message for the user."""
        self.status = Status.ERROR
        self.error = error

    def save(self) -> None:
        """Write the final text, status and metrics."""
        self._write(
            content="".join(self.parts),
            status=self.status,
            error=self.error,
            prompt_tokens=self.metrics.prompt_tokens,
            reply_tokens=self.metrics.reply_tokens,
            prompt_ms=self.metrics.prompt_ms,
            reply_ms=self.metrics.reply_ms,
            total_ms=self.metrics.total_ms,
        )

    def _write(self, content: str, **fields) -> None:
        if self.message_id is None:
            fields = {"status": Status.PARTIAL, "model": self.model} | fields
            self.message_id = store.add_message(self.engine, self.chat_id, "assistant", content, **fields).id
        else:
            store.update_message(self.engine, self.message_id, content=content, **fields)
