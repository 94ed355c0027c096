"""Token counts: estimates, the learned characters per token, and counts derived from a model's metrics."""

import pytest

from chatcore.tokens import Ratio, derive_user_tokens, estimate_tokens


@pytest.mark.parametrize(
    ("text", "chars_per_token", "tokens"),
    [("", 4, 4), ("abcd", 4, 5), ("abcde", 4, 6), ("x" * 400, 4, 104), ("x" * 400, 2.5, 164), ("x" * 10, 1, 14)],
)
def test_estimate_tokens(text, chars_per_token, tokens):
    assert estimate_tokens(text, chars_per_token) == tokens


def test_the_starting_ratio_is_four_characters_a_token():
    assert Ratio().value == 4
    assert estimate_tokens("x" * 400) == 104


@pytest.mark.parametrize(
    ("samples", "learned"),
    [
        ([(400, 100)], Ratio(800, 200)),
        ([(800, 400)], Ratio(1200, 500)),
        ([(300, 100), (600, 100)], Ratio(1300, 300)),
        ([(199, 100)], Ratio()),
        ([(1000, None), (1000, 0)], Ratio()),
        ([], Ratio()),
    ],
    ids=["same-as-guess", "denser-text", "several", "too-short-to-teach", "unmeasured", "nothing"],
)
def test_ratio_learns_from_measured_messages(samples, learned):
    assert Ratio().learn(samples) == learned


@pytest.mark.parametrize(
    ("ratio", "chars", "tokens", "corrected"),
    [
        (Ratio(400, 100), 100, 50, Ratio(200, 100)),
        (Ratio(4000, 1000), 900, 1000, Ratio(900, 1000)),
        (Ratio(400, 100), 400, 50, Ratio(400, 100)),
        (Ratio(400, 100), 100, 0, Ratio(400, 100)),
        (Ratio(400, 100), 0, 10, Ratio(1, 100)),
    ],
    ids=["halved", "keeps-its-weight", "never-raised", "nothing-measured", "floor"],
)
def test_ratio_is_corrected_down_to_what_was_seen(ratio, chars, tokens, corrected):
    assert ratio.corrected(chars, tokens) == corrected


@pytest.mark.parametrize(
    ("prompt_tokens", "window_tokens", "user_estimate", "user_tokens"),
    [
        (55, 54, 54, 55),  # first turn: the whole prompt is the user message (and the template around it)
        (70, 67, 54, 57),  # with a system prompt estimated at 13 tokens, its error lands in the message
        (164, 150, 54, 68),  # second turn after P=55 and a 41-token reply: 164 - 55 - 41
        (170, 163, 54, 61),  # after an eviction: less what is still in the window, not the last prompt
        (40, 100, 54, None),  # the rest of the window was misjudged
        (46, 100, 54, None),
    ],
    ids=["first-turn", "system-prompt", "consecutive-prompts", "after-eviction", "negative", "zero"],
)
def test_user_tokens_derived_from_the_prompt_count(prompt_tokens, window_tokens, user_estimate, user_tokens):
    assert derive_user_tokens(prompt_tokens, window_tokens, user_estimate) == user_tokens
