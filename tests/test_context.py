"""The context window: budgets and which messages are sent."""

from dataclasses import dataclass

import pytest

from chatcore.context import build_window, estimate_tokens, prompt_budget


@dataclass
class Turn:
    role: str
    content: str


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 4), ("abcd", 5), ("abcde", 6), ("x" * 400, 104)],
)
def test_estimate_tokens(text, tokens):
    assert estimate_tokens(text) == tokens


@pytest.mark.parametrize(("num_ctx", "budget"), [(4096, 3072), (2048, 1536), (100, 75)])
def test_prompt_budget_leaves_a_quarter_for_the_reply(num_ctx, budget):
    assert prompt_budget(num_ctx) == budget


OLD, MIDDLE, NEW = Turn("user", "o" * 40), Turn("assistant", "m" * 40), Turn("user", "n" * 40)  # 14 tokens each


@pytest.mark.parametrize(
    ("system", "newest_first", "budget", "expected"),
    [
        ("", [NEW, MIDDLE, OLD], 100, [OLD, MIDDLE, NEW]),
        ("", [NEW, MIDDLE, OLD], 28, [MIDDLE, NEW]),
        ("", [NEW, MIDDLE, OLD], 27, [NEW]),
        ("", [NEW, MIDDLE, OLD], 5, [NEW]),
        ("", [NEW, Turn("assistant", ""), OLD], 28, [OLD, NEW]),
        ("", [], 100, []),
    ],
    ids=["all-fit", "two-fit", "one-fits", "newest-always-kept", "empty-skipped", "no-history"],
)
def test_window_keeps_the_newest_messages_that_fit(system, newest_first, budget, expected):
    window = build_window(system, newest_first, budget)
    assert window == [{"role": t.role, "content": t.content} for t in expected]


def test_system_prompt_comes_first_and_counts_against_the_budget():
    system = "s" * 40  # 14 tokens
    window = build_window(system, [NEW, MIDDLE, OLD], 42)
    assert window[0] == {"role": "system", "content": system}
    assert [m["content"] for m in window[1:]] == [MIDDLE.content, NEW.content]


def test_window_never_exceeds_the_budget_after_the_newest_message():
    history = [Turn("user", "w" * (length * 7)) for length in range(1, 40)]
    window = build_window("", history, 200)
    assert sum(estimate_tokens(m["content"]) for m in window) <= 200
    assert window[-1]["content"] == history[0].content


def test_window_reads_no_further_than_it_needs():
    read = []

    def newest_first():
        for index in range(1000):
            read.append(index)
            yield NEW

    build_window("", newest_first(), 50)
    assert len(read) == 4  # three fit, the fourth is read and does not
