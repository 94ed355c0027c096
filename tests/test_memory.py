"""Rolling memory: which evicted messages are summarised, the request for it, and where it is kept."""

import pytest

from chatcore import generation, memory, store
from chatcore.backends import FakeBackend
from chatcore.context import MEMORY_HEADING
from chatcore.prompt import ContextOverflowError, build_prompt
from tests.history import Stored, fill_chat
from tests.replies import LEASE

MODEL = "fake:latest"


SHORT = [Stored(index, "user" if index % 2 else "assistant", "x" * 40) for index in range(1, 6)]  # 14 tokens each


@pytest.mark.parametrize(
    ("room", "taken"),
    [(100, 5), (70, 5), (69, 4), (28, 2), (14, 1), (1, 1), (0, 1)],
)
def test_excerpt_takes_the_oldest_messages_that_fit_and_always_one(room, taken):
    assert memory.take_excerpt(SHORT, room, 4) == SHORT[:taken]


def test_summary_request_merges_the_earlier_summary_with_a_transcript():
    excerpt = [Stored(1, "user", "I am Ana"), Stored(2, "assistant", ""), Stored(3, "assistant", "Hello Ana, " * 10)]
    system, request = memory.write_summary_request("Ana likes tea.", excerpt, clip_chars=20)
    assert system == {"role": "system", "content": memory.SUMMARY_INSTRUCTIONS}
    assert request["content"] == (
        "Earlier summary:\nAna likes tea.\n\nNew excerpt:\nUser: I am Ana\n\nAssistant: Hello Ana, Hello Ana"
    )
    assert "(none yet)" in memory.write_summary_request("", excerpt, 20)[1]["content"]


@pytest.fixture
def long_chat(engine):
    """A chat of 20 messages of about 42 tokens, with room for 8 of them in its context."""
    chat = store.create_chat(engine, model=MODEL, options={"num_ctx": 512})
    fill_chat(engine, chat.id, 20)
    return chat


def window_of(engine, chat_id: int):
    return build_prompt(engine, FakeBackend(), store.get_chat(engine, chat_id), MODEL).window


def test_evicted_messages_are_summarised_oldest_first_and_pinned(engine, long_chat):
    backend = FakeBackend(replies=["Ana asked about trams.", "Ana asked about trams and hills."])
    assert memory.update_memory(engine, backend, long_chat.id, MODEL)
    first = store.get_chat(engine, long_chat.id)
    summarised = store.iter_messages_between(engine, long_chat.id, after=None, before=first.memory_until + 1)
    assert backend.calls[0]["messages"][1]["content"].count("Tell me more") == len(list(summarised)) * 2
    assert memory.update_memory(engine, backend, long_chat.id, MODEL)
    second = store.get_chat(engine, long_chat.id)
    assert "Earlier summary:\nAna asked about trams." in backend.calls[1]["messages"][1]["content"]
    assert second.memory == "Ana asked about trams and hills." and second.memory_until > first.memory_until
    window = window_of(engine, long_chat.id)
    assert window.messages[0] == {"role": "system", "content": MEMORY_HEADING + second.memory}
    assert memory.is_up_to_date(engine, second, window)
    assert not memory.update_memory(engine, backend, long_chat.id, MODEL)
    assert len(backend.calls) == 2


def test_summary_requests_use_the_chats_context_length(engine, long_chat):
    backend = FakeBackend(replies=["summary"])
    memory.update_memory(engine, backend, long_chat.id, MODEL)
    assert backend.calls[0]["options"] == {"num_ctx": 512, "num_predict": 128, "temperature": 0.2}  # a reply's room


def test_nothing_is_summarised_while_everything_fits(engine):
    chat = store.create_chat(engine, model=MODEL)
    fill_chat(engine, chat.id, 6)
    backend = FakeBackend()
    assert not memory.update_memory(engine, backend, chat.id, MODEL)
    assert backend.calls == []


def test_memory_switched_off_is_neither_updated_nor_sent(engine, long_chat):
    store.update_chat(engine, long_chat.id, memory="kept", memory_until=1, memory_enabled=False)
    backend = FakeBackend()
    assert not memory.update_memory(engine, backend, long_chat.id, MODEL)
    assert backend.calls == []
    assert "kept" not in str(window_of(engine, long_chat.id).messages)


def test_a_failed_summary_leaves_the_memory_as_it_was(engine, long_chat):
    store.update_chat(engine, long_chat.id, memory="before", memory_until=None)
    assert not memory.update_memory(engine, FakeBackend(replies=["partial words"], fail_after=1), long_chat.id, MODEL)
    chat = store.get_chat(engine, long_chat.id)
    assert (chat.memory, chat.memory_until) == ("before", None)
    assert not memory.is_up_to_date(engine, chat, window_of(engine, long_chat.id))


def refuse(engine, chat_id: int, text: str) -> None:
    """Send `text` as the chat page does, to be refused as too long for the context."""
    turn = generation.start_turn(engine, chat_id, text, MODEL, LEASE)
    with pytest.raises(ContextOverflowError):
        generation.plan_reply(engine, FakeBackend(), chat_id, turn, MODEL)


def test_a_refused_turn_does_not_push_the_turns_before_it_out(engine):
    chat = store.create_chat(engine, model=MODEL, options={"num_ctx": 512})  # room for 8 messages
    fill_chat(engine, chat.id, 6)
    refuse(engine, chat.id, "x" * 4_000)
    fill_chat(engine, chat.id, 2)
    window = window_of(engine, chat.id)
    assert len(window.history) == 8 and window.complete
    backend = FakeBackend()
    assert not memory.update_memory(engine, backend, chat.id, MODEL)
    assert backend.calls == [] and memory.is_up_to_date(engine, store.get_chat(engine, chat.id), window)


def test_a_refused_turn_is_not_summarised(engine, long_chat):
    refuse(engine, long_chat.id, "x" * 4_000)
    fill_chat(engine, long_chat.id, 20)
    backend = FakeBackend(replies=["summary"] * 10)
    while memory.update_memory(engine, backend, long_chat.id, MODEL):
        pass
    assert len(backend.calls) > 1 and not any("xxxxx" in call["messages"][1]["content"] for call in backend.calls)
    chat = store.get_chat(engine, long_chat.id)
    assert memory.is_up_to_date(engine, chat, window_of(engine, long_chat.id))
