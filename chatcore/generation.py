"""The steps of a chat turn: save the user's message, plan the request, stream the reply and save it, title the chat."""

import logging
import re
import time
from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Engine

from chatcore import store
from chatcore.backends import Backend, BackendError, Metrics, StopSignal, complete_text, stopped
from chatcore.config import DEFAULT_REPLY_RESERVE
from chatcore.models import DEFAULT_TITLE, Chat, Status, utc_now
from chatcore.prompt import ContextOverflowError, Prompt, build_prompt, describe_overflow, record_usage

_LOGGER = logging.getLogger(__name__)
FLUSH_INTERVAL_S = 0.5
UNEXPECTED_FAILURE = "chatcore ran into an error of its own while writing this reply (the details are in its log)."
TITLE_LENGTH = 60
TITLE_OPENING = 6  # the first messages a title is written from: the first question and the first reply with text


def title_from_text(text: str, limit: int = TITLE_LENGTH) -> str:
    """A chat title from a first message: one line, cut at a word boundary."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line or DEFAULT_TITLE
    cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
    return cut.rstrip(" ,.;:") + "…"


TITLE_REQUEST = (
    "Write a title of at most six words for a conversation that begins like this. "
    "Answer with the title alone, no quotes.\n\nUser: {question}\n\nAssistant: {answer}"
)


def clean_title(text: str) -> str:
    """The first line of a model's suggested title, without quotes, labels or markup."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    line = re.sub(r"^\W*(title\s*:)?", "", line.strip(), flags=re.IGNORECASE)
    line = line.strip(" \"'*#`_.")
    return title_from_text(line) if line else ""


def title_after_document(engine: Engine, chat_id: int, name: str) -> bool:
    """Name a chat without messages or a name after a document added to it, as a first message would; whether it did."""
    return store.name_new_chat(engine, chat_id, title_from_text(name))


def has_first_title(engine: Engine, chat: Chat, question: str) -> bool:
    """Whether the chat still has the title it got first: its first message's, or that of a document added before it."""
    if chat.title == title_from_text(question):
        return True
    return any(chat.title == title_from_text(document.name) for document in store.list_documents(engine, chat.id))


def improve_title(engine: Engine, backend: Backend, chat_id: int, model: str) -> None:
    """Ask the chat's model for a short title from its first exchange, while the chat keeps the title it got first.

    So a chat whose first reply was stopped, refused or followed by a queued message is titled after a later
    reply; once titled, or renamed by the user, it is not asked again.
    """
    chat = store.get_chat(engine, chat_id)
    opening = store.oldest_messages(engine, chat_id, limit=TITLE_OPENING)
    question = next((message.content for message in opening if message.role == "user"), None)
    answer = next((message.content for message in opening if message.role == "assistant" and message.content), None)
    if chat is None or question is None or answer is None or not has_first_title(engine, chat, question):
        return
    request = [{"role": "user", "content": TITLE_REQUEST.format(question=question[:2000], answer=answer[:2000])}]
    options = {"num_ctx": 4096, "num_predict": 24, "temperature": 0.2}
    try:
        title = clean_title(complete_text(backend, model, request, options))
    except BackendError:
        return  # the first title stays
    if title:
        store.rename_auto_title(engine, chat_id, expected=chat.title, title=title)


class Turn(NamedTuple):
    """The two messages of an exchange: the user's, and the reply being written after it."""

    user_message_id: int
    reply_id: int


def start_turn(engine: Engine, chat_id: int, text: str, model: str, lease: store.Lease) -> Turn | None:
    """Store what the user typed and an empty reply after it, written under `lease`; a chat's first message titles it.

    None if another instance is writing a reply in the chat: the message is then queued behind it.
    """
    ids = store.add_exchange(engine, chat_id, text, model, lease, title=title_from_text(text))
    return Turn(*ids) if ids else None


def restart_reply(engine: Engine, chat_id: int, edited_text: str | None, model: str, lease: store.Lease) -> Turn | None:
    """Start the last user message's reply over (replacing the old one), optionally editing the message.

    None, changing nothing, if another instance is writing a reply in the chat.
    """
    ids = store.restart_last_exchange(engine, chat_id, model, edited_text, lease)
    return Turn(*ids) if ids else None


def answer_queued(engine: Engine, chat_id: int, model: str, lease: store.Lease) -> Turn | None:
    """The turn answering the messages queued in a chat (its newest one the question), if any and if no other
    instance is writing a reply there."""
    ids = store.answer_queued(engine, chat_id, model, lease)
    return Turn(*ids) if ids else None


def plan_reply(
    engine: Engine, backend: Backend, chat_id: int, turn: Turn, model: str, reply_reserve: float = DEFAULT_REPLY_RESERVE
) -> Prompt:
    """The request for a turn's reply, its passages recorded; if it cannot fit, refuse it (ContextOverflowError)."""
    prompt = build_prompt(engine, backend, store.get_chat(engine, chat_id), model, reply_reserve, before=turn.reply_id)
    if prompt.window.overflows:
        refusal = describe_overflow(prompt)
        store.update_message(engine, turn.reply_id, status=Status.ERROR, error=refusal, finished_at=utc_now())
        raise ContextOverflowError(refusal)
    if prompt.sources:
        store.save_reply_sources(engine, turn.reply_id, [passage.chunk_id for passage in prompt.sources])
    return prompt


def stream_reply(
    engine: Engine, backend: Backend, turn: Turn, prompt: Prompt, stop: StopSignal | None = None
) -> Iterator[str]:
    """Yield the reply's text; it is saved as it streams and, in `finally`, however it ends.

    A failure is saved, and raised as a BackendError, with what the user can do about it.

    Setting `stop` (from any thread) breaks off the backend's work at once, even before the first piece; the
    reply keeps its text, marked as stopped by the user. A complete reply's metrics give the exact token counts
    of both messages of the turn.
    """
    reply = ReplyRecorder(engine, turn.reply_id)
    pieces = backend.stream_chat(prompt.model, prompt.window.messages, prompt.options, stop)
    try:
        for piece in pieces:
            if stopped(stop):
                break  # a piece already on its way when the user stopped is not part of the reply
            if isinstance(piece, Metrics):
                reply.metrics = piece
                continue
            reply.append(piece)
            yield piece
        reply.status = Status.STOPPED if stopped(stop) else reply.ending()
    except BackendError as error:
        raise BackendError(reply.fail(str(error))) from None
    except Exception:
        _LOGGER.exception("Writing reply %s failed", turn.reply_id)
        raise BackendError(reply.fail(UNEXPECTED_FAILURE)) from None
    finally:
        pieces.close()
        reply.save()
        if reply.status in (Status.COMPLETE, Status.CUT):
            record_usage(engine, prompt, turn.user_message_id, turn.reply_id, reply.text(), reply.metrics)


class ReplyRecorder:
    """The assistant message being written, flushed to the database every half second."""

    def __init__(self, engine: Engine, message_id: int):
        self.engine = engine
        self.message_id = message_id
        self.parts: list[str] = []
        self.status = Status.PARTIAL
        self.error = ""
        self.metrics = Metrics()
        self.last_flush = time.monotonic()

    def text(self) -> str:
        """The reply's text so far."""
        return "".join(self.parts)

    def append(self, piece: str) -> None:
        """Add text; write it to the database if the last write is old enough."""
        self.parts.append(piece)
        if time.monotonic() - self.last_flush >= FLUSH_INTERVAL_S:
            store.update_message(self.engine, self.message_id, content=self.text())
            self.last_flush = time.monotonic()

    def ending(self) -> Status:
        """How a reply the backend finished ended: complete, or cut at the length the model may write."""
        return Status.CUT if self.metrics.done_reason == "length" else Status.COMPLETE

    def fail(self, problem: str) -> str:
        """Mark the reply as failed: the `problem`, then what the user can do; that whole message."""
        kept = "The text so far is kept. " if self.parts else ""
        self.status = Status.ERROR
        self.error = f"{problem} {kept}Regenerate the reply to try again."
        return self.error

    def save(self) -> None:
        """Write the final text, status and metrics, and when the reply ended."""
        store.update_message(
            self.engine,
            self.message_id,
            content=self.text(),
            status=self.status,
            error=self.error,
            finished_at=utc_now(),
            prompt_tokens=self.metrics.prompt_tokens,
            reply_tokens=self.metrics.reply_tokens,
            prompt_ms=self.metrics.prompt_ms,
            reply_ms=self.metrics.reply_ms,
            total_ms=self.metrics.total_ms,
        )
