"""The context window: which messages a request carries, within a token budget."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain, islice, tee
from typing import Protocol

from chatcore.config import DEFAULT_NUM_CTX, DEFAULT_REPLY_RESERVE
from chatcore.models import Status
from chatcore.tokens import MESSAGE_OVERHEAD_TOKENS, Ratio, estimate_tokens

CONTEXT_LENGTHS = (2048, 4096, 8192, 16384, 32768, 65536, 131072)  # the usual ones, offered up to a model's own
MEMORY_HEADING = "Summary of the earlier conversation, which is no longer included in full:\n"
DOCUMENTS_HEADING = "Context from the user's documents:\n"
REFUSAL = "Not sent: "  # how a refused reply's error has always begun: it tells a refusal from other failures


class Stored(Protocol):
    """A stored message, such as a Message row: its id, role, text and measured token count."""

    id: int
    role: str
    content: str
    tokens: int | None


class Ended(Stored, Protocol):
    """A stored message with how it ended: its status, and its error if it failed."""

    status: str
    error: str


@dataclass(frozen=True)
class Pinned:
    """What every request carries first, as one system message: system prompt, memory, documents."""

    system_prompt: str = ""
    memory: str = ""
    documents: str = ""

    def text(self) -> str:
        """The system message's text; empty when there is nothing to pin."""
        memory = self.memory and MEMORY_HEADING + self.memory
        documents = self.documents and DOCUMENTS_HEADING + self.documents
        return "\n\n".join(note for note in (self.system_prompt, memory, documents) if note)


@dataclass(frozen=True)
class Part:
    """One message of the window with what it costs; a failed reply without text costs nothing and is not sent."""

    role: str
    content: str
    tokens: int
    measured: bool = False
    message_id: int | None = None  # None for the pinned system note


@dataclass(frozen=True)
class Window:
    """The messages a request carries, oldest first, the pinned note leading."""

    parts: tuple[Part, ...]
    budget: int
    complete: bool  # True when no stored message was left out for want of room

    @property
    def messages(self) -> list[dict]:
        """The request's messages."""
        return [{"role": part.role, "content": part.content} for part in self.parts if part.content]

    @property
    def tokens(self) -> int:
        """What the prompt costs, measured where known, else estimated."""
        return sum(part.tokens for part in self.parts)

    @property
    def overflows(self) -> bool:
        """True when the newest turn or the pinned note alone is over the budget: it must not be sent."""
        return self.tokens > self.budget

    @property
    def history(self) -> tuple[Part, ...]:
        """The stored messages in the window."""
        return tuple(part for part in self.parts if part.message_id is not None)

    @property
    def oldest_id(self) -> int | None:
        """The id of the oldest stored message in the window."""
        return self.history[0].message_id if self.history else None

    def part(self, message_id: int) -> Part | None:
        """The part for a stored message, if it is in the window."""
        return next((part for part in self.history if part.message_id == message_id), None)

    def unmeasured_cost(self, prompt_tokens: int) -> tuple[int, int]:
        """Characters and text tokens of the estimated parts, given what the whole prompt really cost."""
        estimated = [part for part in self.parts if part.content and not part.measured]
        measured = sum(part.tokens for part in self.parts if part.measured)
        chars = sum(len(part.content) for part in estimated)
        return chars, prompt_tokens - measured - MESSAGE_OVERHEAD_TOKENS * len(estimated)


def prompt_budget(num_ctx: int, reply_reserve: float = DEFAULT_REPLY_RESERVE) -> int:
    """Tokens the prompt may use, leaving room for the reply."""
    return int(num_ctx * (1 - reply_reserve))


def context_length_choices(trained: int | None, setting: int) -> list[int]:
    """The context lengths to offer a chat: the usual ones up to the model's own (`trained`), that one, the setting."""
    usual = [length for length in CONTEXT_LENGTHS if not trained or length < trained]
    return sorted({*usual, *([trained] if trained else []), choose_context_length(trained, setting)})


def choose_context_length(trained: int | None, setting: int) -> int:
    """The num_ctx to use: the model's trained length, capped by the user's setting."""
    return min(trained, setting) if trained else setting


def request_options(chat_options: dict, trained: int | None) -> dict:
    """The model options for a request; num_ctx is always set so Ollama never truncates silently."""
    setting = chat_options.get("num_ctx") or DEFAULT_NUM_CTX
    return chat_options | {"num_ctx": choose_context_length(trained, setting)}


def build_window(
    pinned: Pinned, newest_first: Iterable[Stored], budget: int, chars_per_token: float = Ratio().value
) -> Window:
    """The pinned note, the newest turn whatever its size, then the newest whole turns that fit.

    Reads `newest_first` only as far as it needs. A window that overflows its budget (the newest turn
    or the pinned note alone is too big) is returned for the caller to refuse, never trimmed.
    """
    text = pinned.text()
    head = (Part("system", text, estimate_tokens(text, chars_per_token)),) if text else ()
    used = sum(part.tokens for part in head)
    kept: list[Part] = []
    for turn in group_turns(newest_first, chars_per_token):
        cost = sum(part.tokens for part in turn)
        if kept and used + cost > budget:
            return Window(head + tuple(reversed(kept)), budget, complete=False)
        kept.extend(turn)
        used += cost
    return Window(head + tuple(reversed(kept)), budget, complete=True)


def group_turns(newest_first: Iterable[Stored], chars_per_token: float) -> Iterator[list[Part]]:
    """Messages grouped into whole turns, newest first: a user message with the replies after it."""
    turn: list[Part] = []
    for message in newest_first:
        turn.append(make_part(message, chars_per_token))
        if message.role == "user":
            yield turn
            turn = []
    if turn:
        yield turn


def make_part(message: Stored, chars_per_token: float) -> Part:
    """A stored message as a part of the window, at its measured cost if it has one."""
    if not message.content:
        return Part(message.role, "", 0, message_id=message.id)
    if message.tokens is not None:
        return Part(message.role, message.content, message.tokens, measured=True, message_id=message.id)
    return Part(message.role, message.content, estimate_tokens(message.content, chars_per_token), message_id=message.id)


def is_refusal(message: Ended) -> bool:
    """True for a reply refused before anything was sent, its request being too long for the context."""
    return message.status == Status.ERROR and not message.content and message.error.startswith(REFUSAL)


def drop_refused(messages: Iterable[Ended], newest_first: bool = True) -> Iterator[Ended]:
    """The messages, in their order, less the refused turns: each refusal and the question just before it.

    A refused question was never sent nor answered: it is in no window, so neither the newest turn of a later
    request nor a turn too big for it, and no memory. Only a question being answered again has no refusal after it.
    """
    messages, copy = tee(messages)
    replies = chain([None], copy) if newest_first else chain(islice(copy, 1, None), [None])  # the message after each
    for message, reply in zip(messages, replies, strict=False):
        refused_question = message.role == "user" and reply is not None and is_refusal(reply)
        if not refused_question and not is_refusal(message):
            yield message
