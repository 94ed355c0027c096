"""What the app's chat-turn path (reply service, worker thread, DB writes, flushes) costs over the raw ollama client.

Against the stand-in Ollama emitting about 2000 tokens/s, both paths stream the same reply to
the same one-message request. Prints time to first token and throughput of each and their
ratios (targets: TTFT <= 1.05x, throughput >= 0.95x), twice: with the stand-in answering at
once (a ~2 ms baseline no real model reaches, so the ratio shows the bare overhead), and with
25 ms of prompt evaluation, about what a small model on a GPU takes for a short prompt.
The chatcore path is timed from when sending returns, the message saved and the request planned.
Run: python bench/stream_overhead.py
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import ollama

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatcore import store
from chatcore.backends import OllamaBackend
from chatcore.replies import ReplyService
from tests.ollama_standin import StandinOllama

TOKENS = 1000
TOKEN_DELAY_S = 0.0005  # about 2000 tokens/s
PROMPT_DELAYS_S = (0.0, 0.025)
ROUNDS = 9
MODEL = "llama3:8b"


def measure(pieces) -> tuple[float, float]:
    """Seconds to the first piece, and pieces per second after it."""
    start = time.perf_counter()
    first = None
    count = 0
    for _ in pieces:
        count += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    return first - start, (count - 1) / (end - first)


def raw_client_pieces(client: ollama.Client, prompt: str):
    """The baseline: the official client, nothing else."""
    for part in client.chat(model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True):
        if part.message.content:
            yield part.message.content


def compare(prompt_delay: float, folder: str) -> None:
    """Measure both paths in alternating rounds and print their figures."""
    reply = " ".join(f"w{index}" for index in range(TOKENS))
    standin = StandinOllama(token_delay=TOKEN_DELAY_S, prompt_delay=prompt_delay, reply=lambda messages: reply)
    with standin:
        engine = store.open_engine(f"sqlite:///{folder}/bench-{prompt_delay}.db")
        backend = OllamaBackend(standin.url)
        service = ReplyService(engine, auto_title=False)
        client = ollama.Client(host=standin.url)
        raw, app = [], []
        for round_number in range(ROUNDS):
            prompt = f"question {round_number}"
            chat = store.create_chat(engine, model=MODEL)
            raw.append(measure(raw_client_pieces(client, prompt)))
            app.append(measure(service.send(backend, chat.id, MODEL, prompt).reply.follow()))
            service.settle(chat.id)  # its follow-ups end before the next round
        service.shutdown()
        engine.dispose()
    label = f"prompt evaluation {prompt_delay * 1000:.0f} ms"
    raw_ttft, raw_rate = medians(raw)
    app_ttft, app_rate = medians(app)
    print(f"{label}: raw client ttft {raw_ttft * 1000:.2f} ms, {raw_rate:.0f} tokens/s")
    print(f"{label}: chatcore turn ttft {app_ttft * 1000:.2f} ms, {app_rate:.0f} tokens/s")
    print(f"{label}: ttft added by chatcore {(app_ttft - raw_ttft) * 1000:.2f} ms")
    print(f"{label}: ttft ratio {app_ttft / raw_ttft:.3f}x (target <= 1.05x)")
    print(f"{label}: throughput ratio {app_rate / raw_rate:.3f}x (target >= 0.95x)")


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """Median TTFT and median throughput."""
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        for prompt_delay in PROMPT_DELAYS_S:
            compare(prompt_delay, folder)


if __name__ == "__main__":
    main()
