"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL when one is given), sample chats,
and the stand-in Ollama server."""

import functools
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url
from streamlit.components.v2 import manifest_scanner
from streamlit.runtime.scriptrunner.script_cache import ScriptCache

from chatcore import store
from chatcore.backends import FakeBackend
from chatcore.models import Status
from chatcore.replies import ReplyService
from tests.ollama_standin import StandinOllama

# Each new AppTest scans every installed package for Streamlit components (about half a second, in every
# page test); the packages do not change while the tests run, so they are scanned once.
manifest_scanner.scan_component_manifests = functools.cache(manifest_scanner.scan_component_manifests)
# Each AppTest run compiles the pages anew, into a cache of its own; they do not change either, so one cache serves all.
_PAGES = ScriptCache()
_compile_page = ScriptCache.get_bytecode
ScriptCache.get_bytecode = lambda _cache, script_path: _compile_page(_PAGES, script_path)

# A PostgreSQL superuser's URL; each test gets a database of its own there, dropped with FORCE after it
# (which must also end any autovacuum worker in it: only a superuser may).
POSTGRES_URL = os.environ.get("CHATCORE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A URL for an empty database of this test's own, on each supported database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chatcore.db'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL tests must run in CI: set CHATCORE_TEST_POSTGRES_URL")
        pytest.skip("no PostgreSQL given: set CHATCORE_TEST_POSTGRES_URL to run this test on it too")
    yield from fresh_postgres_database(POSTGRES_URL)


def fresh_postgres_database(server_url: str):
    """Create a uniquely named database, hand out its URL, and drop it afterwards."""
    name = f"chatcore_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory) -> Path:
    """A SQLite database migrated once: each test starts from a copy, as migrating takes longer than most tests."""
    path = tmp_path_factory.mktemp("migrated") / "chatcore.db"
    store.open_engine(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def engine(db_url, request):
    """A migrated engine on a fresh database."""
    if db_url.startswith("sqlite:///"):
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), db_url.removeprefix("sqlite:///"))
    engine = store.open_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def replies(engine):
    """The app's reply service on this test's database, without titles; its work ends before the database goes."""
    service = ReplyService(engine, auto_title=False)
    yield service
    service.shutdown()


def wait_until(condition, timeout: float = 10.0) -> None:
    """Wait for a condition to hold, failing the test if it does not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def standin():
    """A running stand-in Ollama server."""
    with StandinOllama() as server:
        yield server


STALLED_REPLY = "word " * 40


@pytest.fixture
def stalling_standin():
    """A stand-in Ollama whose replies stop after three words until the test resumes them (or hangs up)."""
    with StandinOllama(reply=lambda messages: STALLED_REPLY, stall_after=3) as server:
        yield server


def at(hour: int, minute: int, second: int = 0) -> datetime:
    """A moment on the sample day, in UTC."""
    return datetime(2025, 3, 1, hour, minute, second, tzinfo=UTC)


TRIP_MESSAGES = [
    {"role": "user", "content": "Where should I eat?", "created_at": at(9, 0, 5)},
    {
        "role": "assistant", "content": "Try **Time Out Market**:\n\n- pastéis de nata\n- bacalhau",
        "model": "llama3:8b", "prompt_tokens": 12, "reply_tokens": 40, "prompt_ms": 100.0, "reply_ms": 2000.0,
        "total_ms": 2150.5, "created_at": at(9, 0, 7),
    },
    {"role": "user", "content": "And <script>alert(1)</script>?", "created_at": at(9, 1)},
    {
        "role": "assistant", "content": "Half an ans", "status": Status.PARTIAL, "model": "llama3:8b",
        "reply_tokens": 3, "reply_ms": 500.0, "created_at": at(9, 1, 2),
    },
    {
        "role": "assistant", "content": "", "status": Status.ERROR, "model": "llama3:8b",
        "error": "Cannot reach Ollama at http://127.0.0.1:11434.", "created_at": at(9, 2),
    },
]  # fmt: skip
SOUP_MESSAGES = [
    {"role": "user", "content": "Soup?", "created_at": at(10, 0)},
    {"role": "assistant", "content": "Yes.", "model": "qwen2.5:0.5b", "created_at": at(10, 0, 1)},
]


def add_chat(engine, messages: list[dict], **fields) -> int:
    """A chat with these messages and fields, saved."""
    chat = store.create_chat(engine)
    for message in messages:
        store.add_message(engine, chat.id, **message)
    store.update_chat(engine, chat.id, **fields)  # last, as adding a message moves updated_at
    return chat.id


@pytest.fixture
def sample_chats(engine) -> list[int]:
    """Two chats with every kind of message (finished, interrupted, failed), metrics, and HTML kept as text."""
    trip = add_chat(
        engine, TRIP_MESSAGES, title="Trip to <b>Lisbon</b>", model="llama3:8b", system_prompt="Answer briefly.",
        options={"num_ctx": 4096}, created_at=at(9, 0), updated_at=at(9, 2),
    )  # fmt: skip
    soup = add_chat(
        engine, SOUP_MESSAGES, title="Recipes", model="qwen2.5:0.5b", created_at=at(10, 0), updated_at=at(10, 0, 1)
    )
    return [trip, soup]


class BuggyBackend(FakeBackend):
    """A backend that fails as no backend should, with an error of chatcore's own, after some text."""

    def stream_chat(self, model, messages, options, stop=None):
        yield "Half a reply"
        raise RuntimeError("a bug in chatcore")
