"""Rolling memory: the turns that fell out of a chat's window, summarised by its model and pinned into requests."""

from collections.abc import Iterable, Iterator

from sqlalchemy import Engine

from chatcore import store
from chatcore.backends import Backend, BackendError, complete_text
from chatcore.config import DEFAULT_REPLY_RESERVE
from chatcore.context import Stored, Window, drop_refused
from chatcore.models import Chat, Message
from chatcore.prompt import Prompt, build_prompt
from chatcore.tokens import estimate_tokens

SUMMARY_INSTRUCTIONS = (
    "You keep the memory of a long conversation between a user and an assistant: a compact summary of what "
    "was said earlier. Merge the earlier summary and the new excerpt into one summary. Keep names, facts, "
    "numbers, decisions, the user's preferences and open questions; drop pleasantries. Answer with the "
    "summary alone, in plain sentences, at most 200 words."
)
SUMMARY_TOKENS = 400
SUMMARY_TEMPERATURE = 0.2


def evicted_messages(engine: Engine, chat: Chat, window: Window) -> Iterator[Message]:
    """The messages older than the window that the memory does not cover yet, oldest first; never a refused turn."""
    if window.complete or window.oldest_id is None:
        return iter(())
    older = store.iter_messages_between(engine, chat.id, after=chat.memory_until, before=window.oldest_id)
    return drop_refused(older, newest_first=False)


def is_up_to_date(engine: Engine, chat: Chat, window: Window) -> bool:
    """True when the memory covers every message older than the window."""
    return next(evicted_messages(engine, chat, window), None) is None


def update_memory(
    engine: Engine, backend: Backend, chat_id: int, model: str, reply_reserve: float = DEFAULT_REPLY_RESERVE
) -> bool:
    """Fold the oldest evicted messages, as many as one request holds, into the chat's memory; True if it changed."""
    chat = store.get_chat(engine, chat_id)
    if chat is None or not chat.memory_enabled:
        return False
    prompt = build_prompt(engine, backend, chat, model, reply_reserve)
    room = prompt.window.budget - estimate_tokens(SUMMARY_INSTRUCTIONS + chat.memory, prompt.ratio.value)
    excerpt = take_excerpt(evicted_messages(engine, chat, prompt.window), room, prompt.ratio.value) if room > 0 else []
    if not excerpt:
        return False
    try:
        summary = summarise(backend, prompt, excerpt, int(room * prompt.ratio.value))
    except BackendError:
        return False  # the messages stay pending; the next reply tries again
    return bool(summary) and store.save_memory(engine, chat.id, chat.memory_until, summary, excerpt[-1].id)


def take_excerpt(oldest_first: Iterable[Stored], room: int, chars_per_token: float) -> list[Stored]:
    """The oldest messages whose text fits in `room` tokens, and always the first one."""
    taken: list[Stored] = []
    used = 0
    for message in oldest_first:
        used += estimate_tokens(message.content, chars_per_token)
        if taken and used > room:
            break
        taken.append(message)
    return taken


def write_summary_request(memory: str, excerpt: Iterable[Stored], clip_chars: int) -> list[dict]:
    """The summary request: instructions, then the earlier summary and the excerpt as a transcript."""
    lines = [f"{'User' if m.role == 'user' else 'Assistant'}: {m.content[:clip_chars]}" for m in excerpt if m.content]
    text = f"Earlier summary:\n{memory or '(none yet)'}\n\nNew excerpt:\n" + "\n\n".join(lines)
    return [{"role": "system", "content": SUMMARY_INSTRUCTIONS}, {"role": "user", "content": text}]


def summarise(backend: Backend, prompt: Prompt, excerpt: list[Stored], clip_chars: int) -> str:
    """The chat's memory merged with the excerpt, by the chat's model at the chat's context length."""
    messages = write_summary_request(prompt.chat.memory, excerpt, clip_chars)
    room_for_reply = prompt.options["num_ctx"] - prompt.window.budget
    options = prompt.options | {"num_predict": min(SUMMARY_TOKENS, room_for_reply), "temperature": SUMMARY_TEMPERATURE}
    return complete_text(backend, prompt.model, messages, options).strip()
