"""Token counts: estimated from characters, derived from what the model reports, learned per model."""

import math
from collections.abc import Iterable
from dataclasses import dataclass

MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators the chat template adds per message
PRIOR_TOKENS = 100  # how much evidence the starting guess of 4 characters a token is worth
# Shorter messages cost mostly template tokens: learning from them would make every estimate too high.
MIN_SAMPLE_CHARS = 200


@dataclass(frozen=True)
class Ratio:
    """Characters per token of a model's tokenizer, kept as totals of the text it was measured on."""

    chars: int = 4 * PRIOR_TOKENS
    tokens: int = PRIOR_TOKENS

    @property
    def value(self) -> float:
        """Characters per token."""
        return self.chars / self.tokens

    def learn(self, samples: Iterable[tuple[int, int | None]]) -> "Ratio":
        """Add measured messages as (characters, tokens); short or unmeasured ones teach nothing.

        The tokens include the message's template overhead, which makes the ratio a little low:
        estimates err on the side of too many tokens.
        """
        usable = [(chars, tokens) for chars, tokens in samples if tokens and chars >= MIN_SAMPLE_CHARS]
        return Ratio(self.chars + sum(c for c, _ in usable), self.tokens + sum(t for _, t in usable))

    def corrected(self, chars: int, tokens: int) -> "Ratio":
        """The ratio lowered to `chars / tokens` if text was seen to cost more than estimated, same weight."""
        if tokens <= 0 or chars / tokens >= self.value:
            return self
        return Ratio(max(1, round(chars * self.tokens / tokens)), self.tokens)


def estimate_tokens(text: str, chars_per_token: float = Ratio().value) -> int:
    """A token count for one message of text: its characters by the ratio, plus template overhead."""
    return math.ceil(len(text) / chars_per_token) + MESSAGE_OVERHEAD_TOKENS


def derive_user_tokens(prompt_tokens: int, window_tokens: int, user_tokens: int) -> int | None:
    """The exact token count of the user message a request ended with, from the prompt_eval_count it got.

    Ollama reports `prompt_eval_count` P for the whole rendered prompt. Every other part of the window
    is already counted (replies by their `eval_count`, earlier user messages by this same derivation,
    the pinned system note by estimate), so the new message costs P less the rest of the window:
    `P - (window_tokens - user_tokens)`, `user_tokens` being the estimate the window used for it.
    In the steady state (nothing evicted, the same pinned note) the rest of the window is the previous
    request's prompt plus the previous reply, so this is the difference of consecutive prompt counts
    minus the assistant part: `P(k) - P(k-1) - eval_count(k-1)`. Template tokens (role markers, the
    reply's end marker, an error in the pinned estimate) land in the user message's count, so the
    counts of a window add up to what the model measured. None when the result is not positive:
    then the rest of the window was misjudged and the estimate stays.
    """
    tokens = prompt_tokens - (window_tokens - user_tokens)
    return tokens if tokens > 0 else None
