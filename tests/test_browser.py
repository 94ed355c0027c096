"""The real thing: `streamlit run` driven by Debian's chromium through Playwright."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from chatcore import store
from chatcore.captions import file_size
from chatcore.models import Status
from tests.documents import SAMPLES, sample
from tests.history import fill_chat
from tests.ollama_standin import StandinOllama

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
STALE = '[data-stale="true"]'  # an element of an earlier run, faded until the frontend removes it
MESSAGES = '[data-testid="stChatMessage"]'
INPUT = '[data-testid="stChatInput"] textarea'
MAIN = '[data-testid="stMain"]'
SIDEBAR = '[data-testid="stSidebar"]'
SEARCH = f'{SIDEBAR} input[aria-label="Search chats"]'
DOWNLOAD_BUTTON = '[data-testid="stDownloadButton"] button'
ANSWER = (
    "Here is what I can do for you:\n\n"
    "- answer questions and explain ideas\n"
    "- draft and edit text\n"
    "- help with code\n\n"
    "Everything stays on this computer."
)


def missing_browser_reason() -> str | None:
    if not CHROMIUM.exists():
        return "Debian chromium is not installed (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def browser():
    if reason := missing_browser_reason():
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ollama():
    """The stand-in Ollama the app talks to, streaming slowly; tests may change its reply and delays."""
    with StandinOllama(token_delay=0.08, reply=lambda messages: ANSWER) as server:
        yield server


def app_database(folder: Path) -> str:
    """The URL of the database an app served from `folder` keeps its chats in."""
    return f"sqlite:///{folder / 'chat.db'}"


@contextmanager
def serve_app(
    tmp_path: Path,
    ollama: StandinOllama,
    summaries: bool,
    port: int | None = None,
    database: str | None = None,
    titles: bool = False,
) -> Iterator[str]:
    """`streamlit run` on a loopback port (a free one unless given), talking to the stand-in Ollama; its URL.

    It keeps its log in `tmp_path`, and its chats there too unless `database` names another database. With
    `titles`, it asks the model to title each new chat, as it does by default.
    """
    port = port or free_port()
    database = database or app_database(tmp_path)
    env = os.environ | {
        "CHATCORE_DB_URL": database,
        "OLLAMA_HOST": ollama.url,
        "CHATCORE_AUTO_TITLE": "1" if titles else "0",
        "CHATCORE_SUMMARIES": "1" if summaries else "0",
    }
    env.pop("CHATCORE_BACKEND", None)
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port)]
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", server, tmp_path / "streamlit.log")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


@pytest.fixture
def app(tmp_path, ollama):
    """The app, without document summaries (they would be chat requests of their own)."""
    with serve_app(tmp_path, ollama, summaries=False) as url:
        yield url


@pytest.fixture
def app_with_summaries(tmp_path, ollama):
    """The app, writing document summaries in the background."""
    with serve_app(tmp_path, ollama, summaries=True) as url:
        yield url


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit did not become healthy:\n{log.read_text()}")


def open_page(browser, url, **options):
    page = browser.new_page(**({"viewport": {"width": 1200, "height": 800}} | options))
    page.goto(url)
    page.wait_for_selector(INPUT, timeout=30_000)
    settle(page)
    return page


def settle(page) -> None:
    """Wait for the run to end and the frontend to drop what the run no longer draws."""
    page.wait_for_selector(IDLE, timeout=30_000)
    page.wait_for_selector(STALE, state="detached", timeout=30_000)


def ask(page, text: str) -> None:
    box = page.locator(INPUT)
    box.fill(text)
    box.press("Enter")


def test_chat_streams_and_survives_a_reload(browser, app, tmp_path):
    from playwright.sync_api import expect

    page = open_page(browser, app)
    ask(page, "What can you do?")
    reply = page.locator(MESSAGES).nth(1)
    expect(reply).to_contain_text("Here is what", timeout=15_000)
    assert "Everything stays" not in reply.inner_text()  # mid-stream: the text is still arriving
    expect(reply).to_contain_text("Everything stays on this computer.", timeout=15_000)
    settle(page)
    expect(reply.locator('[data-testid="stCaptionContainer"]')).to_contain_text("tokens/s")
    expect(page.get_by_text("context: 2 of 2 messages")).to_be_visible()
    save_screenshot(page, tmp_path)

    page.reload()
    page.wait_for_selector(INPUT, timeout=30_000)
    settle(page)
    expect(page.locator(MESSAGES)).to_have_count(2)
    expect(page.locator(MESSAGES).first).to_contain_text("What can you do?")
    expect(page.locator(MESSAGES).last).to_contain_text("Everything stays on this computer.")
    expect(page.locator(SIDEBAR)).to_contain_text("What can you do?")
    page.close()


def reload(page) -> None:
    page.reload()
    page.wait_for_selector(INPUT, timeout=30_000)
    settle(page)


def test_stop_keeps_the_partial_reply(browser, app):
    from playwright.sync_api import expect

    page = open_page(browser, app)
    ask(page, "Tell me everything")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Here is", timeout=15_000)
    page.get_by_role("button", name="Stop").click()
    settle(page)
    reload(page)
    reply = page.locator(MESSAGES).nth(1)
    expect(reply).to_contain_text("Here is")
    expect(reply).to_contain_text("stopped")
    assert "Everything stays" not in reply.inner_text()
    page.close()


def test_a_reply_survives_switching_chats_and_reloading(browser, app):
    from playwright.sync_api import expect

    page = open_page(browser, app)
    ask(page, "Tell me everything")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Here is", timeout=15_000)
    page.get_by_role("button", name="New chat", exact=True).click()  # mid-stream
    settle(page)
    expect(page.locator(MESSAGES)).to_have_count(0)
    reload(page)
    page.get_by_role("button", name="Tell me everything").click()
    settle(page)
    reply = page.locator(MESSAGES).nth(1)
    expect(reply).to_contain_text("Everything stays on this computer.", timeout=15_000)
    expect(reply).not_to_contain_text("interrupted")
    expect(reply).not_to_contain_text("stopped")
    page.close()


CHAT_INPUTS = '[data-testid="stChatInput"]'


def open_mid_reply(browser, app, ollama, question: str):
    """A page on the app whose reply to `question` streams slowly (about 12 s), its first words on screen."""
    from playwright.sync_api import expect

    ollama.token_delay = 0.4  # long enough for a loaded machine to act before the reply ends
    page = open_page(browser, app)
    ask(page, question)
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Here is", timeout=15_000)
    return page


def sample_while(page, streaming, probe: str) -> list:
    """Evaluate `probe` in the page again and again while `streaming()` holds; the values seen."""
    seen = []
    deadline = time.monotonic() + 30
    while streaming() and time.monotonic() < deadline:
        seen.append(page.evaluate(probe))
    return seen


def reply_status(database: str, text: str) -> str | None:
    """The status of the reply to the user's message `text`, if there is one yet."""
    engine = store.open_engine(database)
    try:
        messages = store.list_messages(engine, store.list_chats(engine, limit=1)[0].id)
    finally:
        engine.dispose()
    asked = [index for index, message in enumerate(messages) if message.role == "user" and message.content == text]
    replies = [message for message in messages[asked[0] + 1 :] if message.role == "assistant"] if asked else []
    return replies[0].status if replies else None


def test_exactly_one_chat_input_while_a_reply_streams(browser, app, tmp_path, ollama):

    database = app_database(tmp_path)
    page = open_mid_reply(browser, app, ollama, "first question")
    streaming = lambda: reply_status(database, "first question") == Status.STREAMING  # noqa: E731
    count = f"document.querySelectorAll('{CHAT_INPUTS}').length"
    inputs = sample_while(page, streaming, f"[{count}, document.querySelector('{INPUT}').disabled]")
    assert len(inputs) > 3
    assert {tuple(sample) for sample in inputs} == {(1, False)}  # one input, usable throughout
    settle(page)
    assert page.evaluate(count) == 1
    page.close()


def test_a_message_sent_while_a_reply_streams_is_saved_at_once_and_answered_after(browser, app, tmp_path, ollama):
    from playwright.sync_api import expect

    database = app_database(tmp_path)
    page = open_mid_reply(browser, app, ollama, "first question")
    ask(page, "typed meanwhile")
    expect(page.get_by_text("Queued: sent when the reply above ends.")).to_be_visible(timeout=5_000)
    assert reply_status(database, "first question") == Status.STREAMING
    engine = store.open_engine(database)
    asked = [m for m in store.list_messages(engine, store.list_chats(engine, limit=1)[0].id) if m.role == "user"]
    engine.dispose()
    assert [(m.content, m.status) for m in asked] == [
        ("first question", Status.COMPLETE),
        ("typed meanwhile", Status.QUEUED),
    ]
    expect(page.locator(MESSAGES)).to_have_count(4, timeout=15_000)
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Everything stays on this computer.")
    expect(page.locator(MESSAGES).nth(2)).to_contain_text("typed meanwhile")
    expect(page.locator(MESSAGES).nth(3)).to_contain_text("Everything stays on this computer.", timeout=15_000)
    wait_for(lambda: reply_status(database, "typed meanwhile") == Status.COMPLETE, "the queued message's reply")
    page.close()


def test_the_app_stops_at_once_while_a_reply_is_written_keeping_its_text(browser, ollama, tmp_path):
    """It waited for the reply's last word, minutes with a slow model: Ctrl-C seemed to do nothing."""
    from playwright.sync_api import expect

    ollama.token_delay = 0.4  # the reply would take 12 s more, beyond the 10 s the server is given to stop
    with serve_app(tmp_path, ollama, summaries=False) as url:
        page = open_page(browser, url)
        ask(page, "a long answer, please")
        expect(page.locator(MESSAGES).nth(1)).to_contain_text("Here is", timeout=15_000)
        page.close()
    assert reply_status(app_database(tmp_path), "a long answer, please") == Status.STOPPED


def test_stop_works_on_the_first_click_with_focus_in_the_input(browser, app, tmp_path, ollama):
    from playwright.sync_api import expect

    database = app_database(tmp_path)
    page = open_mid_reply(browser, app, ollama, "Tell me everything")
    page.locator(INPUT).click()
    page.keyboard.type("a thought in progress")
    page.get_by_role("button", name="Stop").click()
    wait_for(lambda: ollama.disconnects == 1, "the stand-in to see the request closed")
    wait_for(lambda: reply_status(database, "Tell me everything") == Status.STOPPED, "the reply to be marked stopped")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("stopped", timeout=5_000)
    assert page.locator(INPUT).input_value() == "a thought in progress"
    page.close()


def test_stop_while_the_model_is_loading_closes_the_request_at_once(browser, app, tmp_path, ollama):
    from playwright.sync_api import expect

    ollama.prompt_delay = 60  # a big model loading: not a byte of the reply yet
    database = app_database(tmp_path)
    page = open_page(browser, app)
    ask(page, "Anyone there?")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Waiting for the model's first words", timeout=10_000)
    page.locator(INPUT).click()
    page.get_by_role("button", name="Stop").click()
    wait_for(lambda: ollama.disconnects == 1, "the stand-in to see the request closed")
    wait_for(lambda: reply_status(database, "Anyone there?") == Status.STOPPED, "the reply to be marked stopped")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("stopped", timeout=5_000)
    page.close()


def test_a_chat_still_replying_shows_only_its_own_messages(browser, app, ollama):
    from playwright.sync_api import expect

    ollama.token_delay = 0
    ollama.reply = lambda messages: "Bravo answer"
    page = open_page(browser, app)
    for count, question in enumerate(("bravo one", "bravo two", "bravo three"), start=1):
        ask(page, question)
        expect(page.locator(MESSAGES)).to_have_count(2 * count, timeout=15_000)
        expect(page.locator(MESSAGES).last).to_contain_text("Bravo answer", timeout=15_000)
        settle(page)
    page.get_by_role("button", name="New chat", exact=True).click()
    settle(page)
    ollama.token_delay = 0.1
    ollama.reply = lambda messages: ANSWER
    ask(page, "alpha question")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Here is", timeout=15_000)
    sidebar = page.locator(SIDEBAR)
    sidebar.get_by_role("button", name="bravo one").click()
    expect(page.locator(MESSAGES)).to_have_count(6, timeout=15_000)
    sidebar.get_by_role("button", name="alpha question").click()
    expect(page.locator(MESSAGES).first).to_contain_text("alpha question", timeout=15_000)
    streaming = lambda: "Everything stays" not in page.locator(MESSAGES).last.inner_text()  # noqa: E731
    seen = sample_while(page, streaming, f"document.querySelector('{MAIN}').innerText")
    assert len(seen) > 3
    assert not [text for text in seen if "ravo" in text]
    page.close()


VIEW = f"""() => {{
  const messages = document.querySelectorAll('{MESSAGES}');
  return {{newest: messages[messages.length - 1].getBoundingClientRect().bottom,
          input: document.querySelector('{CHAT_INPUTS}').getBoundingClientRect().top,
          scrolled: document.querySelector('{MAIN}').scrollTop}};
}}"""


# Where the page is scrolled to once it has stayed there for five frames in a row.
SCROLL_AT_REST = f"""() => new Promise(resolve => {{
  const main = document.querySelector('{MAIN}');
  let last = main.scrollTop, still = 0;
  const look = () => {{
    still = main.scrollTop === last ? still + 1 : 0;
    last = main.scrollTop;
    if (still >= 5) resolve(last); else requestAnimationFrame(look);
  }};
  requestAnimationFrame(look);
}})"""


def newest_in_view(view: dict) -> bool:
    """Whether the bottom of the newest message shows, above the message input."""
    return 0 < view["newest"] <= view["input"]


def test_the_newest_message_stays_in_view_as_a_reply_is_written_until_the_user_scrolls_up(
    browser, app, tmp_path, ollama
):
    from playwright.sync_api import expect

    database = app_database(tmp_path)
    engine = store.open_engine(database)
    fill_chat(engine, store.create_chat(engine, model="llama3:8b").id, 12)  # taller than the window
    engine.dispose()
    ollama.token_delay = 0.2
    page = open_page(browser, app)
    opened = page.evaluate(VIEW)
    assert opened["scrolled"] > 0 and newest_in_view(opened)  # the chat opens at its newest message
    ask(page, "a question")
    reply = page.locator(MESSAGES).last
    expect(reply).to_contain_text("Here is", timeout=15_000)
    following = sample_while(page, lambda: "draft and edit" not in reply.inner_text(), VIEW)
    assert len(following) > 3 and all(map(newest_in_view, following))
    page.mouse.move(700, 300)
    page.mouse.wheel(0, -40)  # the user scrolls up a line to read: the page stays where they put it
    wait_for(lambda: page.evaluate(VIEW)["scrolled"] < following[-1]["scrolled"], "the scroll up")
    page.evaluate(SCROLL_AT_REST)  # a wheel scrolls smoothly, over several frames
    # The browser moves the page a little itself as the page changes (keeping what is in view in place): that is no
    # return to the bottom, though it scrolls down within a line of it.
    put = page.evaluate(f"() => ++document.querySelector('{MAIN}').scrollTop")
    reading = sample_while(page, lambda: "Everything stays" not in reply.inner_text(), VIEW)
    assert reading and all(view["scrolled"] == put for view in reading)
    settle(page)
    assert page.evaluate(VIEW)["scrolled"] <= put  # the history's oldest message leaving may pull it up, never down
    page.close()


def test_a_search_hit_in_a_long_chat_opens_there_highlighted(browser, app, tmp_path):
    from playwright.sync_api import expect

    engine = store.open_engine(app_database(tmp_path))
    chat = store.create_chat(engine, model="llama3:8b")
    store.add_message(engine, chat.id, "user", "Where does the lighthouse keeper live?")
    fill_chat(engine, chat.id, 1_999)
    store.add_message(engine, chat.id, "assistant", "The last reply.")
    engine.dispose()
    page = open_page(browser, app)
    search = page.locator(SEARCH)
    search.fill("lighthouse")
    search.press("Enter")
    page.get_by_role("button", name=re.compile("lighthouse")).click()
    found = page.locator(".st-key-found")
    expect(found).to_contain_text("Where does the lighthouse keeper live?", timeout=15_000)
    expect(found).to_be_in_viewport()
    settle(page)
    assert page.locator(MESSAGES).count() < 200
    regenerate = page.get_by_role("button", name=re.compile("Regenerate"))
    expect(regenerate).to_have_count(0)  # the last reply, which it would write anew, is out of view
    page.get_by_role("button", name=re.compile("Show the latest messages")).click()
    expect(found).to_have_count(0)
    settle(page)
    assert newest_in_view(page.evaluate(VIEW))  # back at the newest message
    expect(regenerate).to_be_visible()
    page.close()


def wait_for(condition, what: str, timeout: float = 10) -> None:
    """Wait until `condition()` holds, or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_reply_is_followed_and_stopped_from_another_server_on_the_same_database(browser, ollama, tmp_path):
    from playwright.sync_api import expect

    database = app_database(tmp_path)
    writing, following = tmp_path / "writing", tmp_path / "following"
    writing.mkdir()
    following.mkdir()
    with (
        serve_app(writing, ollama, summaries=False, database=database) as writer_url,
        serve_app(following, ollama, summaries=False, database=database) as follower_url,
    ):
        follower = open_page(browser, follower_url)
        writer = open_mid_reply(browser, writer_url, ollama, "Tell me everything")
        ollama.token_delay = 3  # still writing while the other server's page opens the chat, on a busy machine too
        follower.reload()  # not settled after: it opens the chat being written, whose fragment keeps running
        follower.wait_for_selector(INPUT, timeout=30_000)
        follower.locator(SIDEBAR).get_by_role("button", name="Tell me everything").click()
        followed = follower.locator(MESSAGES).nth(1)
        expect(followed).to_contain_text("Here is", timeout=15_000)
        shown = followed.inner_text()
        wait_for(lambda: len(followed.inner_text()) > len(shown), "the reply to grow on screen as it is written")
        assert reply_status(database, "Tell me everything") == Status.STREAMING
        follower.get_by_role("button", name="Stop").click()
        wait_for(lambda: ollama.disconnects == 1, "the writing server to close its request")
        wait_for(lambda: reply_status(database, "Tell me everything") == Status.STOPPED, "the reply to be stopped")
        expect(followed).to_contain_text("stopped", timeout=10_000)
        expect(writer.locator(MESSAGES).nth(1)).to_contain_text("stopped", timeout=10_000)
        assert "Everything stays" not in followed.inner_text()
        writer.close()
        follower.close()


def test_export_page_downloads_the_chat_as_markdown(browser, app):
    from playwright.sync_api import expect

    page = open_page(browser, app)
    ask(page, "What can you do?")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Everything stays on this computer.", timeout=15_000)
    settle(page)
    page.get_by_role("link", name="Export and import").click()
    download_button = page.locator(f"{MAIN} {DOWNLOAD_BUTTON}")
    name = f"what-can-you-do-{time.strftime('%Y-%m-%d', time.gmtime())}.md"
    expect(download_button).to_contain_text(f"Download {name}", timeout=15_000)
    settle(page)
    with page.expect_download() as download:
        download_button.click()
    assert download.value.suggested_filename == name
    markdown = Path(download.value.path()).read_text()
    assert markdown.startswith("# What can you do?\n")
    assert "### User" in markdown and "### Assistant" in markdown
    assert ANSWER in markdown
    page.close()


CHOSEN_CHATS = f'{MAIN} [aria-label="Selected values"] [data-tag]'


def test_chats_of_the_same_title_are_chosen_apart_and_exported_together(browser, app, tmp_path):
    """Streamlit tells a multiselect's options apart by label: two chats titled alike were one option."""
    from playwright.sync_api import expect

    engine = store.open_engine(app_database(tmp_path))
    for question, started in (("first", datetime(2025, 3, 1, 9, 0, tzinfo=UTC)), ("second", datetime.now(UTC))):
        chat = store.create_chat(engine, model="llama3:8b")
        store.add_message(engine, chat.id, "user", f"The {question} question")
        store.update_chat(engine, chat.id, created_at=started)  # both keep the title "New chat"
    engine.dispose()
    page = open_page(browser, app)
    page.get_by_role("link", name="Export and import").click()
    chosen = page.locator(CHOSEN_CHATS)
    expect(chosen).to_have_count(1, timeout=15_000)  # the current chat
    settle(page)
    page.get_by_role("combobox", name="Chats").fill("New chat")
    page.get_by_role("option", name=re.compile("^New chat")).click(timeout=5_000)  # the other one
    settle(page)
    expect(chosen).to_have_text([re.compile(r"^New chat · \d+ \w+ \d\d:\d\d$"), "New chat · 1 Mar 2025 09:00"])
    page.keyboard.press("Escape")
    page.get_by_text("JSON", exact=True).click()
    download_button = page.locator(f"{MAIN} {DOWNLOAD_BUTTON}")
    expect(download_button).to_contain_text(".json", timeout=15_000)
    settle(page)
    page.screenshot(path=str(tmp_path / "export-same-titles.png"))  # to look at
    with page.expect_download() as download:
        download_button.click()
    chats = json.loads(Path(download.value.path()).read_text())["chats"]
    assert sorted(chat["messages"][0]["content"] for chat in chats) == ["The first question", "The second question"]
    page.close()


def test_a_chat_chosen_for_export_stays_chosen_when_its_title_is_written_meanwhile(browser, app, tmp_path):
    """Streamlit knows a multiselect's choice by its label: a chat whose title was written (after its first reply) while
    the Export page was open was dropped from the choice at the next run but one."""
    from playwright.sync_api import expect

    engine = store.open_engine(app_database(tmp_path))
    chat = store.create_chat(engine, model="llama3:8b")
    store.add_message(engine, chat.id, "user", "Where should I eat in Lisbon?")
    store.update_chat(engine, chat.id, title="Where should I eat in Lisbon?")
    page = open_page(browser, app)
    page.get_by_role("link", name="Export and import").click()
    chosen = page.locator(CHOSEN_CHATS)
    expect(chosen).to_have_text([re.compile(r"^Where should I eat in Lisbon\? · ")], timeout=15_000)
    settle(page)
    store.update_chat(engine, chat.id, title="Eating in Lisbon")  # as its model titles it
    engine.dispose()
    download_button = page.locator(f"{MAIN} {DOWNLOAD_BUTTON}")
    day = time.strftime("%Y-%m-%d", time.gmtime())
    page.get_by_text("JSON", exact=True).click()  # a run, which draws the new title
    expect(download_button).to_contain_text(f"Download eating-in-lisbon-{day}.json", timeout=15_000)
    settle(page)
    page.get_by_text("Plain text", exact=True).click()  # the next run, which reads the choice by that title
    expect(download_button).to_contain_text(f"Download eating-in-lisbon-{day}.txt", timeout=15_000)
    expect(chosen).to_have_text([re.compile("^Eating in Lisbon · ")])
    page.close()


def test_a_model_pulled_while_the_page_is_open_is_taken_up_without_a_click(browser, app, ollama, tmp_path):
    """The backend is chosen again every 20 s; an open page used to show the old choice until the user clicked."""
    from playwright.sync_api import expect

    engine = store.open_engine(app_database(tmp_path))
    chat = store.create_chat(engine, model="later:1b")
    store.add_message(engine, chat.id, "user", "Hello")
    engine.dispose()
    page = open_page(browser, f"{app}/?chat={chat.id}")
    box = page.locator(INPUT)
    expect(box).to_have_attribute("placeholder", "Choose a model in the sidebar to go on")
    expect(page.locator(SIDEBAR)).to_contain_text("This chat's model, later:1b, is not available now")
    ollama.models["later:1b"] = "ok"  # as `ollama pull later:1b` does
    expect(page.locator(SIDEBAR)).not_to_contain_text("not available now", timeout=40_000)
    expect(box).to_have_attribute("placeholder", "Message")
    expect(box).to_be_enabled()
    page.close()


def test_each_new_chat_shows_the_title_its_model_wrote_in_the_sidebar(browser, ollama, tmp_path):
    """A short title is written just after its reply, often while the page run that shows the reply draws the
    sidebar: the title must show all the same. Before it did, it was missing in a quarter to a half of new chats."""
    from playwright.sync_api import expect

    def reply(messages: list[dict]) -> str:
        request = messages[-1]["content"]
        number = re.search(r"Question (\d+)", request).group(1)
        return f"Topic {number} explained" if request.startswith("Write a title") else f"Answer {number}."

    ollama.reply, ollama.token_delay = reply, 0.03
    with serve_app(tmp_path, ollama, summaries=False, titles=True) as url:
        page = open_page(browser, url)
        sidebar = page.locator(SIDEBAR)
        for number in range(1, 7):
            sidebar.get_by_role("button", name="New chat").click()
            settle(page)
            ask(page, f"Question {number}")
            expect(page.locator(MESSAGES).nth(1)).to_contain_text(f"Answer {number}.", timeout=15_000)
            title = sidebar.get_by_role("button", name=f"Topic {number} explained", exact=True)
            expect(title).to_be_visible(timeout=10_000)
        page.close()


CURRENT_CHAT = f'{SIDEBAR} [data-testid="stBaseButton-primary"]'


def test_a_new_chat_is_listed_as_current_while_its_first_reply_streams(browser, app, tmp_path, ollama):
    """It was listed only once the reply and its title were written: with a slow model, for minutes."""
    from playwright.sync_api import expect

    page = open_mid_reply(browser, app, ollama, "first question")
    expect(page.locator(CURRENT_CHAT)).to_have_text("first question", timeout=5_000)
    assert reply_status(app_database(tmp_path), "first question") == Status.STREAMING
    assert re.search(r"[?&]chat=\d+", page.url)  # a link to it, to keep or reload
    page.close()


def test_a_new_chat_whose_first_message_is_refused_is_listed_all_the_same(browser, app):
    """Its message is saved, with the reason it was not sent: the chat must not vanish from the list."""
    from playwright.sync_api import expect

    page = open_page(browser, app)
    ask(page, "word " * 6_000)  # far more than the context length holds
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Not sent", timeout=15_000)
    expect(page.locator(CURRENT_CHAT)).to_contain_text("word word", timeout=5_000)
    assert re.search(r"[?&]chat=\d+", page.url)
    page.close()


def test_chats_and_search_hits_read_down_one_left_edge(browser, app, tmp_path):
    from playwright.sync_api import expect

    engine = store.open_engine(app_database(tmp_path))
    for title in ("Sourdough", "Why is the sky blue on a clear afternoon, and red at sunset?", "Taxes"):
        chat = store.create_chat(engine, model="llama3:8b")
        store.update_chat(engine, chat.id, title=title)
        store.add_message(engine, chat.id, "user", f"{title}: tell me more")
    engine.dispose()
    page = open_page(browser, app)
    titles = page.locator(f"{SIDEBAR} [class*='st-key-chat-'] button p")
    starts = titles.evaluate_all(TEXT_STARTS)
    assert len(starts) == 3 and max(starts) - min(starts) < 2  # the current chat's, in its filled button, too
    assert len(set(titles.evaluate_all("titles => titles.map(title => title.offsetHeight)"))) == 1  # a line each
    search = page.locator(SEARCH)
    search.fill("tell me more")
    search.press("Enter")
    hits = page.locator(f"{SIDEBAR} [class*='st-key-hit-'] button p")
    expect(hits).to_have_count(3, timeout=15_000)
    assert all(abs(start - min(starts)) < 2 for start in hits.evaluate_all(TEXT_STARTS))
    page.close()


PHONE = {"width": 390, "height": 844}
# The sidebar's state as the page shows it, each change recorded: to tell a sidebar that closes from one that flickers.
RECORD_SIDEBAR = """() => {
  window.sidebarStates = [];
  let last = null;
  new MutationObserver(() => {
    const now = document.querySelector('[data-testid="stSidebar"]')?.dataset.collapsed;
    if (now && now !== last) window.sidebarStates.push(last = now);
  }).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-collapsed"]});
}"""


def open_sidebar(page) -> None:
    """Open the sidebar (on a phone it starts closed), then record what it does next."""
    from playwright.sync_api import expect

    page.locator('[data-testid="stExpandSidebarButton"]').click()
    expect(page.locator(SIDEBAR)).to_have_attribute("data-collapsed", "false")
    page.evaluate("() => { window.sidebarStates = []; }")


def expect_sidebar_closed_once(page) -> None:
    """The sidebar closes, and stays closed while the page is drawn anew."""
    from playwright.sync_api import expect

    expect(page.locator(SIDEBAR)).to_have_attribute("data-collapsed", "true", timeout=5_000)
    settle(page)
    assert page.evaluate("() => window.sidebarStates") == ["true"]


def test_on_a_phone_picking_a_chat_in_the_sidebar_closes_it_and_on_a_desktop_not(browser, app, tmp_path):
    """The sidebar covers a phone's screen: it stayed open over the chat picked, to be closed by hand."""
    from playwright.sync_api import expect

    engine = store.open_engine(app_database(tmp_path))
    for title in ("Trip to Lisbon", "Sourdough"):
        chat = store.create_chat(engine, model="llama3:8b")
        store.update_chat(engine, chat.id, title=title)
        store.add_message(engine, chat.id, "user", f"Tell me about {title.lower()}")
    engine.dispose()
    page = open_page(browser, app, viewport=PHONE)
    page.evaluate(RECORD_SIDEBAR)
    sidebar, first_message = page.locator(SIDEBAR), page.locator(MESSAGES).first
    open_sidebar(page)
    sidebar.get_by_role("button", name="Trip to Lisbon").click()
    expect(first_message).to_contain_text("Tell me about trip to lisbon", timeout=15_000)
    expect_sidebar_closed_once(page)
    open_sidebar(page)
    sidebar.get_by_role("button", name="New chat", exact=True).click()
    expect(page.get_by_text("What's on your mind?")).to_be_visible(timeout=15_000)
    expect_sidebar_closed_once(page)
    open_sidebar(page)
    search = page.locator(SEARCH)
    search.fill("sourdough")
    search.press("Enter")
    hits = sidebar.locator(".st-key-hits button")
    expect(hits).to_have_count(2, timeout=15_000)  # its title and its message
    hits.first.click()
    expect(first_message).to_contain_text("Tell me about sourdough", timeout=15_000)
    expect_sidebar_closed_once(page)
    open_sidebar(page)
    search.fill("")
    search.press("Enter")
    sidebar.get_by_role("link", name="Documents").click()
    expect(page.get_by_text("Add PDF, DOCX, TXT or Markdown files")).to_be_visible(timeout=15_000)
    expect_sidebar_closed_once(page)
    open_sidebar(page)
    sidebar.get_by_role("button", name="Trip to Lisbon").click()  # back to the chat page, on that chat
    expect(first_message).to_contain_text("Tell me about trip to lisbon", timeout=15_000)
    expect_sidebar_closed_once(page)
    page.screenshot(path=str(tmp_path / "phone-chat-picked.png"))  # to look at
    page.close()

    page = open_page(browser, app)
    page.locator(SIDEBAR).get_by_role("button", name="Sourdough").click()
    expect(page.locator(MESSAGES).first).to_contain_text("Tell me about sourdough", timeout=15_000)
    settle(page)
    expect(page.locator(SIDEBAR)).to_have_attribute("data-collapsed", "false")  # beside the page, it stays
    page.close()


def test_the_page_follows_the_computers_dark_setting(browser, app, tmp_path):
    engine = store.open_engine(app_database(tmp_path))
    store.create_chat(engine, model="llama3:8b")
    engine.dispose()
    page = open_page(browser, app, color_scheme="dark")
    assert page.locator('[data-testid="stApp"]').evaluate(BACKGROUND) == "rgb(23, 22, 20)"  # Streamlit's dark
    assert page.locator(f"{SIDEBAR} .st-key-chats button").evaluate(BACKGROUND) == "rgb(59, 130, 246)"  # dark's blue
    page.close()


BACKGROUND = "element => getComputedStyle(element)['background-color']"
TEXT_STARTS = """texts => texts.map(text => {
  const range = document.createRange();
  range.selectNodeContents(text);
  return range.getBoundingClientRect().left;
})"""


def test_the_delete_that_confirms_deleting_a_chat_looks_destructive(browser, app, tmp_path):
    from playwright.sync_api import expect

    page = open_page(browser, app)
    ask(page, "Delete me")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Everything stays on this computer.", timeout=15_000)
    settle(page)
    sidebar = page.locator(SIDEBAR)
    sidebar.get_by_text("Chat settings").click()
    settle(page)  # the settings are drawn by the run that opening them starts: a click during it may go unseen
    sidebar.get_by_role("button", name="Delete chat").click()
    confirm = page.locator(".st-key-delete-yes button")
    expect(confirm).to_contain_text("Delete chat", timeout=15_000)
    settle(page)
    current_chat = page.locator(".st-key-chat-1 button")  # a primary button too, in the theme's blue
    assert confirm.evaluate(BACKGROUND) == "rgb(185, 28, 28)"
    assert current_chat.evaluate(BACKGROUND) == "rgb(37, 99, 235)"
    expect(confirm.locator('[data-testid="stIconMaterial"]')).to_have_text("delete_forever")
    confirm.scroll_into_view_if_needed()
    sidebar.screenshot(path=str(tmp_path / "delete-confirm.png"))  # to look at
    page.close()


def test_a_page_opened_first_by_its_own_url_has_the_sidebar(browser, app):
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(f"{app}/export")  # the server's very first run
    expect(page.get_by_role("heading", name="Export")).to_be_visible(timeout=30_000)
    settle(page)
    sidebar = page.locator(SIDEBAR)
    expect(sidebar.get_by_role("button", name="New chat", exact=True)).to_be_visible()
    expect(sidebar.get_by_role("link", name="Export and import")).to_be_visible()
    page.close()


def saved_messages(data_dir: Path) -> list[tuple[str, str]]:
    """The messages of the only chat in a server's database."""
    engine = store.open_engine(app_database(data_dir))
    try:
        [chat] = store.list_chats(engine, limit=None)
        return [(message.role, message.content) for message in store.recent_messages(engine, chat.id, limit=10)]
    finally:
        engine.dispose()


def test_the_first_message_a_fresh_server_gets_is_kept(browser, ollama, tmp_path):
    """Typed the moment the input can take it: in a page opened on a new server, then in the same page reloaded
    once it has reconnected to another new server (a restart, with a new data folder).

    The second is the case that lost the message when `pages/` sat beside an entry script calling
    `st.navigation`: Streamlit ran the server's first run in its legacy `pages/` mode, which ran the page the
    browser asked for (pages/chat.py) alone, without the entry script's sidebar, model choice and navigation.
    """
    from playwright.sync_api import expect

    port = free_port()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    page = browser.new_page()
    with serve_app(first, ollama, summaries=False, port=port) as url:
        page.goto(url)
        page.wait_for_selector(INPUT, timeout=30_000)
        ask(page, "The very first words")  # at once, without letting the page settle
        expect(page.locator(MESSAGES).nth(1)).to_contain_text("Everything stays on this computer.", timeout=15_000)
        expect(page.locator(MESSAGES).first).to_contain_text("The very first words")
        settle(page)
        assert saved_messages(first) == [("user", "The very first words"), ("assistant", ANSWER)]
    expect(page.locator(INPUT)).to_be_disabled(timeout=15_000)  # the page knows its server is gone
    with serve_app(second, ollama, summaries=False, port=port):
        expect(page.locator(INPUT)).to_be_enabled(timeout=30_000)  # reconnected, still showing the old chat
        # A new server's session ignores a message sent from a page it has never run: the input lives in a
        # fragment, which that session does not know yet (README, "Known limitations"). Reloading runs it.
        page.reload()
        page.wait_for_selector(INPUT, timeout=30_000)
        ask(page, "First words after a restart")  # at once again
        asked = page.locator(MESSAGES).filter(has_text="First words after a restart")
        expect(asked).to_have_count(1, timeout=15_000)
        expect(page.locator(MESSAGES)).to_have_count(2, timeout=15_000)
        expect(page.locator(MESSAGES).nth(1)).to_contain_text("Everything stays on this computer.", timeout=15_000)
        settle(page)
        assert saved_messages(second) == [("user", "First words after a restart"), ("assistant", ANSWER)]
    page.close()


def test_the_first_search_typed_on_a_fresh_server_is_kept(browser, app):
    """With `st.navigation` in the entry script and a `pages/` folder beside it, Streamlit ran a new server's
    first run in its legacy `pages/` mode, where the sidebar's widgets had other ids than in later runs:
    the first thing typed in the sidebar was dropped. The app uses the `pages/` folder alone to avoid that."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(app)
    page.wait_for_selector(INPUT, timeout=30_000)
    box = page.locator(SIDEBAR).get_by_placeholder("Search chats")
    box.fill("nothing like this")
    box.press("Enter")
    expect(page.get_by_text("No chat matches.")).to_be_visible(timeout=15_000)
    settle(page)
    expect(box).to_have_value("nothing like this")
    page.close()


def test_a_slow_model_shows_that_it_is_loading(browser, app, ollama):
    from playwright.sync_api import expect

    ollama.prompt_delay = 3
    page = open_page(browser, app)
    ask(page, "Anyone there?")
    reply = page.locator(MESSAGES).nth(1)
    expect(reply).to_contain_text("Waiting for the model's first words", timeout=10_000)
    expect(reply).to_contain_text("Here is what", timeout=15_000)
    expect(reply).not_to_contain_text("Waiting for the model")
    page.close()


def test_html_and_scripts_in_messages_and_titles_stay_text(browser, app, ollama):
    from playwright.sync_api import expect

    attack = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script> **bold** end'
    ollama.reply = lambda messages: attack
    page = open_page(browser, app)
    ask(page, attack)
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("end", timeout=15_000)
    settle(page)
    reload(page)
    expect(page.locator(f"{MESSAGES} strong").first).to_have_text("bold")
    assert page.evaluate("() => window.pwned") is None
    assert page.locator(f"{MESSAGES} img, {MESSAGES} script, {SIDEBAR} img").count() == 0
    page.close()


def cite_the_first_source(messages: list[dict]) -> str:
    """A model that answers from the first passage it is given, citing it."""
    given = messages[0]["role"] == "system" and "[1] google-doc-document.pdf, page 1" in messages[0]["content"]
    return "Beautiful is better than ugly [1]." if given else "The documents do not say."


def test_a_pdf_uploaded_on_the_documents_page_is_cited_with_its_page(browser, app, ollama):
    from playwright.sync_api import expect

    sample("google-doc-document.pdf")  # skips when the shared documents are missing
    ollama.token_delay = 0
    ollama.reply = cite_the_first_source
    page = open_page(browser, app)
    ask(page, "hello")
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("The documents do not say.", timeout=15_000)
    settle(page)
    page.get_by_role("link", name="Documents").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(SAMPLES / "google-doc-document.pdf")
    expect(page.get_by_text("Added google-doc-document.pdf: PDF · 1 page")).to_be_visible(timeout=30_000)
    settle(page)
    size = file_size((SAMPLES / "google-doc-document.pdf").stat().st_size)  # the uploader's own way of saying it
    expect(page.locator('[data-testid="stFileChip"]')).to_contain_text(size)
    expect(page.locator('[data-testid="stCaptionContainer"]', has_text=f"PDF · 1 page · {size} ·")).to_be_visible()
    page.get_by_role("link", name="Chat").click()
    page.wait_for_selector(INPUT, timeout=30_000)
    settle(page)
    ask(page, "What is better than ugly?")
    reply = page.locator(MESSAGES).nth(3)
    expect(reply).to_contain_text("Beautiful is better than ugly [1].", timeout=15_000)
    settle(page)
    page.locator(MESSAGES).nth(3).get_by_text("Sources").click()
    expect(page.locator(MESSAGES).nth(3)).to_contain_text("[1] google-doc-document.pdf, page 1")
    page.close()


def notes(name: str) -> dict:
    """A small Markdown file for the uploader."""
    return {"name": name, "mimeType": "text/markdown", "buffer": f"# {name}\n\nThe tram leaves at nine.".encode()}


def test_the_documents_page_keeps_where_files_go_chosen_when_the_first_upload_starts_a_chat(browser, app, tmp_path):
    """Streamlit knows a radio's choice by its label: "A new chat" showed unchosen once it read "This chat"."""
    from playwright.sync_api import expect

    page = open_page(browser, app)
    page.get_by_role("link", name="Documents").click()
    new_chat, library = page.get_by_role("radio", name="A new chat"), page.get_by_role("radio", name="The library")
    expect(new_chat).to_be_checked(timeout=15_000)
    settle(page)
    files = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    files.set_input_files(notes("first.md"))
    expect(page.get_by_text("Added first.md")).to_be_visible(timeout=30_000)
    settle(page)
    page.screenshot(path=str(tmp_path / "documents-first-upload.png"))  # to look at
    expect(page.get_by_role("radio", name="This chat")).to_be_checked()
    files.set_input_files(notes("second.md"))  # added to those the uploader holds
    expect(page.get_by_text("Added second.md")).to_be_visible(timeout=30_000)
    settle(page)
    page.get_by_text("The library (for any chat)").click()
    settle(page)
    files.set_input_files(notes("third.md"))
    expect(page.get_by_text("Added third.md")).to_be_visible(timeout=30_000)
    settle(page)
    expect(library).to_be_checked()
    engine = store.open_engine(app_database(tmp_path))
    [chat] = store.list_chats(engine, limit=None)
    in_chat = [document.name for document in store.list_documents(engine, chat.id)]
    in_library = [document.name for document in store.list_documents(engine, None)]
    engine.dispose()
    assert (in_chat, in_library) == (["first.md", "second.md"], ["third.md"])
    page.close()


def test_a_summary_written_in_the_background_appears_on_the_documents_page_by_itself(
    browser, app_with_summaries, ollama
):
    from playwright.sync_api import expect

    ollama.token_delay = 0.3
    ollama.reply = lambda messages: "A note about the tram, which leaves at nine."
    page = open_page(browser, app_with_summaries)
    page.get_by_role("link", name="Documents").click()
    notes = {"name": "notes.md", "mimeType": "text/markdown", "buffer": b"# Notes\n\nThe tram leaves at nine."}
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(notes)
    progress = page.get_by_text(re.compile("^(Waiting for its turn|Summarising)$"))
    expect(progress).to_be_visible(timeout=15_000)
    page.get_by_text("Summary", exact=True).click(timeout=15_000)  # drawn by the page's own refresh
    expect(page.get_by_text("A note about the tram, which leaves at nine.")).to_be_visible()
    expect(page.get_by_text("Written by llama3:8b.")).to_be_visible()
    expect(progress).to_have_count(0)
    page.close()


def save_screenshot(page, tmp_path: Path) -> None:
    """Always take one; with CHATCORE_UPDATE_SCREENSHOT=1 it replaces the README's."""
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot))
    if os.environ.get("CHATCORE_UPDATE_SCREENSHOT"):
        shutil.copy(shot, ROOT / "docs" / "screenshot.png")


@pytest.fixture
def listener():
    """A local HTTP server that records every request it gets: what a page must never fetch by itself."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    requested = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/gif")
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Thread(target=server.serve_forever, daemon=True).start()
    server.requested = requested
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


def test_images_in_messages_and_titles_are_never_fetched_but_shown_as_links(browser, app, ollama, listener):
    from playwright.sync_api import expect

    leak = f"{listener.url}/leak?secret=4711"
    ollama.token_delay = 0.05  # the images arrive in pieces, over several bursts
    ollama.reply = lambda messages: (
        f'Look: ![a chart]( {leak}&inline "the title" ) then ![by reference][chart] and '
        f'[![nested]( {leak}&nested )]( https://example.com ) <img src="{leak}&html"> done.\n\n'
        f"[chart]: {leak}&reference"
    )
    page = open_page(browser, app)
    ask(page, f"Show me ![my own]({leak}&question)")
    reply = page.locator(MESSAGES).nth(1)
    expect(reply).to_contain_text("done.", timeout=15_000)
    settle(page)
    reload(page)  # the history, drawn from the database
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("done.")
    assert listener.requested == []
    assert page.locator(f'{MESSAGES} a[href="{leak}&inline"]').count() == 1  # the user may open it
    assert page.locator(f"{MESSAGES} img, {SIDEBAR} img").count() == 0
    page.close()


def test_the_users_own_text_and_chat_titles_show_as_typed(browser, app, tmp_path):
    from playwright.sync_api import expect

    typed = "What does __init__.py do? *x* and $5 or $6"
    page = open_page(browser, app)
    ask(page, typed)
    expect(page.locator(MESSAGES).nth(1)).to_contain_text("Everything stays on this computer.", timeout=15_000)
    settle(page)
    expect(page.locator(MESSAGES).nth(1).locator('[data-testid="stCaptionContainer"]')).to_contain_text("tokens/s")
    expect(page.locator(MESSAGES).first).to_contain_text(typed)
    expect(page.locator(SIDEBAR).get_by_role("button", name=typed)).to_be_visible()
    assert page.locator(f"{MESSAGES} strong, {MESSAGES} em, {SIDEBAR} em").count() == 0
    save_screenshot(page, tmp_path)
    page.close()
