"""Replies: the one service the pages talk to, owning each reply from the user's message to its follow-ups."""

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import Engine

from chatcore import generation, memory, store
from chatcore.backends import Backend, BackendError, StopSignal
from chatcore.config import DEFAULT_REPLY_LEASE_S, DEFAULT_REPLY_RESERVE
from chatcore.generation import Turn
from chatcore.models import Status
from chatcore.prompt import ContextOverflowError, Prompt, build_prompt

_LOGGER = logging.getLogger(__name__)
MAX_WORKERS = 16  # replies and follow-ups written at once in one process; more wait their turn
TITLE = "writing a title"
MEMORY = "updating the memory"
BUSY = "A reply is still being written in this chat. Wait for it, or stop it first."
HEARTBEAT_S = generation.FLUSH_INTERVAL_S  # how often an instance renews its replies' leases and looks for stops
POLL_S = HEARTBEAT_S / 2  # how often a reply another instance writes is read: a saved piece waits 1/4 s on average


class ChatBusyError(RuntimeError):
    """A reply is already being written in this chat."""


class LiveReply:
    """One reply being written: its text so far in memory, and how it ended."""

    def __init__(self, chat_id: int, turn: Turn):
        self.chat_id = chat_id
        self.turn = turn
        self.stop = StopSignal()
        self.pieces: list[str] = []
        self.error = ""
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

    def follow(self, until: float | None = None, every: float = 0.0) -> Iterator[str]:
        """The text so far, then new text as it arrives, until the reply ends or the monotonic time `until`.

        With `every`, a piece at most every so many seconds: the text that came meanwhile is joined into the next.
        """
        sent = 0
        while True:
            with self._changed:
                self._changed.wait_for(lambda sent=sent: len(self.pieces) > sent or self.finished, seconds_left(until))
                new = self.pieces[sent:]
                over = self.finished
            sent += len(new)
            if new:
                yield "".join(new)
            if over or seconds_left(until) == 0:
                return
            time.sleep(pause(every, until))

    def text(self) -> str:
        """The whole reply, once it has ended (waiting for that)."""
        return "".join(self.follow())


def seconds_left(until: float | None) -> float | None:
    """Seconds until the monotonic time `until`, never below 0; None for no limit."""
    return None if until is None else max(0.0, until - time.monotonic())


def pause(seconds: float, until: float | None) -> float:
    """`seconds`, cut short at the monotonic time `until`."""
    return seconds if until is None else min(seconds, seconds_left(until))


class FollowedReply:
    """A reply another app instance is writing, followed from the database: read as a LiveReply is.

    The owner saves its text every flush interval; the follower reads it twice as often.
    """

    def __init__(self, engine: Engine, chat_id: int, turn: Turn, progress: store.ReplyProgress):
        self.engine = engine
        self.chat_id = chat_id
        self.turn = turn
        self.pieces: list[str] = []
        self.error = ""
        self.finished = False
        self._take(progress)

    def follow(self, until: float | None = None, every: float = 0.0) -> Iterator[str]:
        """The text so far, then new text as it is saved, until the reply ends or the monotonic time `until`.

        It is read every POLL_S seconds, or every `every` seconds if that is longer.
        """
        sent = 0
        while True:
            new = self.pieces[sent:]
            sent += len(new)
            if new:
                yield "".join(new)
            if self.finished or seconds_left(until) == 0:
                return
            time.sleep(pause(max(POLL_S, every), until))
            self._take(store.reply_progress(self.engine, self.turn.reply_id))

    def text(self) -> str:
        """The whole reply, once it has ended (waiting for that)."""
        return "".join(self.follow())

    def _take(self, progress: store.ReplyProgress | None) -> None:
        """Take in the reply as saved now: its new text, and its end (None: deleted, with its chat or regenerated)."""
        shown = sum(map(len, self.pieces))
        if progress is not None and len(progress.content) > shown:
            self.pieces.append(progress.content[shown:])
        if progress is None or progress.status != Status.STREAMING:
            self.error = progress.error if progress else ""
            self.finished = True


@dataclass
class Sent:
    """What became of a message: answered now (`reply`), or queued behind the reply being written."""

    reply: LiveReply | FollowedReply | None
    queued: bool = False


@dataclass
class _Chat:
    """What this process is doing for one chat."""

    reply: LiveReply | None = None
    follow_ups: set[str] = field(default_factory=set)


class ReplyService:
    """Replies and their follow-ups (title, memory) for one database, at most one reply per chat at a time.

    A message sent while its chat has a reply being written is saved at once as queued, and answered
    when that reply ends. Every reply is written by a worker thread, so no click, page switch or reload
    cuts it off; only `stop` does, and it keeps the text so far.

    Each service is one app instance among any others on the same database. A reply is owned in the
    database: claimed there atomically, and held by a lease that a heartbeat renews while it is written.
    A reply another instance writes is followed from the database and can be stopped from here; one whose
    owner died (its lease ran out) is marked interrupted by whichever instance notices first.
    """

    def __init__(
        self,
        engine: Engine,
        auto_title: bool = True,
        reply_reserve: float = DEFAULT_REPLY_RESERVE,
        lease_s: float = DEFAULT_REPLY_LEASE_S,
    ):
        self.engine = engine
        self.auto_title = auto_title
        self.reply_reserve = reply_reserve
        self.lease = store.Lease(uuid.uuid4().hex, lease_s)
        self._chats: dict[int, _Chat] = {}
        self._claimed: set[int] = set()
        self._closing = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._executor = ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="reply")
        self._closed = threading.Event()
        self._heartbeat = threading.Thread(target=self._renew_leases, name="reply-heartbeat", daemon=True)
        self._heartbeat.start()

    def live(self, chat_id: int) -> LiveReply | FollowedReply | None:
        """The reply being written in a chat, if any: by this instance, or by another, followed from the database."""
        with self._lock:
            reply = self._state(chat_id).reply
        return reply or self._followed(chat_id)

    def follow_ups(self, chat_id: int) -> set[str]:
        """The work still to do after a chat's last reply (TITLE, MEMORY), to show it."""
        with self._lock:
            return set(self._state(chat_id).follow_ups)

    def working(self, chat_id: int) -> bool:
        """Whether a reply or follow-up is being written in a chat, or about to be; or a reply, by another instance."""
        with self._lock:
            here = self._working(chat_id)
        return here or self._followed(chat_id) is not None

    def settle(self, chat_id: int, timeout: float | None = None) -> bool:
        """Wait until a chat has no reply, queued message or follow-up in progress; False if `timeout` passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._working(chat_id), timeout)

    def send(self, backend: Backend, chat_id: int, model: str, text: str) -> Sent:
        """Save the user's message and answer it, or queue it behind the reply being written."""
        if self._claim(chat_id):
            start_turn = partial(generation.start_turn, self.engine, chat_id, text, lease=self.lease)
            if reply := self._start(backend, chat_id, model, start_turn):
                return Sent(reply)
            return Sent(self.live(chat_id), queued=True)  # behind another instance's reply, which answers it
        store.queue_message(self.engine, chat_id, text, model)
        if self._claim(chat_id, wait=True):  # else the reply being written answers the queue when it ends
            self._answer_queued(backend, chat_id, model)
        return Sent(self.live(chat_id), queued=True)

    def answer_queued(self, backend: Backend, chat_id: int, model: str) -> LiveReply | None:
        """Answer the messages a chat has queued, left so by a process that ended before it could."""
        if not self._claim(chat_id):
            return None  # the reply being written answers the queue when it ends
        return self._answer_queued(backend, chat_id, model)

    def regenerate(self, backend: Backend, chat_id: int, model: str) -> LiveReply:
        """Write the last reply again, replacing it."""
        return self._restart(backend, chat_id, model, None)

    def resend_edited(self, backend: Backend, chat_id: int, model: str, text: str) -> LiveReply:
        """Replace the last user message with `text` and answer it anew."""
        return self._restart(backend, chat_id, model, text)

    def stop(self, chat_id: int) -> None:
        """Stop the reply being written in a chat at once (another instance's at its next heartbeat); text is kept."""
        with self._lock:
            reply = self._state(chat_id).reply
        if reply:
            reply.stop.set()
        else:
            store.request_stop(self.engine, chat_id)

    def preview(self, backend: Backend, chat_id: int, model: str) -> Prompt | None:
        """What the chat's next request would carry, without looking up documents; None for a deleted chat."""
        chat = store.get_chat(self.engine, chat_id)
        if chat is None:
            return None
        return build_prompt(self.engine, backend, chat, model, self.reply_reserve, documents=False)

    def shutdown(self) -> None:
        """Stop every reply, keeping its text, and wait for the workers to end; queued messages stay queued."""
        with self._lock:
            self._closing = True
            replies = [chat.reply for chat in self._chats.values() if chat.reply]
        for reply in replies:
            reply.stop.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._closed.set()
        self._heartbeat.join()

    def _working(self, chat_id: int) -> bool:
        state = self._state(chat_id)
        return chat_id in self._claimed or state.reply is not None or bool(state.follow_ups)

    def _state(self, chat_id: int) -> _Chat:
        return self._chats.setdefault(chat_id, _Chat())

    def _followed(self, chat_id: int) -> FollowedReply | None:
        """The reply another instance is writing in a chat, followed from the database (none if its owner died)."""
        progress = store.reply_elsewhere(self.engine, chat_id, self.lease.owner)
        if progress is None:
            return None
        question = store.last_user_message(self.engine, chat_id, before=progress.reply_id)
        return FollowedReply(self.engine, chat_id, Turn(question.id, progress.reply_id), progress)

    def _renew_leases(self) -> None:
        """While this instance writes replies, at every heartbeat: renew their leases, and stop those asked to stop."""
        while not self._closed.wait(HEARTBEAT_S):
            with self._lock:
                claimed = bool(self._claimed)
                replies = {chat.reply.turn.reply_id: chat.reply for chat in self._chats.values() if chat.reply}
            if not claimed:
                continue
            with contextlib.suppress(store.StorageError):  # a missed beat is made up by the next: a lease outlasts many
                for reply_id in store.renew_leases(self.engine, self.lease):
                    if reply_id in replies:  # else not yet written: its stop is seen at a later beat
                        replies[reply_id].stop.set()

    def _claim(self, chat_id: int, wait: bool = False) -> bool:
        """Reserve the chat for a new reply; False if one is being written.

        With `wait`, a chat reserved while its next reply is prepared is waited for, as that may have read the
        queue already: once the reply is being written its end answers the queue, and if none is, the claim is ours.
        """
        with self._changed:
            if wait:
                self._changed.wait_for(lambda: chat_id not in self._claimed or self._state(chat_id).reply is not None)
            if chat_id in self._claimed:
                return False
            self._claimed.add(chat_id)
            return True

    def _restart(self, backend: Backend, chat_id: int, model: str, edited: str | None) -> LiveReply:
        if not self._claim(chat_id):
            raise ChatBusyError(BUSY)
        restart = partial(generation.restart_reply, self.engine, chat_id, edited, lease=self.lease)
        if reply := self._start(backend, chat_id, model, restart):
            return reply
        raise ChatBusyError(BUSY)  # by another instance

    def _answer_queued(self, backend: Backend, chat_id: int, model: str) -> LiveReply | None:
        """With the chat claimed: answer its queued messages, if any (looked for first, so as not to write)."""
        if not store.has_queued(self.engine, chat_id):
            self._release(chat_id)
            return None
        return self._start(
            backend, chat_id, model, partial(generation.answer_queued, self.engine, chat_id, lease=self.lease)
        )

    def _start(
        self, backend: Backend, chat_id: int, model: str, prepare: Callable[[str], Turn | None]
    ) -> LiveReply | None:
        """With the chat claimed: save the turn, plan its request (ContextOverflowError here), write it in a worker.

        `prepare(model)` saves the turn; when it finds nothing to answer, the chat is freed and None returned.
        """
        try:
            turn = prepare(model)
            if turn is None:
                self._release(chat_id)
                return None
            reply = LiveReply(chat_id, turn)
            prompt = generation.plan_reply(self.engine, backend, chat_id, reply.turn, model, self.reply_reserve)
        except BaseException:
            self._release(chat_id)
            raise
        with self._changed:
            self._state(chat_id).reply = reply
            self._changed.notify_all()
        self._executor.submit(self._write, reply, backend, prompt)
        return reply

    def _write(self, reply: LiveReply, backend: Backend, prompt: Prompt) -> None:
        error = ""
        try:
            for piece in generation.stream_reply(self.engine, backend, reply.turn, prompt, reply.stop):
                reply.append(piece)
        except BackendError as failure:
            error = str(failure)
        except Exception:  # the worker must always finish and free the chat
            _LOGGER.exception("Writing the reply in chat %s failed", reply.chat_id)
            error = generation.UNEXPECTED_FAILURE
        closing = self._closing  # then queued messages wait for the next process, follow-ups for the next reply
        wanted = set() if closing else self._follow_ups_after(backend, reply, error)
        with self._lock:
            state = self._state(reply.chat_id)
            state.reply = None
            state.follow_ups |= wanted
        if closing:
            self._release(reply.chat_id)
        else:
            # The chat stays claimed until its queue is answered, so it never looks settled in between. A refusal is
            # saved with the reply, for the page to show; a storage failure leaves the messages queued for a later try.
            with contextlib.suppress(ContextOverflowError, store.StorageError):
                self._answer_queued(backend, reply.chat_id, prompt.model)
        reply.finish(error)  # only now, so that a follower finds the reply to the queued messages already live
        if wanted:
            self._executor.submit(self._follow_up, backend, reply, prompt.model, wanted)

    def _follow_ups_after(self, backend: Backend, reply: LiveReply, error: str) -> set[str]:
        if error or not backend.follows_instructions:  # a base model's titles and summaries are noise
            return set()
        wanted = {MEMORY}
        if self.auto_title and not reply.stop.is_set():
            wanted.add(TITLE)
        return wanted

    def _follow_up(self, backend: Backend, reply: LiveReply, model: str, wanted: set[str]) -> None:
        try:
            if TITLE in wanted:
                generation.improve_title(self.engine, backend, reply.chat_id, model)
                self._done(reply.chat_id, TITLE)
            memory.update_memory(self.engine, backend, reply.chat_id, model, self.reply_reserve)
        finally:
            self._done(reply.chat_id, *wanted)

    def _done(self, chat_id: int, *work: str) -> None:
        with self._changed:
            self._state(chat_id).follow_ups.difference_update(work)
            self._changed.notify_all()

    def _release(self, chat_id: int) -> None:
        with self._changed:
            self._claimed.discard(chat_id)
            self._changed.notify_all()
