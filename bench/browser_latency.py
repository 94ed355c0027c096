"""What a user waits for in the browser: the app against the canonical Streamlit chat (bench/canonical_chat.py).

Both run with `streamlit run` against one stand-in Ollama at 200 tokens/s whose reply is a known text of 150
words. One headless Chromium page takes them in turn, the order rotating round by round, each round on a
freshly opened page. In the page, from the Enter keypress (a capturing keydown listener,
performance.now()), it times (a) the first reply word and (b) the whole reply appearing in a chat message
that is not the user's (checked at the animation frame that follows a DOM change, about when it is painted).
Each round waits for the page to be idle, and 300 ms more, before typing, and for it to be idle again after
the reply. One uncounted round of each warms the servers up. The app runs without background titles, and the
stand-in answers its memory summaries at once. Prints one line per figure, medians over the rounds:
- a 2-message chat: app and canonical, and their ratio (target <= 1.10);
- the same canonical chat drawn on a page like the app's (CANONICAL_PAGE=app: its sidebar's widgets, the chat
  in a fragment), and the app's ratio to it: what is left once the page's own cost is the same on both sides;
- a 1,000-message chat, created by the app's own JSON importer (the canonical chat starts with the same
  messages): app and canonical, and the app's figure over its short-chat figure (target <= 1.10);
- the first words of the first reply a just-started server gives (the warm-up rounds hide what a server does
  only once): the app and the canonical chat, each started anew for each of FRESH_STARTS rounds.
Run: python bench/browser_latency.py [--rounds 5]   (needs Debian's chromium and the playwright package)
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatcore import archive, importer, memory, store
from tests.ollama_standin import StandinOllama

# ---- What this benchmark assumes about the app; when its chat page changes, change it here. ----
APP_SCRIPT = "streamlit_app.py"
# No background title or document summary requests competing with the measured reply.
APP_ENV = {"CHATCORE_AUTO_TITLE": "0", "CHATCORE_SUMMARIES": "0", "CHATCORE_BACKEND": "ollama"}
APP_CHAT_PATH = "/?chat={chat_id}"  # the app opens the chat the URL names, in a new session
# Streamlit 1.67 test ids, shared by both apps. A reply has ended when its whole text is shown and the
# script is idle (the app reruns once more after the stream; its input is disabled while a reply is written).
INPUT = '[data-testid="stChatInput"] textarea'
MESSAGE = '[data-testid="stChatMessage"]'
USER_AVATAR = '[data-testid="stChatMessageAvatarUser"]'  # inside each of the user's messages
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
APP_CHATS_LISTED = 20  # sidebar.CHATS_STEP: the chats its sidebar lists before "Show more"
SETTLE_MS = 300  # the frontend settles a moment after a run ends; typing sooner can lose the message


def is_memory_request(messages: list[dict]) -> bool:
    """The app's rolling-memory summary request, sent in the background after replies in long chats."""
    return bool(messages) and messages[0].get("content") == memory.SUMMARY_INSTRUCTIONS


# ---- The benchmark. ----
ROOT = Path(__file__).resolve().parents[1]
CANONICAL_SCRIPT = "bench/canonical_chat.py"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
MODEL = "llama3:8b"
TOKEN_DELAY_S = 0.005  # 200 tokens/s
ALPHABET = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon"
GREEK = [*ALPHABET.split(), "phi", "chi", "psi", "omega"]
REPLY = " ".join(GREEK[index % len(GREEK)] for index in range(150))  # 150 tokens; its first word is known
FIRST_WORD = GREEK[0]
SHORT, LONG = 2, 1_000
FRESH_STARTS = 3  # rounds of the first-reply figure: each starts the app and the canonical chat anew
TARGET = 1.10
SAME_PAGE = "canonical on a page like the app's"
FIGURES = ("TTFT", "whole reply")
REPLY_METRICS = {"prompt_tokens": 0, "reply_tokens": 150, "prompt_ms": 30.0, "reply_ms": 750.0, "total_ms": 800.0}
TIMEOUT_MS = 120_000
TOPICS = ("Lisbon's trams", "sourdough starters", "the borrow checker", "tide tables", "bicycle gearing",
          "Bach's fugues", "compost heaps", "SQLite indexes", "night photography", "Roman roads")  # fmt: skip

# Armed on the page before typing: records the Enter keydown, then, at the first animation frame after any
# DOM change (about when it is painted), whether a chat message that is not the user's holds the reply's
# first word, then the whole reply. No message holds a word of it before (checked), so one that does is the
# new reply wherever the page puts it: the app shows a sliding window of the newest messages, so their count
# need not grow, and a message's avatar can be drawn after its text.
ARM = """([firstWord, reply, message, userAvatar]) => {
  const texts = () => Array.from(document.querySelectorAll(message))
    .filter(m => !m.querySelector(userAvatar)).map(m => m.textContent);
  const bench = window.__bench = {enter: null, first: null, whole: null};
  let pending = false;
  const check = () => {
    pending = false;
    const now = performance.now(), found = texts().filter(text => text.includes(firstWord));
    if (bench.first === null && found.length) bench.first = now;
    if (found.some(text => text.includes(reply))) { bench.whole = now; observer.disconnect(); }
  };
  const observer = new MutationObserver(() => {
    if (bench.enter !== null && !pending) { pending = true; requestAnimationFrame(check); }
  });
  observer.observe(document.body, {subtree: true, childList: true, characterData: true});
  window.addEventListener("keydown", event => {
    if (event.key === "Enter" && bench.enter === null) bench.enter = performance.now();
  }, {capture: true});
  return {replies: texts().length, holdingTheReply: texts().filter(text => text.includes(firstWord)).length};
}"""


def standin_reply(messages: list[dict]) -> str:
    """The known reply; a one-line summary for the app's memory requests, so they end at once."""
    return "Earlier, the user asked about many topics." if is_memory_request(messages) else REPLY


def history(count: int) -> list[dict]:
    """`count` alternating questions and answers with some Markdown; none holds a word of the reply."""
    messages = []
    for index in range(count):
        topic = TOPICS[index // 2 % len(TOPICS)]
        if index % 2 == 0:
            content = f"Question {index // 2 + 1}: what should I know about {topic}, and why does it matter?"
        else:
            content = (f"Here are three things worth knowing about {topic}:\n\n"
                       f"- **History.** People have cared about {topic} for a long time, for good reasons.\n"
                       f"- **Practice.** Start small, keep notes, and compare what you see with what you expected.\n"
                       f"- **Pitfalls.** Most trouble with {topic} comes from hurrying the first steps.\n\n"
                       "In short: patience pays, and the details are where the fun is.")  # fmt: skip
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": content})
    return messages


def export_chat(number: int, title: str, messages: list[dict], began: datetime) -> dict:
    """One chat in the app's JSON export format, its messages a second apart, its replies with their metrics."""
    records = []
    for index, message in enumerate(messages, start=1):
        reply = message["role"] == "assistant"
        metrics = REPLY_METRICS | {"prompt_tokens": 40 * index} if reply else dict.fromkeys(REPLY_METRICS)
        records.append(
            message
            | metrics
            | {
                "id": index,
                "status": "complete",
                "error": "",
                "model": MODEL if reply else "",
                "tokens": len(message["content"]) // 4,
                "created_at": (began + timedelta(seconds=index)).isoformat(),
            }
        )
    ended = began + timedelta(seconds=len(messages))
    return {
        "id": number,
        "title": title,
        "model": MODEL,
        "system_prompt": "",
        "options": {},
        "created_at": began.isoformat(),
        "updated_at": ended.isoformat(),
        "messages": records,
    }


def seed_app(database_url: str, rounds: int) -> dict[str, list[int]]:
    """Import a short chat per round (and one to warm up), a long chat per round and a short chat per fresh start;
    their ids by kind."""
    began = datetime(2026, 1, 1, tzinfo=UTC)
    plan = [("warm-up", SHORT)] + [(f"short {n}", SHORT) for n in range(rounds)]
    plan += [(f"long {n}", LONG) for n in range(rounds)] + [(f"fresh {n}", SHORT) for n in range(FRESH_STARTS)]
    chats = [export_chat(number, f"bench {name}", history(size), began + timedelta(days=number))
             for number, (name, size) in enumerate(plan, start=1)]  # fmt: skip
    data = {"format_version": archive.FORMAT_VERSION, "exported_at": datetime.now(UTC).isoformat(), "chats": chats}
    engine = store.open_engine(database_url)
    try:
        report = importer.import_archive(engine, json.dumps(data).encode())
        if len(report.imported) != len(plan):
            raise RuntimeError(f"the import added {len(report.imported)} of {len(plan)} chats: {report.summary()}")
        ids = {chat.title: chat.id for chat in store.list_chats(engine, None)}
    finally:
        engine.dispose()
    kinds = ("warm-up", "short", "long", "fresh")
    return {kind: [ids[f"bench {name}"] for name, _ in plan if name.split()[0] == kind] for kind in kinds}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`streamlit run` of a script in a source tree (this one by default) on a free loopback port, logged to a file."""

    def __init__(self, script: str, env: dict[str, str], log: Path, tree: Path = ROOT):
        self.script, self.env, self.log, self.tree = script, env, log, tree
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "streamlit", "run", self.script, "--server.port", str(self.port),
                   "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
        with self.log.open("w") as log:  # its own session: Ctrl-C reaches the benchmark, which stops it
            self.process = subprocess.Popen(command, cwd=self.tree, env=os.environ | self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def wait_until_healthy(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.script} exited early:\n{self.log_tail()}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/_stcore/health", timeout=1).text == "ok":
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.script} did not become healthy:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def chromium_page():
    """One headless Chromium page, closed with its browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 800})
        finally:
            with suppress(Exception):  # after Ctrl-C the driver may already be gone
                browser.close()


def settle(page) -> None:
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    page.wait_for_timeout(SETTLE_MS)  # not measured: lets the frontend settle before typing


def time_reply(page, url: str, question: str) -> tuple[float, float]:
    """Open the chat, send a question; seconds from Enter to the first reply word and to the whole reply."""
    page.goto(url)
    page.wait_for_selector(INPUT, timeout=TIMEOUT_MS)
    settle(page)
    armed = page.evaluate(ARM, [FIRST_WORD, REPLY, MESSAGE, USER_AVATAR])
    if not armed["replies"] or armed["holdingTheReply"]:
        raise RuntimeError(f"{url}: expected earlier replies, none holding {FIRST_WORD!r}; found {armed}")
    box = page.locator(INPUT)
    box.fill(question)
    box.press("Enter")
    page.wait_for_function("() => window.__bench.whole !== null", timeout=TIMEOUT_MS, polling=50)
    bench = page.evaluate("() => window.__bench")
    settle(page)  # the reply has ended: nothing of it runs into the next round
    return (bench["first"] - bench["enter"]) / 1000, (bench["whole"] - bench["enter"]) / 1000


def compare(label: str, page, app_urls: list[str], baselines: dict[str, str]) -> tuple[tuple[float, float], ...]:
    """The app (a chat of its own each round) and each baseline in turn, the order rotating round by round;
    the medians (TTFT, whole), the app's first."""
    results = {"app": []} | {name: [] for name in baselines}
    for number, app_url in enumerate(app_urls):
        order = [("app", app_url), *baselines.items()]
        for name, url in order[number % len(order) :] + order[: number % len(order)]:
            first, whole = time_reply(page, url, f"Round {number + 1}: what comes next?")
            results[name].append((first, whole))
            progress = f"first words {first:.3f} s, whole reply {whole:.3f} s"
            print(f"{label}, round {number + 1}, {name}: {progress}", file=sys.stderr, flush=True)
    return tuple(
        (statistics.median(first for first, _ in samples), statistics.median(whole for _, whole in samples))
        for samples in results.values()
    )


def app_server(folder: Path, ollama_url: str, database: str, name: str = "app", tree: Path = ROOT) -> Server:
    """The app of a source tree on the database, its data in `folder`, logging there to `name`.log."""
    env = APP_ENV | {"OLLAMA_HOST": ollama_url, "CHATCORE_DATA_DIR": str(folder), "CHATCORE_DB_URL": database}
    return Server(APP_SCRIPT, env, folder / f"{name}.log", tree=tree)


def canonical_server(folder: Path, ollama_url: str, size: int, name: str, **page: str) -> Server:
    """The canonical chat, starting with `size` messages, logging to `name`.log; `page` adds to its environment."""
    seed = folder / f"history-{size}.json"
    seed.write_text(json.dumps(history(size)))
    env = {"OLLAMA_HOST": ollama_url, "CANONICAL_MODEL": MODEL, "CANONICAL_HISTORY": str(seed)} | page
    return Server(CANONICAL_SCRIPT, env, folder / f"{name}.log")


def run_servers(stack: ExitStack, servers: dict[str, Server]) -> None:
    """Start the servers together, each stopped when the stack closes; return once all answer."""
    for server in servers.values():
        stack.callback(server.stop)
        server.start()
    for server in servers.values():
        server.wait_until_healthy()


def start_servers(stack: ExitStack, folder: Path, ollama_url: str, database: str, chats: int) -> dict:
    """The app, a canonical chat per history size, and the short one on a page like the app's (listing `chats`
    chats), started together; each stopped when the stack closes."""
    listed = str(min(chats, APP_CHATS_LISTED))
    servers = {
        "app": app_server(folder, ollama_url, database),
        SHORT: canonical_server(folder, ollama_url, SHORT, f"canonical-{SHORT}"),
        LONG: canonical_server(folder, ollama_url, LONG, f"canonical-{LONG}"),
        SAME_PAGE: canonical_server(
            folder, ollama_url, SHORT, "canonical-same-page", CANONICAL_PAGE="app", CANONICAL_CHATS=listed
        ),
    }
    run_servers(stack, servers)
    return servers


def measure_first_replies(page, folder: Path, ollama_url: str, database: str, chat_ids: list[int]) -> None:
    """Print the first words of the first reply of a just-started app and canonical chat, a pair started per chat."""
    firsts = {"app": [], "canonical": []}
    for number, chat_id in enumerate(chat_ids):
        with ExitStack() as stack:
            servers = {
                "app": app_server(folder, ollama_url, database, f"app-fresh-{number}"),
                "canonical": canonical_server(folder, ollama_url, SHORT, f"canonical-fresh-{number}"),
            }
            run_servers(stack, servers)
            urls = {name: server.url for name, server in servers.items()}
            urls["app"] += APP_CHAT_PATH.format(chat_id=chat_id)
            for name in sorted(urls, reverse=number % 2 == 1):
                first, _ = time_reply(page, urls[name], f"Fresh start {number + 1}: what comes next?")
                firsts[name].append(first)
                print(f"fresh start {number + 1}, {name}: first words {first:.3f} s", file=sys.stderr, flush=True)
    app_s, canonical_s = (statistics.median(firsts[name]) for name in ("app", "canonical"))
    ratio = f"ratio {app_s / canonical_s:.2f}"
    print(f"first reply of a just-started server TTFT: app {app_s:.3f} s, canonical {canonical_s:.3f} s, {ratio}")


def measure(page, servers: dict, chats: dict[str, list[int]]) -> None:
    """Print the short chat's figures, then the long chat's."""
    app = servers["app"].url + APP_CHAT_PATH
    urls = {kind: [app.format(chat_id=chat_id) for chat_id in ids] for kind, ids in chats.items()}
    short = {"canonical": servers[SHORT].url, SAME_PAGE: servers[SAME_PAGE].url}
    compare("warm-up (not counted)", page, urls["warm-up"], short)  # a server's first runs are slower
    app_short, canonical_short, same_page = compare("short chat", page, urls["short"], short)
    for figure, app_s, canonical_s, page_s in zip(FIGURES, app_short, canonical_short, same_page, strict=True):
        ratio = f"ratio {app_s / canonical_s:.2f} (target <= {TARGET:.2f})"
        print(f"short chat {figure}: app {app_s:.3f} s, canonical {canonical_s:.3f} s, {ratio}", flush=True)
        ratio = f"app / {SAME_PAGE} ratio {app_s / page_s:.2f}"
        print(f"short chat {figure}: {SAME_PAGE} {page_s:.3f} s, {ratio}", flush=True)
    long = {"canonical": servers[LONG].url}
    app_long, canonical_long = compare(f"{LONG:,}-message chat", page, urls["long"], long)
    for figure, app_s, canonical_s, short_s in zip(FIGURES, app_long, canonical_long, app_short, strict=True):
        ratio = f"app / app short-chat ratio {app_s / short_s:.2f} (target <= {TARGET:.2f})"
        print(f"{LONG:,}-message chat {figure}: app {app_s:.3f} s, canonical {canonical_s:.3f} s, {ratio}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per chat size (default 5)")
    rounds = parser.parse_args().rounds
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still runs the clean-up below
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatcore-latency-")))
        standin = stack.enter_context(StandinOllama(token_delay=TOKEN_DELAY_S, reply=standin_reply))
        database = f"sqlite:///{folder / 'chatcore.db'}"
        chats = seed_app(database, rounds)
        servers = start_servers(stack, folder, standin.url, database, sum(map(len, chats.values())))
        page = stack.enter_context(chromium_page())
        try:
            measure(page, servers, chats)
            measure_first_replies(page, folder, standin.url, database, chats["fresh"])
        except Exception:
            for name, server in servers.items():
                print(f"--- the end of the {name} server's log ---\n{server.log_tail()}", file=sys.stderr)
            raise


if __name__ == "__main__":
    main()
