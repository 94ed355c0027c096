"""Backends: the Ollama path over real HTTP to the stand-in server, the fallback choice, the transcript."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from chatcore import backends, store
from chatcore.backends import (
    EMBEDDED_MODEL,
    BackendError,
    BackendWatch,
    EmbeddedBackend,
    FakeBackend,
    Metrics,
    OllamaBackend,
    StopSignal,
    choose_backend,
    same_model,
    transcript_prompt,
)
from chatcore.config import load_settings
from chatcore.models import Status
from tests.conftest import wait_until
from tests.ollama_standin import StandinOllama, prompt_token_estimate
from tests.replies import reply_to


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def split_stream(items):
    text = "".join(item for item in items if isinstance(item, str))
    metrics = [item for item in items if isinstance(item, Metrics)]
    return text, metrics


def test_ollama_streams_text_then_metrics(standin):
    items = list(OllamaBackend(standin.url).stream_chat("llama3:8b", [{"role": "user", "content": "hi"}], {}))
    text, [metrics] = split_stream(items)
    assert text == "Echo: hi"
    assert metrics.done_reason == "stop"
    assert metrics.prompt_tokens > 0 and metrics.reply_tokens == 2
    assert metrics.reply_ms > 0 and metrics.total_ms > 0
    assert isinstance(items[-1], Metrics)


def test_ollama_request_sends_num_ctx(standin):
    list(OllamaBackend(standin.url).stream_chat("llama3:8b", [{"role": "user", "content": "x"}], {"num_ctx": 8192}))
    assert standin.chat_requests[-1]["options"]["num_ctx"] == 8192


def test_ollama_lists_pulled_models(standin):
    assert OllamaBackend(standin.url).list_models() == ["llama3:8b", "qwen2.5:0.5b"]


def test_ollama_host_comes_from_the_environment(standin, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", standin.url)
    [host] = load_settings().ollama_hosts
    assert OllamaBackend(host).list_models() == ["llama3:8b", "qwen2.5:0.5b"]


# What a library says of a failure, which must never reach the user: httpx's, httpcore's, the ollama client's.
LIBRARY_WORDING = ("peer closed", "chunked", "Server disconnected", "timed out", "Failed to connect", "status code")
BROKE_OFF = "Check that Ollama is running (start it with `ollama serve`)."
OUT_OF_MEMORY = "“an error was encountered while running the model: out of memory”"


def assert_in_the_users_words(message: str) -> None:
    assert not [words for words in LIBRARY_WORDING if words in message]


@pytest.mark.parametrize(
    ("model", "reply", "message"),
    [
        ("nope:latest", "a b c d e f", "The model 'nope:latest' is not pulled on this Ollama. Run `ollama pull "
         "nope:latest`."),
        ("broken:latest", "a b c d e f", f"Ollama reported an error mid-reply: {OUT_OF_MEMORY}."),
        ("broken:latest", "", f"Ollama reported an error before the reply began: {OUT_OF_MEMORY}."),
        ("all-minilm:latest", "a b c d e f", 'Ollama reported an error before the reply began: “"all-minilm:latest" '
         "does not support chat”."),
        ("flaky:latest", "a b c d e f", f"The connection to Ollama at {{host}} broke off mid-reply. {BROKE_OFF}"),
        ("flaky:latest", "", f"The connection to Ollama at {{host}} broke off before the reply began. {BROKE_OFF}"),
    ],
    ids=["not-pulled", "error-line", "error-line-first", "cannot-chat", "dropped-mid-reply", "dropped-at-once"],
)  # fmt: skip
def test_ollama_failures_become_clear_messages(model, reply, message):
    models = {"broken:latest": "error_line", "flaky:latest": "drop", "all-minilm:latest": "embed"}
    with StandinOllama(models=models, reply=lambda messages: reply) as server, pytest.raises(BackendError) as failed:
        list(OllamaBackend(server.url).stream_chat(model, [{"role": "user", "content": "hi"}], {}))
    assert str(failed.value) == message.format(host=server.url)
    assert_in_the_users_words(str(failed.value))


@pytest.fixture
def unanswered_host():
    """An address that takes no connection: its listening socket's queue is full, so connecting times out."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(0)
        waiting = [socket.socket() for _ in range(3)]
        for client in waiting:
            client.setblocking(False)
            client.connect_ex(listening.getsockname())
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
        for client in waiting:
            client.close()


ASK = {
    "chat": lambda backend: list(backend.stream_chat("llama3:8b", [{"role": "user", "content": "hi"}], {})),
    "models": lambda backend: backend.list_models(),
    "vectors": lambda backend: backend.embedder_for("nomic-embed-text").embed(["text"]),
}


@pytest.mark.parametrize("asked", list(ASK))
@pytest.mark.parametrize("host", ["refused", "unanswered"])
def test_an_ollama_that_does_not_answer_is_named_with_what_to_do(monkeypatch, request, asked, host):
    monkeypatch.setattr(backends, "PROBE_TIMEOUT_S", 0.2)
    url = f"http://127.0.0.1:{free_port()}" if host == "refused" else request.getfixturevalue("unanswered_host")
    with pytest.raises(BackendError) as failed:
        ASK[asked](OllamaBackend(url))
    assert str(failed.value) == f"Cannot reach Ollama at {url}. Is it running? Start it with `ollama serve`."
    assert_in_the_users_words(str(failed.value))


def test_closing_the_stream_closes_the_connection(standin):
    standin.token_delay = 0.05
    standin.reply = lambda messages: "word " * 100
    stream = OllamaBackend(standin.url).stream_chat("llama3:8b", [{"role": "user", "content": "go"}], {})
    next(stream)
    stream.close()
    wait_until(lambda: standin.disconnects == 1)
    assert len(standin.chat_requests) == 1


def stream_in_background(backend, stop: StopSignal) -> tuple[list, threading.Thread]:
    """Stream a reply in another thread, as a reply worker does: what it yields (or raises), and the thread."""
    items: list = []

    def run():
        try:
            for item in backend.stream_chat("llama3:8b", [{"role": "user", "content": "go"}], {}, stop):
                items.append(item)
        except BackendError as error:
            items.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return items, thread


def test_a_stop_before_the_first_token_closes_the_request_at_once(standin):
    standin.prompt_delay = 30  # a big model still loading: not even the response headers are sent yet
    backend = OllamaBackend(standin.url)
    backend.list_models()  # a connection kept alive from here would open no new one for the chat
    stop = StopSignal()
    items, thread = stream_in_background(backend, stop)
    wait_until(lambda: len(standin.chat_requests) == 1)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive() and items == []
    wait_until(lambda: standin.disconnects == 1)


def test_a_stop_between_slow_tokens_closes_the_request_and_keeps_the_text(standin):
    standin.reply = lambda messages: "word " * 50
    standin.stall_after = 3  # the fourth token is an hour off: only closing the connection ends the read
    stop = StopSignal()
    items, thread = stream_in_background(OllamaBackend(standin.url), stop)
    wait_until(lambda: len(items) == 3)
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert items == ["word "] * 3  # the text so far; no error, no metrics of a complete reply
    wait_until(lambda: standin.disconnects == 1)


def test_replies_with_a_stop_signal_that_is_never_set_complete_one_after_another(standin):
    backend = OllamaBackend(standin.url)
    for question in ("one", "two"):
        items = list(backend.stream_chat("llama3:8b", [{"role": "user", "content": question}], {}, StopSignal()))
        text, [metrics] = split_stream(items)
        assert (text, metrics.done_reason, metrics.reply_tokens) == (f"Echo: {question}", "stop", 2)
    assert standin.disconnects == 0


def test_the_fake_backend_stops_between_words():
    stop = StopSignal()
    stream = FakeBackend(replies=["a b c d"]).stream_chat("fake:latest", [{"role": "user", "content": "go"}], {}, stop)
    assert next(stream) == "a"
    stop.set()
    assert list(stream) == []


def test_a_stop_signal_runs_each_callback_once_and_never_raises():
    stop, calls = StopSignal(), []
    stop.on_set(lambda: calls.append("first"))
    stop.on_set(lambda: 1 / 0)
    stop.on_set(lambda: calls.append("second"))
    assert not stop.is_set() and calls == []
    stop.set()
    stop.set()
    assert stop.is_set() and calls == ["first", "second"]
    stop.on_set(lambda: calls.append("late"))  # already set: runs at once
    assert calls == ["first", "second", "late"]


def test_turn_over_ollama_saves_error_line_partial_text(engine, replies):
    with StandinOllama(models={"broken:latest": "error_line"}) as server:
        server.reply = lambda messages: "one two three four five six seven"
        chat = store.create_chat(engine, model="broken:latest")
        reply = replies.send(OllamaBackend(server.url), chat.id, "broken:latest", "hello").reply
        assert reply.text().startswith("one") and "out of memory" in reply.error
    user, assistant = store.recent_messages(engine, chat.id, limit=5)
    assert user.content == "hello"
    assert assistant.status == Status.ERROR and assistant.content.startswith("one")
    assert "out of memory" in assistant.error


def test_turn_over_ollama_stores_reported_metrics(engine, replies, standin):
    chat = store.create_chat(engine, model="llama3:8b")
    reply_to(replies, OllamaBackend(standin.url), chat.id, "hello there", "llama3:8b")
    assistant = store.recent_messages(engine, chat.id, limit=5)[-1]
    assert (assistant.content, assistant.status) == ("Echo: hello there", Status.COMPLETE)
    assert assistant.reply_tokens == 3
    assert assistant.prompt_tokens == prompt_token_estimate(standin.chat_requests[0]["messages"])


@pytest.mark.parametrize(
    ("backend_setting", "ollama_models", "ollama_up", "chosen", "notice"),
    [
        ("auto", {"llama3:8b": "ok"}, True, "ollama", ""),
        ("auto", {}, True, "embedded", "has no models pulled yet"),
        ("auto", {}, False, "embedded", "is not running"),
        ("ollama", {}, False, "ollama", "Cannot reach Ollama"),
        ("embedded", {"llama3:8b": "ok"}, True, "embedded", ""),
    ],
)
def test_backend_choice(monkeypatch, backend_setting, ollama_models, ollama_up, chosen, notice):
    monkeypatch.setenv("CHATCORE_BACKEND", backend_setting)
    server = StandinOllama(models=ollama_models)
    url = server.start().url if ollama_up else f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OLLAMA_HOST", url)
    try:
        choice = choose_backend(load_settings())
    finally:
        server.stop() if ollama_up else None
    assert choice.backend.name == chosen
    assert notice in choice.notice
    if chosen == "embedded":
        assert choice.models == [EMBEDDED_MODEL]
    if backend_setting == "auto" and chosen == "embedded":
        assert "ollama pull llama3:8b" in choice.notice


@pytest.fixture(params=[(404, "text/html", b"<h1>Not Found</h1>"), (200, "text/html", b"<p>It works!</p>")])
def not_ollama(request):
    """A web server that is not Ollama: an error page, or a page of its own, for every request."""
    status, kind, body = request.param

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Answer) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()


@pytest.mark.parametrize(
    ("backend_setting", "chosen", "notice"),
    [
        ("auto", "embedded", "is something other than Ollama (check OLLAMA_HOST)"),
        ("ollama", "ollama", "does not answer as Ollama does. Is OLLAMA_HOST the address of Ollama?"),
    ],
)
def test_a_server_that_is_not_ollama_is_named_as_such(monkeypatch, not_ollama, backend_setting, chosen, notice):
    monkeypatch.setenv("CHATCORE_BACKEND", backend_setting)
    monkeypatch.setenv("OLLAMA_HOST", not_ollama)
    choice = choose_backend(load_settings())
    assert choice.backend.name == chosen and notice in choice.notice


def test_the_backend_watch_outlives_a_failed_check(monkeypatch, standin):
    monkeypatch.setenv("OLLAMA_HOST", standin.url)
    failures = iter([RuntimeError("a bug"), None])

    def choose_once_failing(settings):
        if failure := next(failures, None):
            raise failure
        return choose_backend(settings)

    watch = BackendWatch(load_settings(), recheck_s=0.01)
    try:
        monkeypatch.setattr(backends, "choose_backend", choose_once_failing)
        standin.models = {"mistral:7b": "ok"}
        wait_until(lambda: watch.choice.models == ["mistral:7b"])
    finally:
        watch.stop()


def test_the_backend_is_chosen_again_in_the_background_as_ollama_gets_models(monkeypatch, standin):
    monkeypatch.setenv("OLLAMA_HOST", standin.url)
    monkeypatch.setattr(EmbeddedBackend, "warm_up", lambda backend: None)  # offered, not needed
    pulled, standin.models = standin.models, {}
    watch = BackendWatch(load_settings(), recheck_s=0.01)
    try:
        assert watch.choice.backend.name == "embedded"
        standin.models = pulled
        wait_until(lambda: watch.choice.backend.name == "ollama")
        assert set(watch.choice.models) == set(pulled) and watch.choice.notice == ""
    finally:
        watch.stop()


def test_transcript_is_a_few_shot_user_assistant_dialogue():
    prompt = transcript_prompt(
        [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": " Thanks \n"},
        ]
    )
    assert prompt.startswith("Answer in French.\n\nUser: ")
    assert prompt.endswith("User: Hi\nAssistant: Bonjour\nUser: Thanks\nAssistant:")


@pytest.mark.slow
def test_embedded_model_gives_a_short_real_reply(engine, replies):
    # Greedy: sampled, the tiny model now and then rambles on until the length limit cuts it.
    chat = store.create_chat(engine, model=EMBEDDED_MODEL, options={"temperature": 0})
    reply = reply_to(replies, EmbeddedBackend(), chat.id, "What is the capital of France?", EMBEDDED_MODEL)
    saved = store.recent_messages(engine, chat.id, limit=5)[-1]
    assert reply.strip() and "User:" not in reply
    assert reply == reply.lstrip()
    assert (saved.content, saved.status) == (reply, Status.COMPLETE)
    assert saved.reply_tokens > 0 and saved.prompt_tokens > 0


class ScriptedServer:
    """Stands in for the built-in model's llama.cpp server: fixed pieces of text, then the end."""

    def __init__(self, texts: list[str], finish_reason: str = "stop"):
        self.texts = texts
        self.finish_reason = finish_reason

    def handle_completions(self, request: dict, on_chunk) -> None:
        for text in self.texts:
            on_chunk({"choices": [{"text": text, "finish_reason": None}]})
        usage = {"prompt_tokens": 9, "completion_tokens": len(self.texts)}
        on_chunk({"choices": [{"text": "", "finish_reason": self.finish_reason}], "usage": usage, "timings": {}})


def test_the_built_in_models_reply_starts_with_its_first_word(monkeypatch):
    monkeypatch.setattr(EmbeddedBackend, "_server", ScriptedServer([" ", " There", " are", " two."]))
    pieces = list(EmbeddedBackend().stream_chat(EMBEDDED_MODEL, [{"role": "user", "content": "Hi"}], {}))
    assert pieces[:-1] == ["There", " are", " two."]


class FailingServer(ScriptedServer):
    """Stands in for a built-in model that fails after its fixed pieces of text, in llama.cpp's own words."""

    def handle_completions(self, request: dict, on_chunk) -> None:
        for text in self.texts:
            on_chunk({"choices": [{"text": text, "finish_reason": None}]})
        raise RuntimeError("llama_decode: failed to decode, ret = -3")


INSTALL_OLLAMA = "For dependable replies, [install Ollama](https://ollama.com/download) and pull a model."


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([], f"The built-in model failed before the reply began. {INSTALL_OLLAMA}"),
        (["Paris", " is"], f"The built-in model failed mid-reply. {INSTALL_OLLAMA}"),
    ],
)  # fmt: skip
def test_a_built_in_model_failure_says_what_to_do_not_what_llama_cpp_said(monkeypatch, texts, message):
    monkeypatch.setattr(EmbeddedBackend, "_server", FailingServer(texts))
    pieces = []
    with pytest.raises(BackendError) as failed:
        pieces.extend(EmbeddedBackend().stream_chat(EMBEDDED_MODEL, [{"role": "user", "content": "Hi"}], {}))
    assert (pieces, str(failed.value)) == (texts, message)
    assert "llama_decode" not in str(failed.value)


@pytest.mark.slow
def test_embedded_model_stops_when_the_reply_is_stopped(engine, replies):
    chat = store.create_chat(engine, model=EMBEDDED_MODEL)
    reply = replies.send(EmbeddedBackend(), chat.id, EMBEDDED_MODEL, "Tell me a long story.").reply
    wait_until(lambda: reply.pieces, timeout=60)
    replies.stop(chat.id)
    text = reply.text()
    saved = store.recent_messages(engine, chat.id, limit=5)[-1]
    assert saved.status == Status.STOPPED and saved.content == text and text


@pytest.mark.slow
def test_embedded_model_ends_quietly_when_stopped():
    stop = StopSignal()
    messages = [{"role": "user", "content": "Tell me a long story."}]
    stream = EmbeddedBackend().stream_chat(EMBEDDED_MODEL, messages, {}, stop)
    assert isinstance(next(stream), str)
    stop.set()
    assert list(stream) == []


def test_several_hosts_offer_all_their_models_and_route_each_request(monkeypatch):
    with StandinOllama(models={"llama3:8b": "ok"}) as first, StandinOllama(models={"mistral:7b": "ok"}) as second:
        monkeypatch.setenv("OLLAMA_HOSTS", f"{first.url}, {second.url}")
        choice = choose_backend(load_settings())
        assert choice.models == ["llama3:8b", "mistral:7b"] and choice.notice == ""
        list(choice.backend.stream_chat("mistral:7b", [{"role": "user", "content": "hi"}], {}))
        list(choice.backend.stream_chat("llama3:8b", [{"role": "user", "content": "hi"}], {}))
        assert choice.backend.context_length("mistral:7b") == 8192
    assert [request["model"] for request in first.chat_requests] == ["llama3:8b"]
    assert [request["model"] for request in second.chat_requests] == ["mistral:7b"]


def test_a_host_that_is_down_is_skipped_with_a_notice(monkeypatch):
    down = f"http://127.0.0.1:{free_port()}"
    with StandinOllama(models={"llama3:8b": "ok"}) as up:
        monkeypatch.setenv("OLLAMA_HOSTS", f"{down},{up.url}")
        choice = choose_backend(load_settings())
    assert choice.backend.name == "ollama" and choice.models == ["llama3:8b"]
    assert choice.notice.startswith(f"Skipped Ollama at {down}: not reachable")


def test_all_hosts_down_with_ollama_required_says_what_to_do(monkeypatch):
    hosts = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    monkeypatch.setenv("CHATCORE_BACKEND", "ollama")
    monkeypatch.setenv("OLLAMA_HOSTS", " ".join(hosts))
    choice = choose_backend(load_settings())
    assert choice.notice == (
        f"Cannot reach Ollama at any of its hosts ({', '.join(hosts)}). Is it running? Start it with `ollama serve`."
    )


def test_all_hosts_down_falls_back_to_the_built_in_model(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOSTS", f"http://127.0.0.1:{free_port()} http://127.0.0.1:{free_port()}")
    choice = choose_backend(load_settings())
    assert choice.backend.name == "embedded" and "is not running" in choice.notice


@pytest.mark.parametrize(
    ("listed", "wanted", "same"),
    [
        ("nomic-embed-text:latest", "nomic-embed-text", True),
        ("nomic-embed-text:latest", "Nomic-Embed-Text:latest", True),
        ("nomic-embed-text:v1.5", "nomic-embed-text", False),
        ("nomic-embed-text:v1.5", "nomic-embed-text:v1.5", True),
        ("me/embedder:latest", "me/embedder", True),
        ("llama3:8b", "nomic-embed-text", False),
    ],
)
def test_model_names_match_with_the_default_tag(listed, wanted, same):
    assert same_model(listed, wanted) == same


@pytest.mark.parametrize(
    ("embed_model", "models", "embedder"),
    [
        (None, ["llama3:8b"], "nomic-embed-text:latest"),  # the default embedding model, when pulled
        ("none", ["llama3:8b"], None),  # turned off; an embedding model is never offered for chat
        ("mxbai-embed-large", ["llama3:8b"], None),  # another one, not pulled
    ],
)
def test_a_pulled_embedding_model_is_used_for_vectors_and_not_offered_for_chat(
    monkeypatch, embed_model, models, embedder
):
    with StandinOllama(models={"llama3:8b": "ok", "nomic-embed-text": "embed"}) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        if embed_model is None:
            monkeypatch.delenv("CHATCORE_EMBED_MODEL", raising=False)
        else:
            monkeypatch.setenv("CHATCORE_EMBED_MODEL", embed_model)
        choice = choose_backend(load_settings())
        assert choice.models == models
        assert (choice.backend.embedder and choice.backend.embedder.model) == embedder
        if embedder:
            [vector] = choice.backend.embedder.embed(["a car"])
            assert len(vector) == 64 and server.embed_requests[0]["model"] == embedder


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("missing-embedder", "The embedding model missing-embedder is not pulled on this Ollama. Run `ollama pull "
         "missing-embedder`."),
        ("broken-embedder", f"Ollama reported an error with the embedding model broken-embedder: {OUT_OF_MEMORY}. If "
         "this goes on, restart Ollama (`ollama serve`)."),
        ("flaky-embedder", "Cannot reach Ollama at {host}. Is it running? Start it with `ollama serve`."),
    ],
)  # fmt: skip
def test_embedding_failures_become_clear_messages(model, message):
    models = {"broken-embedder": "error_line", "flaky-embedder": "drop"}
    with StandinOllama(models=models) as server, pytest.raises(BackendError) as failed:
        OllamaBackend(server.url).embedder_for(model).embed(["text"])
    assert str(failed.value) == message.format(host=server.url)
    assert_in_the_users_words(str(failed.value))


@pytest.mark.parametrize(
    ("model", "question", "sent"),
    [
        ("nomic-embed-text:latest", False, "search_document: a car"),
        ("nomic-embed-text:v1.5", True, "search_query: a car"),
        ("mxbai-embed-large", True, "Represent this sentence for searching relevant passages: a car"),
        ("mxbai-embed-large", False, "a car"),
        ("all-minilm", True, "a car"),
    ],
)
def test_texts_are_embedded_with_the_prefix_the_model_was_trained_with(model, question, sent):
    with StandinOllama(models={model: "embed"}) as server:
        OllamaBackend(server.url).embedder_for(model).embed(["a car"], question=question)
    assert server.embed_requests[0]["input"] == [sent]


@pytest.mark.parametrize(("model", "can_chat"), [("llama3:8b", True), ("all-minilm", False), ("not-pulled", True)])
def test_models_that_cannot_chat_are_told_by_their_capabilities(standin, model, can_chat):
    standin.models["all-minilm"] = "embed"
    assert OllamaBackend(standin.url).can_chat(model) == can_chat  # unknown: not hidden, its error will say why
