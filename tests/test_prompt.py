"""A chat's next request, against the stand-in Ollama: context length, exact token counts, learned ratios, scale."""

import pytest
from sqlalchemy import event

from chatcore import store
from chatcore.backends import FakeBackend, OllamaBackend
from chatcore.models import Message
from chatcore.prompt import ContextOverflowError, build_prompt
from tests.history import fill_chat
from tests.ollama_standin import StandinOllama
from tests.replies import reply_to

MODEL = "llama3:8b"


@pytest.mark.parametrize(
    ("chat_options", "num_ctx"),
    [({}, 4096), ({"num_ctx": 16384}, 8192), ({"num_ctx": 2048}, 2048)],
    ids=["default-setting", "capped-by-the-trained-length", "capped-by-the-setting"],
)
def test_context_length_is_the_models_own_capped_by_the_setting(engine, replies, standin, chat_options, num_ctx):
    chat = store.create_chat(engine, model=MODEL, options=chat_options)
    reply_to(replies, OllamaBackend(standin.url), chat.id, "hello", MODEL)
    assert standin.chat_requests[-1]["options"]["num_ctx"] == num_ctx  # the stand-in's llama.context_length is 8192


def test_the_trained_length_is_asked_once_per_model(standin, monkeypatch):
    backend = OllamaBackend(standin.url)
    asked = []
    show = backend.client.show
    monkeypatch.setattr(backend.client, "show", lambda model: asked.append(model) or show(model))
    assert [backend.context_length(MODEL) for _ in range(3)] == [8192] * 3
    assert [backend.context_length("nope:latest") for _ in range(2)] == [None] * 2
    assert asked == [MODEL, "nope:latest", "nope:latest"]  # a model missing now may be pulled later


def test_every_message_has_a_measured_count_after_its_turn(engine, replies, standin):
    backend = OllamaBackend(standin.url)
    chat = store.create_chat(engine, model=MODEL)
    for text in ("hello there", "what is the capital of Portugal?", "and its biggest river?"):
        reply_to(replies, backend, chat.id, text, MODEL)
    user1, reply1, user2, reply2, user3, reply3 = store.recent_messages(engine, chat.id, limit=10)
    replies = (reply1, reply2, reply3)
    assert [reply.tokens for reply in replies] == [reply.reply_tokens for reply in replies] == [3, 7, 5]
    assert user1.tokens == reply1.prompt_tokens
    assert user2.tokens == reply2.prompt_tokens - reply1.prompt_tokens - reply1.reply_tokens
    assert user3.tokens == reply3.prompt_tokens - reply2.prompt_tokens - reply2.reply_tokens
    next_window = build_prompt(engine, backend, store.get_chat(engine, chat.id), MODEL).window
    assert next_window.tokens == reply3.prompt_tokens + reply3.reply_tokens  # exact, no estimate left


def test_the_ratio_is_learned_per_model_from_measured_messages(engine, replies):
    question = "ab " * 100  # 300 characters that this model counts as 150 tokens
    with StandinOllama(chars_per_token=2, reply=lambda messages: "ok") as server:
        chat = store.create_chat(engine, model=MODEL)
        reply_to(replies, OllamaBackend(server.url), chat.id, question, MODEL)
        assert server.chat_requests[-1]["messages"] == [{"role": "user", "content": question}]
    user_tokens = 300 // 2 + 4 + 1
    assert store.get_ratio(engine, MODEL).value == pytest.approx((400 + 300) / (100 + user_tokens))
    assert store.get_ratio(engine, "qwen2.5:0.5b").value == 4


def test_a_prompt_over_the_budget_corrects_the_ratio_and_the_next_is_refused(engine, replies):
    dense = "字" * 500  # estimated at 129 tokens, but this model counts a token per character
    with StandinOllama(chars_per_token=1, reply=lambda messages: "好") as server:
        backend = OllamaBackend(server.url)
        chat = store.create_chat(engine, model=MODEL, options={"num_ctx": 256})  # a budget of 192
        reply_to(replies, backend, chat.id, dense, MODEL)
        assert server.chat_requests[-1]["options"]["num_ctx"] == 256
        assert store.get_ratio(engine, MODEL).value < 1.05
        with pytest.raises(ContextOverflowError, match="about 505 tokens"):
            replies.send(backend, chat.id, MODEL, dense)
        assert len(server.chat_requests) == 1


def count_loaded_messages(engine, chat_id: int) -> tuple[int, int]:
    """Message rows loaded from the database to build a chat's window, and how many it holds."""
    loaded = []

    def on_load(message, _context):
        loaded.append(message.id)

    event.listen(Message, "load", on_load)
    try:
        window = build_prompt(engine, FakeBackend(), store.get_chat(engine, chat_id), MODEL).window
    finally:
        event.remove(Message, "load", on_load)
    return len(loaded), len(window.history)


def test_building_the_window_reads_only_the_rows_it_needs(engine):
    rows = {}
    for count in (50, 1_000, 10_000):
        chat = store.create_chat(engine, model=MODEL)
        fill_chat(engine, chat.id, count)
        rows[count] = count_loaded_messages(engine, chat.id)
    (small, all_of_it), (medium, _), (large, in_window) = rows[50], rows[1_000], rows[10_000]
    assert small == all_of_it == 50
    assert large == medium  # the length of the chat does not matter
    assert in_window < large <= in_window + 50  # the window, and the rest of the last batch of 50 read
