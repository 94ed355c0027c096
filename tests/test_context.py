"""The context window: budgets, context lengths, and which messages a request carries."""

import pytest

from chatcore.context import (
    DOCUMENTS_HEADING,
    MEMORY_HEADING,
    Pinned,
    build_window,
    choose_context_length,
    context_length_choices,
    drop_refused,
    prompt_budget,
    request_options,
)
from chatcore.models import Message, Status
from tests.history import Stored


@pytest.mark.parametrize(
    ("num_ctx", "reserve", "budget"), [(4096, 0.25, 3072), (2048, 0.25, 1536), (100, 0.25, 75), (8192, 0.5, 4096)]
)
def test_prompt_budget_leaves_the_reserve_for_the_reply(num_ctx, reserve, budget):
    assert prompt_budget(num_ctx, reserve) == budget


@pytest.mark.parametrize(
    ("trained", "setting", "num_ctx"),
    [(8192, 4096, 4096), (8192, 16384, 8192), (None, 4096, 4096), (131072, 2048, 2048)],
)
def test_context_length_is_the_trained_length_capped_by_the_setting(trained, setting, num_ctx):
    assert choose_context_length(trained, setting) == num_ctx


@pytest.mark.parametrize(
    ("chat_options", "trained", "options"),
    [
        ({}, None, {"num_ctx": 4096}),
        ({}, 2048, {"num_ctx": 2048}),
        ({"num_ctx": 16384, "temperature": 0.3}, 8192, {"num_ctx": 8192, "temperature": 0.3}),
        ({"num_ctx": 2048}, 8192, {"num_ctx": 2048}),
    ],
)
def test_request_options_always_carry_num_ctx(chat_options, trained, options):
    assert request_options(chat_options, trained) == options


# A conversation of three turns, 10 measured tokens a message, newest first as the store reads it.
U1, A1, U2, A2, U3 = (
    Stored(1, "user", "first question", 10),
    Stored(2, "assistant", "first answer", 10),
    Stored(3, "user", "second question", 10),
    Stored(4, "assistant", "second answer", 10),
    Stored(5, "user", "third question", 10),
)
HISTORY = [U3, A2, U2, A1, U1]
SYSTEM = "s" * 36  # estimated at 36 / 4 + 4 = 13 tokens
FAILED = Stored(6, "assistant", "")  # a reply that failed before any text, or the one about to be written


@pytest.mark.parametrize(
    ("pinned", "newest_first", "budget", "sent", "complete"),
    [
        (Pinned(), HISTORY, 100, [U1, A1, U2, A2, U3], True),
        (Pinned(), HISTORY, 30, [U2, A2, U3], False),
        (Pinned(), HISTORY, 49, [U2, A2, U3], False),
        (Pinned(), HISTORY, 29, [U3], False),
        (Pinned(), HISTORY, 5, [U3], False),
        (Pinned(SYSTEM), HISTORY, 43, [SYSTEM, U2, A2, U3], False),
        (Pinned(SYSTEM), HISTORY, 42, [SYSTEM, U3], False),
        (Pinned(), [FAILED, *HISTORY], 30, [U2, A2, U3], False),
        (Pinned(), [U3, FAILED, U2, A1, U1], 40, [U1, A1, U2, U3], True),
        (Pinned(SYSTEM), [], 100, [SYSTEM], True),
        (Pinned(), [A1], 100, [A1], True),
    ],
    ids=[
        "all-fit",
        "newest-turns-that-fit",
        "turns-whole-never-half",
        "newest-alone",
        "newest-kept-over-budget",
        "system-prompt-kept-and-counted",
        "system-prompt-before-history",
        "reply-being-written-costs-nothing",
        "failed-reply-skipped",
        "no-history",
        "reply-without-question",
    ],
)
def test_window_keeps_the_pinned_note_the_newest_turn_and_the_newest_whole_turns(
    pinned, newest_first, budget, sent, complete
):
    window = build_window(pinned, newest_first, budget)
    expected = [
        {"role": "system", "content": item} if isinstance(item, str) else {"role": item.role, "content": item.content}
        for item in sent
    ]
    assert window.messages == expected
    assert window.complete is complete


# Turns as the store reads them, newest first: a question refused as too long, one whose reply failed, a queued one.
Q1, R1 = Message(id=1, role="user", content="first question"), Message(id=2, role="assistant", content="first answer")
BIG = Message(id=3, role="user", content="x" * 10_000)
REFUSED = Message(
    id=4,
    role="assistant",
    status=Status.ERROR,
    error="Not sent: your message is about 2,504 tokens, and this chat can send m at most 1,536 (...). "
    "Your message is saved: shorten or split it, or raise the context length in Chat settings.",
)
Q3 = Message(id=5, role="user", content="third question")
DOWN = Message(id=6, role="assistant", status=Status.ERROR, error="Cannot reach Ollama. Regenerate the reply.")


@pytest.mark.parametrize(
    ("newest_first", "kept"),
    [
        ([REFUSED, BIG, R1, Q1], [R1, Q1]),
        ([Q3, REFUSED, BIG, R1, Q1], [Q3, R1, Q1]),
        ([DOWN, Q3, REFUSED, BIG, R1, Q1], [DOWN, Q3, R1, Q1]),
        ([BIG, R1, Q1], [BIG, R1, Q1]),
        ([REFUSED, BIG, Q1], [Q1]),
        ([REFUSED, R1, Q1], [R1, Q1]),
    ],
    ids=[
        "refused-newest",
        "refused-between",
        "failed-reply-kept-with-its-question",
        "question-being-answered-again",
        "queued-question-before-it-kept",
        "refusal-without-question",
    ],
)
def test_a_refused_turn_is_dropped_in_either_order(newest_first, kept):
    assert list(drop_refused(newest_first)) == kept
    assert list(drop_refused(reversed(newest_first), newest_first=False)) == list(reversed(kept))


@pytest.mark.parametrize(
    ("newest_first", "sent"),
    [([REFUSED, BIG, R1, Q1], [Q1, R1]), ([Q3, REFUSED, BIG, R1, Q1], [Q1, R1, Q3])],
    ids=["not-the-newest-turn", "not-a-wall"],
)
def test_a_window_without_refused_turns_holds_every_turn_that_fits(newest_first, sent):
    window = build_window(Pinned(), drop_refused(newest_first), 100)
    assert window.messages == [{"role": message.role, "content": message.content} for message in sent]
    assert (window.complete, window.overflows, window.oldest_id) == (True, False, Q1.id)


def test_memory_and_documents_are_pinned_after_the_system_prompt():
    window = build_window(Pinned("Be brief.", memory="The user is Ana.", documents="Ana's CV"), HISTORY, 5)
    system = window.messages[0]
    assert system == {
        "role": "system",
        "content": f"Be brief.\n\n{MEMORY_HEADING}The user is Ana.\n\n{DOCUMENTS_HEADING}Ana's CV",
    }
    assert window.messages[1:] == [{"role": "user", "content": U3.content}]


@pytest.mark.parametrize("budget", range(1, 120, 3))
def test_window_never_exceeds_the_budget_unless_it_is_refused(budget):
    window = build_window(Pinned(SYSTEM), HISTORY, budget)
    assert window.tokens <= budget or (window.overflows and [p.message_id for p in window.history] == [U3.id])
    assert window.overflows == (budget < 23)


def test_window_counts_measured_messages_exactly_and_estimates_the_rest():
    window = build_window(Pinned(), [Stored(2, "user", "x" * 40), Stored(1, "assistant", "y" * 400, 77)], 1000)
    assert [(part.tokens, part.measured) for part in window.history] == [(77, True), (14, False)]
    assert window.tokens == 91
    assert build_window(Pinned(), [Stored(2, "user", "x" * 40)], 1000, chars_per_token=2.0).tokens == 24


def test_window_knows_where_it_starts():
    window = build_window(Pinned(), [FAILED, *HISTORY], 30)
    assert window.oldest_id == U2.id
    assert [part.message_id for part in window.history] == [U2.id, A2.id, U3.id, FAILED.id]
    assert window.part(U3.id).content == U3.content and window.part(U1.id) is None


def test_window_reads_no_further_than_it_needs():
    read = []

    def newest_first():
        for index in range(999, 0, -1):
            read.append(index)
            yield Stored(index, "user" if index % 2 else "assistant", "message", 10)

    window = build_window(Pinned(), newest_first(), 50)
    assert len(window.history) == 5  # the newest message, then two whole turns
    assert len(read) == 7  # and the turn that does not fit, read to its end


def test_unmeasured_cost_is_what_the_prompt_cost_beyond_the_measured_parts():
    window = build_window(Pinned(SYSTEM), [Stored(3, "user", "z" * 80), A1, U1], 1000)
    chars, tokens = window.unmeasured_cost(prompt_tokens=120)
    assert chars == 36 + 80
    assert tokens == 120 - 20 - 2 * 4  # less the measured reply and question, less two messages' overhead


@pytest.mark.parametrize(
    ("trained", "setting", "offered"),
    [
        (4096, 131072, [2048, 4096]),
        (8192, 4096, [2048, 4096, 8192]),
        (40960, 3000, [2048, 3000, 4096, 8192, 16384, 32768, 40960]),
        (None, 8192, [2048, 4096, 8192, 16384, 32768, 65536, 131072]),
    ],
)
def test_only_lengths_the_model_supports_are_offered(trained, setting, offered):
    assert context_length_choices(trained, setting) == offered
