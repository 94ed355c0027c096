"""A chat's next request: its window within the model's context, and what the reply's metrics teach."""

from dataclasses import dataclass, replace

from sqlalchemy import Engine

from chatcore import store
from chatcore.backends import Backend, Metrics
from chatcore.config import DEFAULT_REPLY_RESERVE
from chatcore.context import REFUSAL, Pinned, Window, build_window, drop_refused, prompt_budget, request_options
from chatcore.models import Chat
from chatcore.retrieval import Found, Passage, pin_documents
from chatcore.tokens import Ratio, derive_user_tokens


class ContextOverflowError(ValueError):
    """The newest message does not fit in the chat's context; it was saved but not sent."""


@dataclass(frozen=True)
class Prompt:
    """What a chat sends next to a model: the options, with num_ctx, and the window within its budget."""

    chat: Chat
    model: str
    options: dict
    window: Window
    ratio: Ratio
    reply_reserve: float
    sources: tuple[Passage, ...] = ()  # the document passages pinned, cited by their position from 1


def build_prompt(
    engine: Engine,
    backend: Backend,
    chat: Chat,
    model: str,
    reply_reserve: float = DEFAULT_REPLY_RESERVE,
    before: int | None = None,
    documents: bool = True,
) -> Prompt:
    """The request the chat's messages older than `before` (default: all) make for `model`.

    Reads only the newest rows that fit; turns refused as too long are left out. A reply passes its own id,
    so turns sent after its question (from another tab or process) stay out of its window. The passages of
    the chat's documents that best match its newest question (or their summaries, if it asks for one) are
    pinned too, in at most a third of the budget; a preview of the window (`documents` False) leaves them out.
    """
    options = request_options(chat.options, backend.context_length(model))
    ratio = store.get_ratio(engine, model)
    budget = prompt_budget(options["num_ctx"], reply_reserve)
    pinned = Pinned(chat.system_prompt, chat.memory if chat.memory_enabled else "")
    found = Found()
    if documents:
        found = pin_documents(engine, chat.id, pinned, budget, ratio.value, before, backend.embedder)
    pinned = replace(pinned, documents=found.text())
    history = drop_refused(store.iter_messages_newest_first(engine, chat.id, before=before))
    window = build_window(pinned, history, budget, ratio.value)
    return Prompt(chat, model, options, window, ratio, reply_reserve, found.passages)


def describe_overflow(prompt: Prompt) -> str:
    """Why a request cannot be sent, and what the user can do, in words."""
    window = prompt.window
    newest = sum(part.tokens for part in window.history)  # an overflowing window holds the newest turn alone
    pinned = window.tokens - newest
    of_which = f", and the system prompt and memory already take {pinned:,}" if pinned else ""
    return (
        f"{REFUSAL}your message is about {newest:,} tokens, and this chat can send {prompt.model} at most "
        f"{window.budget:,} (the context length {prompt.options['num_ctx']:,} less {prompt.reply_reserve:.0%} "
        f"kept for the reply){of_which}. Your message is saved: shorten or split it, "
        "or raise the context length in Chat settings."
    )


def record_usage(engine: Engine, prompt: Prompt, user_id: int, reply_id: int, reply: str, metrics: Metrics) -> None:
    """Store the token counts a finished reply's metrics give, and correct the model's ratio by them."""
    if metrics.prompt_tokens is None or metrics.reply_tokens is None:
        return
    window = prompt.window
    counts = {reply_id: metrics.reply_tokens}
    samples = [(len(reply), metrics.reply_tokens)]
    user = window.part(user_id)
    # Passages are a large estimated share of the prompt: their error would be taken for the question's tokens.
    user_tokens = user and not prompt.sources and derive_user_tokens(metrics.prompt_tokens, window.tokens, user.tokens)
    if user_tokens:
        counts[user_id] = user_tokens
        samples.append((len(user.content), user_tokens))
    ratio = prompt.ratio.learn(samples)
    if metrics.prompt_tokens > window.budget:  # the estimate let more through than the budget allows
        ratio = ratio.corrected(*window.unmeasured_cost(metrics.prompt_tokens))
    store.save_token_counts(engine, counts, prompt.model, ratio)
