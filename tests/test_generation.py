"""A chat turn: the user's message first, the reply saved however the stream ends."""

import pytest

from chatcore import generation, store
from chatcore.backends import FakeBackend, OllamaBackend, StopSignal
from chatcore.models import DEFAULT_TITLE, Document, Status, utc_now
from chatcore.prompt import ContextOverflowError
from tests.conftest import wait_until
from tests.replies import LEASE, reply_to


@pytest.fixture
def chat(engine):
    return store.create_chat(engine, model="fake:latest", options={"num_ctx": 2048})


def messages(engine, chat_id):
    return store.recent_messages(engine, chat_id, limit=100)


def answer(engine, backend, chat_id, turn, stop=None):
    """Plan a saved turn's request and return the stream of its reply."""
    prompt = generation.plan_reply(engine, backend, chat_id, turn, "fake:latest")
    return generation.stream_reply(engine, backend, turn, prompt, stop)


def test_complete_turn_saves_both_messages_with_metrics(engine, replies, chat):
    backend = FakeBackend(replies=["Hello there friend"])
    reply = reply_to(replies, backend, chat.id, "hi")
    assert reply == "Hello there friend"
    user, assistant = messages(engine, chat.id)
    assert (user.role, user.content, user.status) == ("user", "hi", Status.COMPLETE)
    assert (assistant.content, assistant.status, assistant.model) == (reply, Status.COMPLETE, "fake:latest")
    assert (assistant.prompt_tokens, assistant.reply_tokens) == (5, 3)
    assert (user.tokens, assistant.tokens) == (5, 3)


def test_a_reply_ended_at_the_length_limit_is_saved_as_cut_with_its_counts(engine, standin, replies, chat):
    standin.reply = lambda messages: "one two three four five"
    store.update_chat(engine, chat.id, options={"num_ctx": 2048, "num_predict": 3})
    assert reply_to(replies, OllamaBackend(standin.url), chat.id, "count", "llama3:8b") == "one two three "
    user, assistant = messages(engine, chat.id)
    assert (assistant.status, assistant.reply_tokens) == (Status.CUT, 3)
    assert user.tokens and assistant.tokens == 3  # measured, as for a complete reply


def test_request_carries_num_ctx_and_the_history(replies, chat):
    backend = FakeBackend(replies=["one", "two"])
    reply_to(replies, backend, chat.id, "first")
    reply_to(replies, backend, chat.id, "second")
    last_call = backend.calls[-1]
    assert last_call["options"]["num_ctx"] == 2048
    assert last_call["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},
    ]


def test_a_message_too_long_for_the_context_is_refused_before_sending_and_kept(engine, replies, chat):
    backend = FakeBackend(replies=["never"])
    with pytest.raises(ContextOverflowError, match="about 2,504 tokens") as refusal:
        replies.send(backend, chat.id, "fake:latest", "x" * 10_000)
    assert backend.calls == [] and replies.live(chat.id) is None
    user, reply = messages(engine, chat.id)
    assert user.content == "x" * 10_000
    assert (reply.status, reply.error) == (Status.ERROR, str(refusal.value))
    assert "at most 1,536 (the context length 2,048 less 25% kept for the reply)" in reply.error


def test_a_refused_message_is_planned_again_when_resent_and_left_out_of_later_requests(engine, replies, chat):
    backend = FakeBackend(replies=["one", "two"])
    reply_to(replies, backend, chat.id, "first")
    with pytest.raises(ContextOverflowError):
        replies.send(backend, chat.id, "fake:latest", "x" * 10_000)
    with pytest.raises(ContextOverflowError, match="about 2,254 tokens"):  # the turn planned, so still refused
        replies.resend_edited(backend, chat.id, "fake:latest", "y" * 9_000)
    with pytest.raises(ContextOverflowError):
        replies.regenerate(backend, chat.id, "fake:latest")
    assert len(backend.calls) == 1
    reply_to(replies, backend, chat.id, "second")
    assert backend.calls[-1]["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},
    ]


def test_old_turns_leave_the_request_whole_when_the_budget_is_full(engine, replies):
    chat = store.create_chat(engine, options={"num_ctx": 200})  # 150 tokens: not quite two turns
    store.update_chat(engine, chat.id, memory_enabled=False)  # no summary of the turns left out
    backend = FakeBackend(replies=["a " * 30, "b " * 30, "c " * 30])
    for text in ("1" * 144, "2" * 144, "3" * 144):
        reply_to(replies, backend, chat.id, text)
    assert [m["content"][0] for m in backend.calls[-1]["messages"]] == ["2", "b", "3"]


def test_system_prompt_leads_the_request(engine, replies, chat):
    store.update_chat(engine, chat.id, system_prompt="Be brief.")
    backend = FakeBackend(replies=["ok"])
    reply_to(replies, backend, chat.id, "hi")
    assert backend.calls[0]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_num_ctx_is_sent_even_when_the_chat_has_no_options(engine, replies):
    chat = store.create_chat(engine)
    backend = FakeBackend(replies=["ok"])
    reply_to(replies, backend, chat.id, "hi")
    assert backend.calls[0]["options"]["num_ctx"] > 0


def test_a_reply_records_when_it_was_finished_not_only_when_it_was_asked(engine, chat):
    stream = answer(
        engine, FakeBackend(replies=["one two"]), chat.id, generation.start_turn(engine, chat.id, "go", "m", LEASE)
    )
    assert next(stream) == "one"
    midway = utc_now()
    assert list(stream) == [" two"]
    user, reply = messages(engine, chat.id)
    assert user.finished_at is None
    assert reply.created_at <= midway <= reply.finished_at


def test_a_refused_reply_is_finished_when_refused(engine, replies, chat):
    with pytest.raises(ContextOverflowError):
        replies.send(FakeBackend(replies=["never"]), chat.id, "fake:latest", "x" * 10_000)
    assert messages(engine, chat.id)[-1].finished_at is not None


def test_a_stream_closed_midway_keeps_the_partial_text(engine, chat):
    backend = FakeBackend(replies=["one two three four"])
    stream = answer(engine, backend, chat.id, generation.start_turn(engine, chat.id, "count", "fake:latest", LEASE))
    assert [next(stream), next(stream)] == ["one", " two"]
    stream.close()  # its reader went away without a stop: the reply counts as interrupted
    user, assistant = messages(engine, chat.id)
    assert user.content == "count"
    assert (assistant.content, assistant.status) == ("one two", Status.PARTIAL)


def test_failure_mid_stream_saves_text_so_far_and_the_error(engine, replies, chat):
    backend = FakeBackend(replies=["one two three"], fail_after=2)
    reply = replies.send(backend, chat.id, "fake:latest", "go").reply
    assert reply.text() == "one two" and "failed mid-reply" in reply.error
    user, assistant = messages(engine, chat.id)
    assert user.content == "go"
    assert (assistant.content, assistant.status, assistant.error) == ("one two", Status.ERROR, reply.error)


def test_failure_before_any_text_still_keeps_the_user_message(engine, replies, chat):
    backend = FakeBackend(replies=["never"], fail_after=0)
    reply = replies.send(backend, chat.id, "fake:latest", "important words").reply
    assert reply.text() == "" and "failed" in reply.error
    user, assistant = messages(engine, chat.id)
    assert user.content == "important words"
    assert (assistant.content, assistant.status) == ("", Status.ERROR)


def test_user_message_and_an_empty_reply_are_saved_as_soon_as_it_is_sent(engine, standin, replies, chat):
    standin.stall_after = 0  # the model never writes a token
    replies.send(OllamaBackend(standin.url), chat.id, "llama3:8b", "typed, never streamed")
    user, reply = messages(engine, chat.id)
    assert user.content == "typed, never streamed"
    assert (reply.role, reply.content, reply.status) == ("assistant", "", Status.STREAMING)


def test_stop_signal_ends_the_reply_as_stopped_with_its_text(engine, chat):
    stop = StopSignal()
    turn = generation.start_turn(engine, chat.id, "go", "fake:latest", LEASE)
    stream = answer(engine, FakeBackend(replies=["a b c d"]), chat.id, turn, stop)
    assert next(stream) == "a"
    stop.set()
    assert list(stream) == []
    assert (messages(engine, chat.id)[-1].content, messages(engine, chat.id)[-1].status) == ("a", Status.STOPPED)


def test_a_stop_before_the_first_piece_marks_the_reply_stopped(engine, chat):
    stop = StopSignal()
    turn = generation.start_turn(engine, chat.id, "go", "fake:latest", LEASE)
    stream = answer(engine, FakeBackend(replies=["a b c d"]), chat.id, turn, stop)
    stop.set()
    assert list(stream) == []
    assert (messages(engine, chat.id)[-1].content, messages(engine, chat.id)[-1].status) == ("", Status.STOPPED)


def test_regenerate_replaces_the_last_reply(engine, replies, chat):
    backend = FakeBackend(replies=["first answer", "second answer"])
    reply_to(replies, backend, chat.id, "question")
    assert replies.regenerate(backend, chat.id, "fake:latest").text() == "second answer"
    assert [(m.role, m.content) for m in messages(engine, chat.id)] == [
        ("user", "question"),
        ("assistant", "second answer"),
    ]
    assert backend.calls[-1]["messages"] == [{"role": "user", "content": "question"}]


def test_edit_and_resend_changes_the_last_question(engine, replies, chat):
    backend = FakeBackend(replies=["one", "two", "three"])
    reply_to(replies, backend, chat.id, "first")
    reply_to(replies, backend, chat.id, "secnd")
    assert replies.resend_edited(backend, chat.id, "fake:latest", "second").text() == "three"
    assert [m.content for m in messages(engine, chat.id)] == ["first", "one", "second", "three"]


def test_restart_needs_a_user_message(replies, chat):
    with pytest.raises(LookupError):
        replies.regenerate(FakeBackend(), chat.id, "fake:latest")
    assert not replies.working(chat.id)


def test_only_replies_whose_owner_died_are_marked_interrupted(engine, chat):
    other = store.create_chat(engine)
    generation.start_turn(engine, chat.id, "lost in a crash", "fake:latest", store.Lease("died", -1))  # ran out
    generation.start_turn(engine, other.id, "still being written", "fake:latest", LEASE)
    assert store.mark_interrupted_replies(engine) == 1
    assert messages(engine, chat.id)[-1].status == Status.PARTIAL
    assert messages(engine, other.id)[-1].status == Status.STREAMING


@pytest.mark.parametrize(
    ("suggestion", "title"),
    [
        ("Trip to Lisbon", "Trip to Lisbon"),
        ('"Trip to Lisbon."', "Trip to Lisbon"),
        ("Title: **Trip to Lisbon**\nSure, here it is", "Trip to Lisbon"),
        ("\n\n## Planning a trip", "Planning a trip"),
        ("   ", ""),
        ("x" * 100, "x" * 60 + "…"),
    ],
)
def test_clean_title(suggestion, title):
    assert generation.clean_title(suggestion) == title


def test_title_improves_after_the_first_exchange(engine, replies, chat):
    backend = FakeBackend(replies=["Lisbon has trams.", "Lisbon trip"])
    reply_to(replies, backend, chat.id, "what should I see in Lisbon?")
    generation.improve_title(engine, backend, chat.id, "fake:latest")
    assert store.get_chat(engine, chat.id).title == "Lisbon trip"
    assert "what should I see in Lisbon?" in backend.calls[-1]["messages"][0]["content"]


def test_a_user_rename_wins_over_the_generated_title(engine, replies, chat):
    backend = FakeBackend(replies=["Answer.", "Generated"])
    reply_to(replies, backend, chat.id, "question")
    store.update_chat(engine, chat.id, title="My own name")
    generation.improve_title(engine, backend, chat.id, "fake:latest")
    assert store.get_chat(engine, chat.id).title == "My own name"


def test_a_chat_titled_late_is_titled_from_its_first_exchange(engine, replies, chat):
    """As when a message was queued behind the first reply, or the first reply was refused or stopped."""
    backend = FakeBackend(replies=["", "Lisbon has trams.", "Ride tram 28.", "Lisbon trip"])
    reply_to(replies, backend, chat.id, "what should I see in Lisbon?")  # an empty first reply
    reply_to(replies, backend, chat.id, "and after that?")
    reply_to(replies, backend, chat.id, "which tram?")
    generation.improve_title(engine, backend, chat.id, "fake:latest")
    assert store.get_chat(engine, chat.id).title == "Lisbon trip"
    request = backend.calls[-1]["messages"][0]["content"]
    assert "User: what should I see in Lisbon?" in request and "Assistant: Lisbon has trams." in request


def add_document(engine, chat_id: int, name: str) -> None:
    """A document in the chat, as if uploaded (no passages: titles need only its name)."""
    document = Document(chat_id=chat_id, name=name, kind="md", sha256=name, size=10, pages=1, chunk_count=0)
    store.save_document(engine, document, [])


def test_a_chat_started_by_a_document_is_named_after_it_then_titled_from_its_first_exchange(engine, replies, chat):
    add_document(engine, chat.id, "lunch-menu.md")
    assert generation.title_after_document(engine, chat.id, "lunch-menu.md")
    assert store.get_chat(engine, chat.id).title == "lunch-menu.md"
    backend = FakeBackend(replies=["Lentil soup.", "Soup of the day"])
    reply_to(replies, backend, chat.id, "What is the soup of the day?")
    assert store.get_chat(engine, chat.id).title == "lunch-menu.md"  # the first message names only a nameless chat
    generation.improve_title(engine, backend, chat.id, "fake:latest")
    assert store.get_chat(engine, chat.id).title == "Soup of the day"


def test_a_document_names_neither_a_named_chat_nor_one_with_messages(engine, replies, chat):
    store.update_chat(engine, chat.id, title="Mine")
    assert not generation.title_after_document(engine, chat.id, "lunch-menu.md")
    other = store.create_chat(engine)
    reply_to(replies, FakeBackend(replies=["a"]), other.id, "hello")
    store.update_chat(engine, other.id, title=DEFAULT_TITLE)
    assert not generation.title_after_document(engine, other.id, "lunch-menu.md")
    assert [store.get_chat(engine, c.id).title for c in (chat, other)] == ["Mine", DEFAULT_TITLE]


def test_a_chat_named_after_its_document_then_renamed_keeps_the_users_name(engine, replies, chat):
    add_document(engine, chat.id, "lunch-menu.md")
    generation.title_after_document(engine, chat.id, "lunch-menu.md")
    backend = FakeBackend(replies=["Lentil soup.", "Soup of the day"])
    reply_to(replies, backend, chat.id, "What is the soup of the day?")
    store.update_chat(engine, chat.id, title="Lunch")
    generation.improve_title(engine, backend, chat.id, "fake:latest")
    assert store.get_chat(engine, chat.id).title == "Lunch" and len(backend.calls) == 1


def test_a_titled_chat_is_not_asked_for_a_title_again(engine, replies, chat):
    backend = FakeBackend(replies=["a", "First title", "b", "Second title"])
    reply_to(replies, backend, chat.id, "one")
    generation.improve_title(engine, backend, chat.id, "fake:latest")
    reply_to(replies, backend, chat.id, "two")
    generation.improve_title(engine, backend, chat.id, "fake:latest")
    assert len(backend.calls) == 3 and store.get_chat(engine, chat.id).title == "First title"


def test_reply_is_flushed_while_streaming(engine, standin, replies, chat, monkeypatch):
    monkeypatch.setattr(generation, "FLUSH_INTERVAL_S", 0)
    standin.reply, standin.stall_after = lambda messages: "a b c", 2  # "a b " then nothing
    replies.send(OllamaBackend(standin.url), chat.id, "llama3:8b", "hi")
    wait_until(lambda: messages(engine, chat.id)[-1].content == "a b ")
    assert messages(engine, chat.id)[-1].status == Status.STREAMING


def test_failed_replies_are_left_out_of_the_next_request(replies, chat):
    backend = FakeBackend(replies=["broken", "fine"], fail_after=0)
    reply_to(replies, backend, chat.id, "first")
    backend.fail_after = None
    reply_to(replies, backend, chat.id, "second")
    assert [m["content"] for m in backend.calls[-1]["messages"]] == ["first", "second"]


def test_first_message_titles_the_chat_and_later_ones_do_not(engine, replies, chat):
    backend = FakeBackend(replies=["a", "b"])
    reply_to(replies, backend, chat.id, "Plan a trip to Lisbon")
    reply_to(replies, backend, chat.id, "Something else")
    assert store.get_chat(engine, chat.id).title == "Plan a trip to Lisbon"


def test_of_two_first_messages_sent_at_once_the_one_saved_first_titles_the_chat(engine, chat):
    """Each was the chat's first when its sender looked: only the save decides which one is."""
    assert generation.start_turn(engine, chat.id, "Plan a trip to Lisbon", "m", LEASE) is not None
    assert generation.start_turn(engine, chat.id, "Book a table", "m", store.Lease("other", 60)) is None  # queued
    assert store.get_chat(engine, chat.id).title == "Plan a trip to Lisbon"


def test_a_renamed_chat_keeps_its_name(engine, replies, chat):
    store.update_chat(engine, chat.id, title="Mine")
    reply_to(replies, FakeBackend(replies=["a"]), chat.id, "hello")
    assert store.get_chat(engine, chat.id).title == "Mine"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Hello", "Hello"),
        ("  spaced\n\nout   text ", "spaced out text"),
        ("", DEFAULT_TITLE),
        ("word " * 30, "word word word word word word word word word word word word…"),
        ("x" * 80, "x" * 60 + "…"),
        (
            "Ends with a comma, right at the limit of sixty characters, then more",
            "Ends with a comma, right at the limit of sixty characters…",
        ),
    ],
)
def test_title_from_text(text, title):
    assert generation.title_from_text(text) == title
