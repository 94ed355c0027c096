"""The stand-in must look exactly like a real Ollama server to the real `ollama` client."""

import json
import math
import re
import socket
import threading
import time
from datetime import datetime

import httpx
import ollama
import pytest

from chatcore.backends import tls_context
from tests.ollama_standin import StandinOllama

EMBED = "nomic-embed-text"
MODELS = {"llama3:8b": "ok", "mistral": "ok", "broken:7b": "error_line", "flaky:7b": "drop", EMBED: "embed"}
HELLO = [{"role": "user", "content": "hello there"}]
LONG_PROMPT = [{"role": "user", "content": " ".join(f"w{i}" for i in range(60))}]
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


@pytest.fixture
def standin():
    with StandinOllama(models=MODELS) as server:
        yield server


@pytest.fixture
def client(standin):
    with ollama.Client(host=standin.url, verify=tls_context()) as ollama_client:
        yield ollama_client


def wait_for(condition, timeout: float = 2.0) -> bool:
    """Poll condition until it holds or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def raw_http(url: str, request: bytes) -> bytes:
    """Send one raw HTTP request and return everything the server writes until it closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def test_streamed_chat_yields_tokens_then_final_chunk(client):
    parts = list(client.chat("llama3:8b", HELLO, stream=True))

    *tokens, final = parts
    assert [part.message.content for part in tokens] == ["Echo: ", "hello ", "there"]
    assert all(not part.done and part.done_reason is None and part.eval_count is None for part in tokens)
    assert all(CREATED_AT.match(part.created_at) for part in parts)
    assert final.done and final.done_reason == "stop"
    assert final.message.content == ""
    assert final.prompt_eval_count == len("hello there") // 4 + 4 + 1
    assert final.eval_count == 3
    assert all(
        isinstance(value, int) and value > 0
        for value in (final.total_duration, final.load_duration, final.eval_duration)
    )


def test_non_streamed_chat_aggregates_the_reply(client):
    response = client.chat("llama3:8b", HELLO)

    assert response.message.role == "assistant"
    assert response.message.content == "Echo: hello there"
    assert response.done and response.done_reason == "stop"
    assert response.eval_count == 3
    assert response.model == "llama3:8b"


def test_custom_reply_streams_back_exactly(client, standin):
    standin.reply = lambda messages: "  Two  spaces,\nnew line\tand tab. "

    parts = list(client.chat("llama3:8b", HELLO, stream=True))

    assert "".join(part.message.content for part in parts) == "  Two  spaces,\nnew line\tand tab. "
    assert parts[0].message.content == "  "


def test_list_parses_and_lists_every_model(client):
    models = client.list().models

    assert [model.model for model in models] == [
        "llama3:8b",
        "mistral:latest",
        "broken:7b",
        "flaky:7b",
        "nomic-embed-text:latest",
    ]
    assert all(re.fullmatch(r"[0-9a-f]{64}", model.digest) for model in models)
    assert all(isinstance(model.modified_at, datetime) and model.modified_at.tzinfo for model in models)
    assert models[0].modified_at > models[1].modified_at
    assert models[0].details.format == "gguf" and models[0].details.parameter_size == "8.0B"
    assert models[0].size > 0


@pytest.mark.parametrize(
    ("model", "capabilities", "arch", "context_length", "embedding_length", "parameter_size"),
    [
        ("llama3:8b", ["completion"], "llama", 8192, 4096, "8.0B"),
        (EMBED, ["embedding"], "nomic-bert", 2048, 64, "137M"),
    ],
)
def test_show_parses(client, model, capabilities, arch, context_length, embedding_length, parameter_size):
    shown = client.show(model)

    assert shown.modelinfo["general.architecture"] == arch
    assert shown.modelinfo[f"{arch}.context_length"] == context_length
    assert shown.modelinfo[f"{arch}.embedding_length"] == embedding_length
    assert shown.capabilities == capabilities
    assert shown.details.family == arch and shown.details.families == [arch]
    assert shown.details.parameter_size == parameter_size
    assert shown.modified_at.tzinfo is not None


def test_list_shows_the_embedding_models_family(client):
    details = {model.model: model.details for model in client.list().models}

    assert details["nomic-embed-text:latest"].family == "nomic-bert"
    assert details["nomic-embed-text:latest"].quantization_level == "F16"
    assert details["llama3:8b"].family == "llama"


@pytest.mark.parametrize("stream", [True, False])
def test_unknown_model_is_a_404_response_error(client, stream):
    with pytest.raises(ollama.ResponseError) as raised:
        response = client.chat("nope", HELLO, stream=stream)
        if stream:
            list(response)

    assert raised.value.status_code == 404
    assert raised.value.error == "model 'nope' not found"


def test_show_unknown_model_is_a_404_response_error(client):
    with pytest.raises(ollama.ResponseError) as raised:
        client.show("nope")

    assert raised.value.status_code == 404
    assert raised.value.error == "model 'nope' not found"


@pytest.mark.parametrize(
    "requested",
    [
        "llama3:8b",
        "LLAMA3:8B",
        "mistral",
        "mistral:latest",
        "library/mistral",
        "registry.ollama.ai/library/mistral:latest",
    ],
)
def test_model_names_resolve_like_the_real_server_and_are_echoed(client, requested):
    assert client.chat(requested, HELLO).model == requested


@pytest.mark.parametrize("requested", ["llama3", "llama3:70b", "mistral:7b"])
def test_model_names_that_do_not_resolve(client, requested):
    with pytest.raises(ollama.ResponseError, match=f"model '{requested}' not found"):
        client.chat(requested, HELLO)


@pytest.mark.parametrize(
    ("model", "error_type", "attributes"),
    [
        (
            "broken:7b",
            ollama.ResponseError,
            {"status_code": -1, "error": "an error was encountered while running the model: out of memory"},
        ),
        ("flaky:7b", httpx.RemoteProtocolError, {}),
    ],
)
def test_faulty_models_fail_mid_stream_after_some_content(client, model, error_type, attributes):
    received = []
    with pytest.raises(error_type) as raised:
        for part in client.chat(model, LONG_PROMPT, stream=True):
            received.append(part.message.content)

    assert "".join(received) == "Echo: w0 w1 "
    for name, value in attributes.items():
        assert getattr(raised.value, name) == value


@pytest.mark.parametrize(
    ("model", "error_type", "message"),
    [
        ("broken:7b", ollama.ResponseError, "out of memory"),
        ("flaky:7b", httpx.RemoteProtocolError, "disconnected without sending a response"),
    ],
)
def test_faulty_models_fail_without_streaming(client, model, error_type, message):
    with pytest.raises(error_type, match=message):
        client.chat(model, HELLO)


def test_closing_the_stream_early_counts_a_disconnect(client, standin):
    standin.token_delay = 0.01
    stream = client.chat("llama3:8b", LONG_PROMPT, stream=True)
    assert next(stream).message.content == "Echo: "

    stream.close()

    assert wait_for(lambda: standin.disconnects == 1)


@pytest.mark.parametrize("stream", [True, False])
def test_hanging_up_while_the_prompt_is_evaluated_counts_a_disconnect_at_once(standin, stream):
    standin.prompt_delay = 60
    host, port = standin.url.removeprefix("http://").split(":")
    body = json.dumps({"model": "llama3:8b", "messages": HELLO, "stream": stream}).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert wait_for(lambda: len(standin.chat_requests) == 1)

    assert wait_for(lambda: standin.disconnects == 1)


def test_client_keeps_working_after_a_disconnect(client, standin):
    standin.token_delay = 0.01
    stream = client.chat("llama3:8b", LONG_PROMPT, stream=True)
    next(stream)
    stream.close()

    assert client.chat("llama3:8b", HELLO).message.content == "Echo: hello there"


def test_chat_requests_record_what_the_client_sent(client, standin):
    client.chat("llama3:8b", HELLO, options={"num_ctx": 2048})
    client.chat("nope", HELLO, stream=True).close()  # a generator that never ran sends nothing

    assert standin.chat_requests == [
        {"model": "llama3:8b", "stream": False, "options": {"num_ctx": 2048}, "messages": HELLO, "tools": []},
    ]


@pytest.mark.parametrize(
    ("num_predict", "content", "done_reason"),
    [
        (2, "Echo: hello ", "length"),
        (3, "Echo: hello there", "length"),
        (4, "Echo: hello there", "stop"),
        (-1, "Echo: hello there", "stop"),
        (None, "Echo: hello there", "stop"),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
def test_num_predict_truncates_the_reply(client, stream, num_predict, content, done_reason):
    options = {} if num_predict is None else {"num_predict": num_predict}
    response = client.chat("llama3:8b", HELLO, stream=stream, options=options)
    parts = list(response) if stream else [response]

    assert "".join(part.message.content for part in parts) == content
    assert parts[-1].done_reason == done_reason
    assert parts[-1].eval_count == len(content.split())


def test_empty_messages_load_the_model(client):
    assert client.chat("llama3:8b", []).done_reason == "load"
    assert client.chat("llama3:8b", [], keep_alive=0).done_reason == "unload"


def test_stream_wire_format(standin):
    standin.reply = lambda messages: "<b>Tom & Jerry</b> ü"
    with httpx.stream("POST", f"{standin.url}/api/chat", json={"model": "llama3:8b", "messages": HELLO}) as response:
        body = response.read().decode()

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers and "server" not in response.headers
    assert body.endswith("\n")
    lines = body.removesuffix("\n").split("\n")
    assert all(lines), "a blank line breaks the client's json.loads"
    objects = [json.loads(line) for line in lines]
    assert [list(obj) for obj in objects[:-1]] == [["model", "created_at", "message", "done"]] * (len(objects) - 1)
    assert list(objects[-1]) == [
        "model",
        "created_at",
        "message",
        "done",
        "done_reason",
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ]
    assert r'"content":"\u003cb\u003eTom "' in body and r'"content":"\u0026 "' in body
    assert "<" not in body and "&" not in body
    assert '"content":"ü"' in body
    assert '"model":"llama3:8b","created_at"' in body  # compact separators


def test_each_line_is_its_own_http_chunk(standin):
    request = b'{"model":"llama3:8b","messages":[{"role":"user","content":"a b"}]}'
    raw = raw_http(
        standin.url,
        b"POST /api/chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(request), request),
    )

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    chunks = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        chunks.append(body[:size])
        assert body[size : size + 2] == b"\r\n"
        body = body[size + 2 :]
    assert body == b"\r\n"
    assert len(chunks) == 4  # "Echo: ", "a ", "b", final
    assert all(chunk.endswith(b"\n") and chunk.count(b"\n") == 1 for chunk in chunks)


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        (b"", 400, "missing request body"),
        (b"  \n", 400, "missing request body"),
        (b"xyz", 400, "invalid character 'x' looking for beginning of value"),
        (b"{bad", 400, "invalid character 'b' looking for beginning of object key string"),
        (b'{"model"', 400, "unexpected EOF"),
        (b"[1]", 400, "json: cannot unmarshal array into Go value of type api.ChatRequest"),
        (
            b'{"model":"llama3:8b","messages":"hi"}',
            400,
            "json: cannot unmarshal string into Go struct field ChatRequest.messages of type []api.Message",
        ),
        (
            b'{"model":"llama3:8b","messages":[{"role":"user","content":5}]}',
            400,
            "json: cannot unmarshal number into Go struct field ChatRequest.messages.content of type string",
        ),
        (b"null", 400, "model is required"),
        (b'{"messages":[]}', 400, "model is required"),
        (b'{"model":"nope"}', 404, "model 'nope' not found"),
        (b'{"model":"llama3:8b","think":true}', 400, '"llama3:8b" does not support thinking'),
        (b'{"model":"nomic-embed-text"}', 400, '"nomic-embed-text" does not support chat'),
        (b'{"model":"NOMIC-embed-text:latest","think":true}', 400, '"NOMIC-embed-text:latest" does not support chat'),
        (b'{"model":"llama3:8b","options":{"num_ctx":"big"}}', 500, 'option "num_ctx" must be of type integer'),
    ],
)
def test_chat_request_errors(standin, content, status, error):
    response = httpx.post(f"{standin.url}/api/chat", content=content)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"error": error}


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        (b"{}", 400, "model is required"),
        (b'{"model":"nope"}', 404, "model 'nope' not found"),
    ],
)
def test_show_request_errors(standin, content, status, error):
    response = httpx.post(f"{standin.url}/api/show", content=content)

    assert (response.status_code, response.json()) == (status, {"error": error})


def test_load_response_is_one_json_object_even_when_streaming(standin):
    response = httpx.post(f"{standin.url}/api/chat", json={"model": "llama3:8b", "stream": True})

    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert not response.text.endswith("\n")
    assert list(response.json()) == ["model", "created_at", "message", "done", "done_reason"]
    assert response.json()["done_reason"] == "load"


@pytest.mark.parametrize(
    ("method", "path", "status", "content_type", "body"),
    [
        ("GET", "/", 200, "text/plain; charset=utf-8", b"Ollama is running"),
        ("HEAD", "/", 200, "text/plain; charset=utf-8", b""),
        ("GET", "/api/version", 200, "application/json; charset=utf-8", b'{"version":"0.13.0"}'),
        ("GET", "/nowhere", 404, "text/plain", b"404 page not found"),
        ("POST", "/api/nowhere", 404, "text/plain", b"404 page not found"),
        ("GET", "/api/chat", 405, "text/plain", b"405 method not allowed"),
        ("POST", "/api/tags", 405, "text/plain", b"405 method not allowed"),
        ("GET", "/api/embed", 405, "text/plain", b"405 method not allowed"),
    ],
)
def test_other_routes(standin, method, path, status, content_type, body):
    response = httpx.request(method, standin.url + path)

    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    assert response.content == body


def test_head_root_announces_the_length(standin):
    assert httpx.head(standin.url).headers["content-length"] == "17"


def test_large_non_streamed_bodies_are_chunked_like_go(client, standin):
    standin.reply = lambda messages: "word " * 1000

    response = httpx.post(f"{standin.url}/api/chat", json={"model": "llama3:8b", "messages": HELLO, "stream": False})

    assert response.headers["transfer-encoding"] == "chunked"
    assert response.json()["message"]["content"] == "word " * 1000
    assert client.chat("llama3:8b", HELLO).eval_count == 1000


def test_url_needs_a_started_server():
    with pytest.raises(RuntimeError):
        _ = StandinOllama().url


def test_unknown_behaviour_is_rejected():
    with pytest.raises(ValueError, match="explode"):
        StandinOllama(models={"m": "explode"})


def test_stop_closes_connections_and_joins_threads():
    threads_before = threading.active_count()
    standin = StandinOllama().start()
    with ollama.Client(host=standin.url, verify=tls_context()) as client:
        assert len(client.list().models) == 2  # leaves a kept-alive connection open

        standin.stop()

        assert threading.active_count() == threads_before
        with pytest.raises(httpx.ConnectError):
            httpx.get(standin.url)


def vector_norm(vector: list[float]) -> float:
    """Euclidean length of vector."""
    return math.sqrt(sum(value * value for value in vector))


@pytest.mark.parametrize("stream", [True, False])
def test_chat_with_an_embedding_model_is_a_400_response_error(client, stream):
    with pytest.raises(ollama.ResponseError) as raised:
        response = client.chat(EMBED, HELLO, stream=stream)
        if stream:
            list(response)

    assert raised.value.status_code == 400
    assert raised.value.error == '"nomic-embed-text" does not support chat'


@pytest.mark.parametrize(
    ("model", "texts"),
    [
        (EMBED, "The cat sat on the mat"),
        (EMBED, ["The cat sat on the mat", "a dog", "!?"]),
        ("llama3:8b", ["completion models embed too"]),
        ("NOMIC-EMBED-TEXT:latest", "names resolve and are echoed"),
    ],
)
def test_embed_returns_one_normalised_vector_per_input(client, model, texts):
    response = client.embed(model=model, input=texts)

    inputs = [texts] if isinstance(texts, str) else texts
    assert response.model == model
    assert len(response.embeddings) == len(inputs)
    assert all(len(vector) == 64 for vector in response.embeddings)
    assert all(math.isclose(vector_norm(vector), 1, abs_tol=1e-6) for vector in response.embeddings if any(vector))
    assert response.prompt_eval_count == sum(len(text) // 4 + 2 for text in inputs)
    assert response.total_duration >= response.load_duration > 0


def test_default_embedding_is_a_stable_bag_of_words(client):
    texts = ["The cat sat on the mat", "mat ON the the CAT, sat!", "cat", "a dog", "!? _ --"]

    same, shuffled, cat, dog, no_words = client.embed(model=EMBED, input=texts).embeddings

    assert same == shuffled  # lower-cased, order and punctuation ignored
    assert [index for index, value in enumerate(cat) if value] == [35]  # hashlib, not the per-run hash()
    assert sum(a * b for a, b in zip(same, cat, strict=True)) > 0
    assert sum(a * b for a, b in zip(same, dog, strict=True)) == 0
    assert no_words == [0] * 64


def test_custom_embed_function_gives_chosen_texts_similar_vectors():
    topics = {"cat": [1.0, 0.2, 0.0], "kitten": [0.9, 0.3, 0.0], "tax": [0.0, 0.1, 1.0]}
    seen = []

    def embed(text: str) -> list[float]:
        seen.append(text)
        return topics[text]

    with (
        StandinOllama(models={EMBED: "embed"}, embed=embed) as standin,
        ollama.Client(host=standin.url, verify=tls_context()) as client,
    ):
        cat, kitten, tax = client.embed(model=EMBED, input=list(topics)).embeddings

    assert seen == list(topics)
    assert math.isclose(vector_norm(cat), 1, abs_tol=1e-6)
    assert sum(a * b for a, b in zip(cat, kitten, strict=True)) > 0.95
    assert sum(a * b for a, b in zip(cat, tax, strict=True)) < 0.1


@pytest.mark.parametrize(
    ("dimensions", "expected"),
    [
        (None, [0.6, 0, 0.8]),
        (0, [0.6, 0, 0.8]),
        (1, [1]),
        (2, [1, 0]),
        (3, [0.6, 0, 0.8]),
        (5, [0.6, 0, 0.8]),
    ],
)
def test_dimensions_cut_the_vector_then_renormalise_it(client, standin, dimensions, expected):
    standin.embed = lambda text: [3.0, 0.0, 4.0]

    assert client.embed(model=EMBED, input="x", dimensions=dimensions).embeddings == [expected]


@pytest.mark.parametrize("content", ['"input":""', '"input":[]', '"input":null', '"truncate":false'])
def test_empty_input_gives_no_embeddings_and_no_metrics(standin, content):
    response = httpx.post(f"{standin.url}/api/embed", content=f'{{"model":"nomic-embed-text",{content}}}')

    assert response.status_code == 200
    assert response.text == '{"model":"nomic-embed-text","embeddings":[]}'


def test_empty_input_through_the_client(client):
    assert client.embed(model=EMBED, input=[]).embeddings == []
    assert client.embed(model=EMBED).embeddings == []  # the client sends input ""


def test_embed_wire_format(standin):
    standin.embed = lambda text: [1.0, 1.0, 0.0, -1.0]

    response = httpx.post(f"{standin.url}/api/embed", json={"model": "Nomic-Embed-Text", "input": ["a <b> & c"]})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert list(response.json()) == ["model", "embeddings", "total_duration", "load_duration", "prompt_eval_count"]
    assert response.text.startswith('{"model":"Nomic-Embed-Text","embeddings":[[0.57735026,0.57735026,0,-0.57735026]],')
    assert response.json()["prompt_eval_count"] == len("a <b> & c") // 4 + 2


def test_large_embed_responses_are_chunked_like_go(standin):
    texts = [f"text number {i}" for i in range(20)]
    response = httpx.post(f"{standin.url}/api/embed", json={"model": EMBED, "input": texts})

    assert response.headers["transfer-encoding"] == "chunked"
    assert len(response.json()["embeddings"]) == 20


def test_unknown_embedding_model_is_a_404_response_error(client):
    with pytest.raises(ollama.ResponseError) as raised:
        client.embed(model="nope", input="hello")

    assert raised.value.status_code == 404
    assert raised.value.error == 'model "nope" not found, try pulling it first'


@pytest.mark.parametrize(
    ("model", "words", "truncate", "options", "prompt_eval_count"),
    [
        (EMBED, 2000, None, None, 2048),  # 10,000 characters: 2,502 tokens, cut to the model's 2,048
        (EMBED, 2000, True, None, 2048),
        (EMBED, 2000, True, {"num_ctx": 1024}, 1024),
        (EMBED, 2000, False, {"num_ctx": 8192}, None),  # num_ctx cannot raise the model's own context
        (EMBED, 1636, False, None, 2047),
        ("llama3:8b", 2000, False, None, 2502),  # 4,096 tokens: the server's default num_ctx
        ("llama3:8b", 4000, True, None, 4096),
        ("llama3:8b", 4000, False, None, None),
    ],
)
def test_inputs_longer_than_the_context(client, model, words, truncate, options, prompt_eval_count):
    texts = ["short", "word " * words]

    if prompt_eval_count is None:
        with pytest.raises(ollama.ResponseError) as raised:
            client.embed(model=model, input=texts, truncate=truncate, options=options)
        assert (raised.value.status_code, raised.value.error) == (400, "input exceeds maximum context length")
    else:
        response = client.embed(model=model, input=texts, truncate=truncate, options=options)
        assert response.prompt_eval_count == prompt_eval_count + len("short") // 4 + 2
        assert len(response.embeddings) == 2


@pytest.mark.parametrize(
    ("model", "error_type", "message"),
    [
        ("broken:7b", ollama.ResponseError, "out of memory"),
        ("flaky:7b", httpx.RemoteProtocolError, "disconnected without sending a response"),
    ],
)
def test_faulty_models_fail_to_embed(client, model, error_type, message):
    with pytest.raises(error_type, match=message):
        client.embed(model=model, input="hello")


@pytest.mark.parametrize("model", ["broken:7b", "flaky:7b"])
def test_faulty_models_still_answer_an_empty_input(client, model):
    assert client.embed(model=model, input=[]).embeddings == []


@pytest.mark.parametrize(
    ("content", "status", "error"),
    [
        (b"", 400, "missing request body"),
        (b"[]", 400, "json: cannot unmarshal array into Go value of type api.EmbedRequest"),
        (b'{"input":"x"}', 400, "model is required"),
        (b'{"model":"nomic-embed-text","input":5}', 400, "invalid input type"),
        (b'{"model":"nomic-embed-text","input":["a",1]}', 400, "invalid input type"),
        (b'{"model":"nomic-embed-text","input":{"text":"a"}}', 400, "invalid input type"),
        (b'{"model":"nope","input":"x"}', 404, 'model "nope" not found, try pulling it first'),
        (
            b'{"model":"nomic-embed-text","input":"x","truncate":"no"}',
            400,
            "json: cannot unmarshal string into Go struct field EmbedRequest.truncate of type bool",
        ),
        (
            b'{"model":"nomic-embed-text","input":"x","dimensions":2.5}',
            400,
            "json: cannot unmarshal number 2.5 into Go struct field EmbedRequest.dimensions of type int",
        ),
        (
            b'{"model":"nomic-embed-text","input":"x","dimensions":true}',
            400,
            "json: cannot unmarshal bool into Go struct field EmbedRequest.dimensions of type int",
        ),
        (
            b'{"model":"nomic-embed-text","input":"x","options":{"num_ctx":"big"}}',
            500,
            'option "num_ctx" must be of type integer',
        ),
        (b'{"model":"broken:7b","input":"x"}', 500, "an error was encountered while running the model: out of memory"),
    ],
)
def test_embed_request_errors(standin, content, status, error):
    response = httpx.post(f"{standin.url}/api/embed", content=content)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"error": error}


def test_embed_requests_record_what_the_client_sent(client, standin):
    client.embed(model=EMBED, input=["a", "b"], truncate=False, dimensions=2, keep_alive="1m")
    with pytest.raises(ollama.ResponseError):
        client.embed(model="nope", input="c")

    assert standin.embed_requests == [
        {"model": EMBED, "input": ["a", "b"], "truncate": False, "keep_alive": "1m", "dimensions": 2},
        {"model": "nope", "input": "c"},
    ]
    assert standin.chat_requests == []
