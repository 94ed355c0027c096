"""The context window: which messages a request carries, within a token budget."""

import math
from collections.abc import Iterable
from typing import Protocol

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators the chat template adds per message
REPLY_SHARE = 0.25  # part of num_ctx kept free for the reply


class Turn(Protocol):
    """Anything with a role and a content, such as a stored Message."""

    role: str
    content: str


def estimate_tokens(text: str) -> int:
    """A rough token count for one message: ~4 characters a token plus template overhead."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


def prompt_budget(num_ctx: int) -> int:
    """Tokens the prompt may use, leaving room for the reply."""
    return int(num_ctx * (1 - REPLY_SHARE))


def build_window(system_prompt: str, newest_first: Iterable[Turn], budget: int) -> list[dict]:
    """The request's messages, oldest first: the system prompt, then the newest messages that fit.

    The newest message is always kept. Messages without text (failed replies) are skipped.
    """
    used = estimate_tokens(system_prompt) if system_prompt else 0
    kept: list[dict] = []
    for turn in newest_first:
        if not turn.content:
            continue
        cost = estimate_tokens(turn.content)
        if kept and used + cost > budget:
            break
        kept.append({"role": turn.role, "content": turn.content})
        used += cost
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    return system + kept[::-1]
