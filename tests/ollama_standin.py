"""A stand-in Ollama server that speaks the real wire format (see shared/reference/ollama-api.md).

Standard library only, so tests and manual runs need no Ollama install and no model download.
Models behave as "ok" (chat), "error_line" or "drop" (fail mid-reply) or "embed" (an embedding model).
Run it by hand with: python tests/ollama_standin.py --port 11434 --token-delay 0.05
"""

import argparse
import contextlib
import hashlib
import json
import re
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import urlsplit

DEFAULT_MODELS = {"llama3:8b": "ok", "qwen2.5:0.5b": "ok"}
BEHAVIOURS = ("ok", "error_line", "drop", "embed")
VERSION = "0.13.0"
DEFAULT_NUM_CTX = 4096  # the context a v0.13 server loads a model with unless options.num_ctx says otherwise
EMBED_DIMENSIONS = 64
EMBED_MARKER_TOKENS = 2  # the start and end tokens an embedding model's tokenizer adds to every input

MODEL_ERROR = "an error was encountered while running the model: out of memory"
TOKENS_BEFORE_FAULT = 3
STALL_S = 3600  # how long a stalled model waits before its next token: longer than any test
STALL_POLL_S = 0.01  # how often a stalled model looks whether it was resumed
TOKEN_PATTERN = re.compile(r"\S+\s*|\s+")
WORD_PATTERN = re.compile(r"[^\W_]+")

# Go's net/http buffers this much of a handler's output; bigger bodies lose Content-Length and go chunked.
GO_RESPONSE_BUFFER = 2048
# Go's encoding/json escapes these even though JSON does not require it.
GO_JSON_ESCAPES = {ord(char): f"\\u{ord(char):04x}" for char in "<>&\u2028\u2029"}
# Python json error message prefix -> the wording Go's decoder uses after "invalid character 'x'".
GO_SYNTAX_ERRORS = {
    "Expecting value": "looking for beginning of value",
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Expecting ':' delimiter": "after object key",
    "Expecting ',' delimiter": "after object key:value pair",
    "Invalid control character": "in string literal",
    "Invalid \\escape": "in string escape code",
}
CHAT_FIELDS = {
    "model": (str, "string"),
    "messages": (list, "[]api.Message"),
    "stream": (bool, "bool"),
    "options": (dict, "map[string]interface {}"),
}
MESSAGE_FIELDS = {"role": (str, "string"), "content": (str, "string")}
SHOW_FIELDS = {"model": (str, "string"), "name": (str, "string")}
EMBED_FIELDS = {
    "model": (str, "string"),
    "truncate": (bool, "bool"),
    "dimensions": (int, "int"),
    "options": (dict, "map[string]interface {}"),
}
OPTION_TYPES = {
    **dict.fromkeys(
        [
            "num_ctx",
            "num_batch",
            "num_gpu",
            "main_gpu",
            "num_thread",
            "num_keep",
            "seed",
            "num_predict",
            "top_k",
            "repeat_last_n",
        ],
        "integer",
    ),
    **dict.fromkeys(
        ["top_p", "min_p", "typical_p", "temperature", "repeat_penalty", "presence_penalty", "frequency_penalty"],
        "float32",
    ),
    "stop": "array",
}


@dataclass(frozen=True)
class Architecture:
    """What /api/tags and /api/show report for one kind of model."""

    name: str
    capabilities: tuple[str, ...]
    context_length: int
    embedding_length: int
    default_parameter_count: int
    quantization_level: str
    bytes_per_parameter: float
    parameters: str


LLAMA = Architecture(
    name="llama",
    capabilities=("completion",),
    context_length=8192,
    embedding_length=4096,
    default_parameter_count=8_000_000_000,
    quantization_level="Q4_K_M",
    bytes_per_parameter=0.6,
    parameters='stop                           "<|eot_id|>"',  # Go's "%-30s %#v" per PARAMETER line
)
NOMIC_BERT = Architecture(
    name="nomic-bert",
    capabilities=("embedding",),
    context_length=2048,
    embedding_length=EMBED_DIMENSIONS,
    default_parameter_count=137_000_000,
    quantization_level="F16",
    bytes_per_parameter=2,
    parameters="num_ctx                        8192",
)


def architecture(behaviour: str) -> Architecture:
    """The architecture a model with this behaviour pretends to have."""
    return NOMIC_BERT if behaviour == "embed" else LLAMA


def echo_reply(messages: list[dict]) -> str:
    """Default reply: echo the last message's content."""
    return "Echo: " + (messages[-1].get("content") or "")


def tokenize(text: str) -> list[str]:
    """Split text into word-like tokens that join back to exactly text."""
    return TOKEN_PATTERN.findall(text)


def prompt_token_estimate(messages: list[dict], chars_per_token: int = 4) -> int:
    """Deterministic stand-in for the size of the rendered prompt in tokens: text, 4 per message, 1 to start."""
    return sum(len(message.get("content") or "") // chars_per_token + 4 for message in messages) + 1


def text_token_estimate(text: str, chars_per_token: int = 4) -> int:
    """Deterministic stand-in for the tokens of one embedding input: text plus the start and end markers."""
    return len(text) // chars_per_token + EMBED_MARKER_TOKENS


def l2_normalize(vector: list[float]) -> list[float]:
    """Scale vector to unit length; an all-zero vector stays zeros."""
    norm = sum(value * value for value in vector) ** 0.5
    return [value / norm for value in vector] if norm else [0.0] * len(vector)


def bag_of_words_embedding(text: str, dimensions: int = EMBED_DIMENSIONS) -> list[float]:
    """Default embedding: lower-cased word counts hashed into dimensions buckets (stable across runs), normalised."""
    counts = [0.0] * dimensions
    for word in WORD_PATTERN.findall(text.lower()):
        counts[int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "big") % dimensions] += 1
    return l2_normalize(counts)


def to_float32(value: float) -> float:
    """Round value to the nearest float32."""
    return struct.unpack("f", struct.pack("f", value))[0]


def go_float32(value: float) -> float | int:
    """Value as Go prints a float32: the shortest decimal that rounds to the same float32, whole numbers bare."""
    single = to_float32(value)
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if to_float32(shortest) == single:
            break
    return int(shortest) if shortest.is_integer() else shortest


def embed_inputs(value) -> list[str] | None:
    """The texts of an embed request's input (a string, an array of strings or absent); None if it is neither."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def go_json(value) -> bytes:
    """Encode value the way Go's encoding/json does: compact, HTML-escaped, raw UTF-8."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.translate(GO_JSON_ESCAPES).encode()


def go_json_syntax_error(error: json.JSONDecodeError) -> str:
    """Return the message Go's JSON decoder gives for the input Python rejected."""
    if error.pos >= len(error.doc) or error.msg.startswith("Unterminated"):
        return "unexpected EOF"
    context = next(
        (text for prefix, text in GO_SYNTAX_ERRORS.items() if error.msg.startswith(prefix)),
        GO_SYNTAX_ERRORS["Expecting value"],
    )
    return f"invalid character '{error.doc[error.pos]}' {context}"


def json_kind(value) -> str:
    """Name of value's JSON type as Go's unmarshal errors spell it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array"}.get(type(value), "object")


def field_type_error(body: dict, fields: dict, struct: str) -> str | None:
    """Go's unmarshal error for the first field of body whose JSON type does not fit, if any."""
    for name, value in body.items():
        if name not in fields or value is None:
            continue
        python_type, go_type = fields[name]
        if not isinstance(value, python_type) or (isinstance(value, bool) and python_type is not bool):
            kind = f"number {value}" if python_type is int and isinstance(value, float) else json_kind(value)
            return f"json: cannot unmarshal {kind} into Go struct field {struct}.{name} of type {go_type}"
    return None


def chat_type_error(body: dict) -> str | None:
    """Go's unmarshal error for a chat request whose fields or messages have the wrong JSON types."""
    if error := field_type_error(body, CHAT_FIELDS, "ChatRequest"):
        return error
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            kind = json_kind(message)
            return f"json: cannot unmarshal {kind} into Go struct field ChatRequest.messages of type api.Message"
        if error := field_type_error(message, MESSAGE_FIELDS, "ChatRequest.messages"):
            return error
    return None


def option_error(options: dict) -> str | None:
    """The error the real server gives for an option value of the wrong type, if any."""
    for name, value in options.items():
        expected = OPTION_TYPES.get(name)
        if expected is None or value is None:
            continue
        if expected == "array":
            fits = isinstance(value, list)
        else:
            fits = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not fits:
            return f'option "{name}" must be of type {expected}'
    return None


def full_model_name(name: str) -> str:
    """Expand name to host/namespace/model:tag with the defaults the real server fills in."""
    tag = "latest"
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    parts = name.split("/")
    parts = ["registry.ollama.ai", "library"][: 3 - len(parts)] + parts
    return f"{'/'.join(parts)}:{tag}"


def display_name(name: str) -> str:
    """Short name as /api/tags shows it, e.g. "llama3:latest"."""
    return full_model_name(name).removeprefix("registry.ollama.ai/library/")


def rfc3339_nano(nanoseconds: int, local: bool = False) -> str:
    """Format a time like Go's time.RFC3339Nano, in UTC or the local zone."""
    seconds, nanos = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, UTC)
    if local:
        moment = moment.astimezone()
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    offset = moment.strftime("%z")
    zone = "Z" if offset == "+0000" else f"{offset[:3]}:{offset[3:]}"
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


def utc_now() -> str:
    """Current time as the real server's created_at field."""
    return rfc3339_nano(time.time_ns())


def parameter_count(name: str, arch: Architecture = LLAMA) -> int:
    """Parameter count suggested by a tag like "8b" or "0.5b"; the architecture's usual count otherwise."""
    match = re.search(r":(\d+(?:\.\d+)?)b$", display_name(name).lower())
    return int(float(match.group(1)) * 1e9) if match else arch.default_parameter_count


def model_details(name: str, arch: Architecture = LLAMA) -> dict:
    """The ModelDetails object shared by /api/tags and /api/show."""
    count = parameter_count(name, arch)
    size = f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": arch.name,
        "families": [arch.name],
        "parameter_size": size,
        "quantization_level": arch.quantization_level,
    }


def model_size(name: str, arch: Architecture = LLAMA) -> int:
    """Plausible file size in bytes: Q4_K_M weighs about 0.6 bytes per parameter, F16 two."""
    return int(parameter_count(name, arch) * arch.bytes_per_parameter)


def model_digest(name: str) -> str:
    """Stable fake manifest digest: 64 hex characters, no "sha256:" prefix."""
    return hashlib.sha256(display_name(name).encode()).hexdigest()


def chat_chunk(model: str, content: str, done: bool = False) -> dict:
    """A ChatResponse object with no metrics."""
    return {"model": model, "created_at": utc_now(), "message": {"role": "assistant", "content": content}, "done": done}


@dataclass
class Generation:
    """One simulated model run: what to emit and the timestamps behind the final chunk's metrics."""

    model: str
    tokens: list[str]
    done_reason: str
    prompt_eval_count: int
    started_ns: int
    loaded_ns: int
    prompted_ns: int

    def final_chunk(self) -> dict:
        """The closing done:true object, metrics in the real server's field order, zeros omitted."""
        finished_ns = time.perf_counter_ns()
        metrics = {
            "total_duration": finished_ns - self.started_ns,
            "load_duration": self.loaded_ns - self.started_ns,
            "prompt_eval_count": self.prompt_eval_count,
            "prompt_eval_duration": self.prompted_ns - self.loaded_ns,
            "eval_count": len(self.tokens),
            "eval_duration": finished_ns - self.prompted_ns,
        }
        final = chat_chunk(self.model, "", done=True)
        final["done_reason"] = self.done_reason
        return final | {name: value for name, value in metrics.items() if value}


class StandinOllama:
    """An in-process HTTP server that answers like Ollama 0.13 for chat, embed, tags, show and version."""

    def __init__(
        self,
        models: dict[str, str] | None = None,
        token_delay: float = 0.0,
        reply: Callable[[list[dict]], str] | None = None,
        port: int = 0,
        prompt_delay: float = 0.0,
        chars_per_token: int = 4,
        embed: Callable[[str], list[float]] | None = None,
        stall_after: int | None = None,
    ):
        self.models = dict(DEFAULT_MODELS if models is None else models)
        unknown = set(self.models.values()) - set(BEHAVIOURS)
        if unknown:
            raise ValueError(f"unknown model behaviours {sorted(unknown)}; use one of {BEHAVIOURS}")
        self.token_delay = token_delay
        self.prompt_delay = prompt_delay  # seconds of "prompt evaluation" before the first token
        self.stall_after = stall_after  # tokens a reply streams before the model stalls (until resumed or hung up)
        self.resumed = threading.Event()
        self.chars_per_token = chars_per_token  # how prompt_eval_count counts message text
        self.reply = reply or echo_reply
        self.embed = embed or bag_of_words_embedding  # text -> vector; the server normalises it
        self.chat_requests: list[dict] = []
        self.embed_requests: list[dict] = []
        self.disconnects = 0
        self._created_ns = time.time_ns()
        self._port = port
        self._url: str | None = None
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL to hand to ollama.Client(host=...)."""
        if self._url is None:
            raise RuntimeError("StandinOllama has not been started")
        return self._url

    def start(self) -> "StandinOllama":
        """Start serving in a background thread."""
        self._server = _Server(("127.0.0.1", self._port), _Handler, self)
        self._url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # shutdown() only takes effect at the next poll; the default half second would slow every test's teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="standin-ollama", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and join every server thread."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def resume(self) -> None:
        """Let the stalled replies go on; from now on, no reply stalls."""
        self.resumed.set()

    def __enter__(self) -> "StandinOllama":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _find_model(self, requested: str) -> str | None:
        """The configured model the real server would resolve requested to (case-insensitive, tag "latest")."""
        wanted = full_model_name(requested).lower()
        return next((name for name in self.models if full_model_name(name).lower() == wanted), None)

    def _architecture(self, name: str) -> Architecture:
        """The architecture of a configured model."""
        return architecture(self.models[name])

    def _modified_at(self, name: str) -> str:
        """Local-zone modification time; models listed first count as most recent, as /api/tags sorts."""
        age_hours = list(self.models).index(name)
        return rfc3339_nano(self._created_ns - age_hours * 3600 * 1_000_000_000, local=True)

    def _record_chat_request(self, body: dict) -> None:
        """Remember a parsed /api/chat body."""
        with self._lock:
            self.chat_requests.append(body)

    def _record_embed_request(self, body: dict) -> None:
        """Remember a parsed /api/embed body."""
        with self._lock:
            self.embed_requests.append(body)

    def _count_disconnect(self) -> None:
        """Note a chat the client abandoned, before or during its stream."""
        with self._lock:
            self.disconnects += 1


class _Server(ThreadingHTTPServer):
    """Threading server that tracks its connections so stop() can close and join them."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, standin: StandinOllama):
        self.standin = standin
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: socket.socket, client_address) -> None:
        """Serve the connection in its own thread, remembering both."""
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="standin-ollama-connection",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: socket.socket) -> None:
        """Forget the connection, then close it."""
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection, which ends its thread, and wait for those threads."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for request, _ in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                request.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join()

    def handle_error(self, request, client_address) -> None:
        """Stay quiet about clients that hang up; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes one connection's requests; everything it writes mimics Go's net/http and gin."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # Go sets TCP_NODELAY, so each streamed line leaves at once
    server: _Server

    def log_message(self, format: str, *args) -> None:
        """Keep test output clean: no per-request logging."""

    def send_response(self, code: int, message: str | None = None) -> None:
        """Status line plus Date, without the Server header Go never sends."""
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def dispatch(self) -> None:
        """Route the request by path, then by method, like gin."""
        # Read the body whatever the route, so the next request on a kept-alive connection parses.
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        methods = self.ROUTES.get(urlsplit(self.path).path)
        try:
            if methods is None:
                self.send_body(404, "text/plain", b"404 page not found")
            elif self.command not in methods:
                self.send_body(405, "text/plain", b"405 method not allowed")
            else:
                methods[self.command](self, body)
        except ConnectionError:
            self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = dispatch

    def send_body(self, status: int, content_type: str, body: bytes) -> None:
        """Send a complete response; like Go, a body over its buffer size goes out chunked."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if len(body) > GO_RESPONSE_BUFFER and self.command != "HEAD":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.write_chunk(body)
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, value) -> None:
        """Send value as gin's c.JSON would."""
        self.send_body(status, "application/json; charset=utf-8", go_json(value))

    def send_error_json(self, status: int, message: str) -> None:
        """Send the server's {"error": ...} shape."""
        self.send_json(status, {"error": message})

    def write_chunk(self, data: bytes) -> None:
        """Write data as one HTTP chunk and push it to the client."""
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def write_line(self, value) -> None:
        """Write value as one NDJSON line in its own chunk."""
        self.write_chunk(go_json(value) + b"\n")

    def drop_connection(self) -> None:
        """Cut the TCP connection mid-response, as a crashing server or broken network would."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def parse_json(self, raw: bytes, go_type: str) -> dict | None:
        """Decode a request body like gin's ShouldBindJSON; on failure answer 400 and return None."""
        text = raw.decode("utf-8", errors="replace").lstrip(" \t\r\n")
        if not text:
            self.send_error_json(400, "missing request body")
            return None
        try:
            value, _ = json.JSONDecoder().raw_decode(text)  # Go ignores bytes after the first value
        except json.JSONDecodeError as error:
            self.send_error_json(400, go_json_syntax_error(error))
            return None
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.send_error_json(400, f"json: cannot unmarshal {json_kind(value)} into Go value of type {go_type}")
            return None
        return value

    def serve_root(self, raw: bytes) -> None:
        """GET/HEAD / : the liveness text."""
        self.send_body(200, "text/plain; charset=utf-8", b"Ollama is running")

    def serve_version(self, raw: bytes) -> None:
        """GET /api/version."""
        self.send_json(200, {"version": VERSION})

    def serve_tags(self, raw: bytes) -> None:
        """GET /api/tags: every configured model."""
        standin = self.server.standin
        models = [
            {
                "name": display_name(name),
                "model": display_name(name),
                "modified_at": standin._modified_at(name),
                "size": model_size(name, standin._architecture(name)),
                "digest": model_digest(name),
                "details": model_details(name, standin._architecture(name)),
            }
            for name in standin.models
        ]
        self.send_json(200, {"models": models})

    def serve_show(self, raw: bytes) -> None:
        """POST /api/show: model metadata."""
        body = self.parse_json(raw, "api.ShowRequest")
        if body is None:
            return
        if error := field_type_error(body, SHOW_FIELDS, "ShowRequest"):
            return self.send_error_json(400, error)
        requested = body.get("model") or body.get("name")  # "name" is the legacy spelling
        if not requested:
            return self.send_error_json(400, "model is required")
        name = self.server.standin._find_model(requested)
        if name is None:
            return self.send_error_json(404, f"model '{requested}' not found")
        arch = self.server.standin._architecture(name)
        self.send_json(
            200,
            {
                "modelfile": (
                    f'# Modelfile generated by "ollama show"\n'
                    f"# To build a new Modelfile based on this, replace FROM with:\n"
                    f"# FROM {display_name(name)}\n\n"
                    f"FROM /root/.ollama/models/blobs/sha256-{model_digest(name)}\n"
                ),
                "parameters": arch.parameters,
                "template": "{{ .Prompt }}",
                "details": model_details(name, arch),
                "model_info": {
                    "general.architecture": arch.name,
                    "general.parameter_count": parameter_count(name, arch),
                    f"{arch.name}.context_length": arch.context_length,
                    f"{arch.name}.embedding_length": arch.embedding_length,
                },
                "capabilities": list(arch.capabilities),
                "modified_at": self.server.standin._modified_at(name),
            },
        )

    def serve_chat(self, raw: bytes) -> None:
        """POST /api/chat: validate like the real server, then answer streamed or aggregated."""
        started_ns = time.perf_counter_ns()
        body = self.parse_json(raw, "api.ChatRequest")
        if body is None:
            return
        standin = self.server.standin
        standin._record_chat_request(body)
        if error := chat_type_error(body):
            return self.send_error_json(400, error)
        model = body.get("model")
        if not model:
            return self.send_error_json(400, "model is required")
        name = standin._find_model(model)
        if name is None:
            return self.send_error_json(404, f"model '{model}' not found")
        quoted = json.dumps(model, ensure_ascii=False)  # the server formats these with Go's %q
        if "completion" not in standin._architecture(name).capabilities:
            return self.send_error_json(400, f"{quoted} does not support chat")
        if body.get("think"):
            return self.send_error_json(400, f"{quoted} does not support thinking")
        if body.get("tools"):
            return self.send_error_json(400, f"{full_model_name(model)} does not support tools")
        options = body.get("options") or {}
        if error := option_error(options):
            return self.send_error_json(500, error)
        messages = body.get("messages") or []
        if not messages:
            loaded = chat_chunk(model, "", done=True)
            loaded["done_reason"] = "unload" if body.get("keep_alive") in (0, "0", "0s") else "load"
            return self.send_json(200, loaded)

        loaded_ns = time.perf_counter_ns()
        tokens = tokenize(standin.reply(messages))
        limit = int(options.get("num_predict") or -1)
        done_reason = "stop"
        if 0 < limit <= len(tokens):  # at exactly the limit the real runner stops before it can emit EOS
            tokens, done_reason = tokens[:limit], "length"
        try:
            self.work_for(standin.prompt_delay)
        except ConnectionError:
            return self.note_disconnect()
        prompt_tokens = prompt_token_estimate(messages, standin.chars_per_token)
        prompted_ns = time.perf_counter_ns()
        generation = Generation(model, tokens, done_reason, prompt_tokens, started_ns, loaded_ns, prompted_ns)
        if body.get("stream", True):
            self.stream_chat(generation, standin.models[name])
        else:
            self.respond_chat(generation, standin.models[name])

    def generate(self, generation: Generation, behaviour: str) -> Iterator[str]:
        """Yield the tokens at the configured pace; faulty models give up after a few, stalling ones stall."""
        standin = self.server.standin
        tokens = generation.tokens if behaviour == "ok" else generation.tokens[:TOKENS_BEFORE_FAULT]
        for index, token in enumerate(tokens):
            if index == standin.stall_after:
                self.stall()
            self.work_for(standin.token_delay)
            yield token

    def stall(self) -> None:
        """Wait, as a stalled model does, until the test resumes it; give up like work_for if the client hangs up."""
        deadline = time.monotonic() + STALL_S
        while not self.server.standin.resumed.is_set() and time.monotonic() < deadline:
            self.work_for(STALL_POLL_S)

    def work_for(self, seconds: float) -> None:
        """Take `seconds`, as the model would; like Ollama, give up (ConnectionAbortedError) if the client hangs up."""
        deadline = time.monotonic() + seconds
        if select.select([self.connection], [], [], seconds)[0] and not self.connection.recv(1, socket.MSG_PEEK):
            raise ConnectionAbortedError("the client closed the connection")
        time.sleep(max(0.0, deadline - time.monotonic()))  # what arrived was data, not a hang-up

    def note_disconnect(self) -> None:
        """Count a request the client abandoned, and close its connection."""
        self.server.standin._count_disconnect()
        self.close_connection = True

    def stream_chat(self, generation: Generation, behaviour: str) -> None:
        """Stream one NDJSON line per token, then the final chunk (or the model's failure)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for token in self.generate(generation, behaviour):
                self.write_line(chat_chunk(generation.model, token))
            if behaviour == "drop":
                return self.drop_connection()
            self.write_line(generation.final_chunk() if behaviour == "ok" else {"error": MODEL_ERROR})
            self.wfile.write(b"0\r\n\r\n")
        except ConnectionError:
            self.note_disconnect()

    def respond_chat(self, generation: Generation, behaviour: str) -> None:
        """Answer with one aggregated object, as for "stream": false."""
        content = "".join(self.generate(generation, behaviour))
        if behaviour == "drop":
            return self.drop_connection()
        if behaviour == "error_line":
            return self.send_error_json(500, MODEL_ERROR)
        final = generation.final_chunk()
        final["message"]["content"] = content
        self.send_json(200, final)

    def serve_embed(self, raw: bytes) -> None:
        """POST /api/embed: validate like the real server, then answer with normalised vectors."""
        started_ns = time.perf_counter_ns()
        body = self.parse_json(raw, "api.EmbedRequest")
        if body is None:
            return
        standin = self.server.standin
        standin._record_embed_request(body)
        if error := field_type_error(body, EMBED_FIELDS, "EmbedRequest"):
            return self.send_error_json(400, error)
        texts = embed_inputs(body.get("input"))
        if texts is None:
            return self.send_error_json(400, "invalid input type")
        model = body.get("model")
        if not model:
            return self.send_error_json(400, "model is required")
        name = standin._find_model(model)
        if name is None:
            quoted = json.dumps(model, ensure_ascii=False)  # Go's %q
            return self.send_error_json(404, f"model {quoted} not found, try pulling it first")
        options = body.get("options") or {}
        if error := option_error(options):
            return self.send_error_json(500, error)
        if not texts:
            return self.send_json(200, {"model": model, "embeddings": []})
        loaded_ns = time.perf_counter_ns()
        context = min(int(options.get("num_ctx") or DEFAULT_NUM_CTX), standin._architecture(name).context_length)
        fitted = [self.fit_to_context(text, context, body.get("truncate") is not False) for text in texts]
        if None in fitted:
            return self.send_error_json(400, "input exceeds maximum context length")
        behaviour = standin.models[name]
        if behaviour == "drop":
            return self.drop_connection()
        if behaviour == "error_line":
            return self.send_error_json(500, MODEL_ERROR)
        embeddings = [self.embedding(text, body.get("dimensions") or 0) for text, _ in fitted]
        finished_ns = time.perf_counter_ns()
        metrics = {
            "total_duration": finished_ns - started_ns,
            "load_duration": loaded_ns - started_ns,
            "prompt_eval_count": sum(count for _, count in fitted),
        }
        response = {"model": model, "embeddings": embeddings}
        self.send_json(200, response | {key: value for key, value in metrics.items() if value})

    def fit_to_context(self, text: str, context: int, truncate: bool) -> tuple[str, int] | None:
        """Text and its token estimate, cut to fit context when truncating; None if it does not fit."""
        chars_per_token = self.server.standin.chars_per_token
        count = text_token_estimate(text, chars_per_token)
        if count <= context:
            return text, count
        if not truncate:
            return None
        return text[: (context - EMBED_MARKER_TOKENS) * chars_per_token], context

    def embedding(self, text: str, dimensions: int) -> list[float]:
        """The stand-in's vector for text, normalised, cut to dimensions (then normalised again) and in float32."""
        vector = l2_normalize(self.server.standin.embed(text))
        if 0 < dimensions < len(vector):
            vector = l2_normalize(vector[:dimensions])
        return [go_float32(value) for value in vector]

    ROUTES: ClassVar[dict] = {
        "/": {"GET": serve_root, "HEAD": serve_root},
        "/api/version": {"GET": serve_version, "HEAD": serve_version},
        "/api/tags": {"GET": serve_tags, "HEAD": serve_tags},
        "/api/show": {"POST": serve_show},
        "/api/chat": {"POST": serve_chat},
        "/api/embed": {"POST": serve_embed},
    }


def main() -> None:
    """Serve until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Stand-in Ollama server for manual testing.")
    parser.add_argument("--port", type=int, default=11434, help="port to listen on (0 = any free port)")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds to wait before each token")
    args = parser.parse_args()
    with StandinOllama(token_delay=args.token_delay, port=args.port) as standin:
        print(f"Stand-in Ollama listening on {standin.url} (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
