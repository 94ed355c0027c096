"""Faults: a read-only or full database, a database locked by another process, a giant message."""

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import streamlit as st
from sqlalchemy import event
from streamlit.testing.v1 import AppTest

from chatcore import generation, store
from chatcore.backends import FakeBackend
from chatcore.models import Status
from chatcore.prompt import ContextOverflowError
from chatcore.replies import ReplyService
from tests.replies import LEASE, reply_to
from tests.test_app import shown_text

HOLD_LOCK = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()  # held until the test says to let go
connection.execute("COMMIT")
"""


@pytest.fixture
def sqlite_path(tmp_path):
    """A migrated SQLite database holding one chat with one exchange."""
    path = tmp_path / "chat.db"
    engine = store.open_engine(f"sqlite:///{path}")
    chat = store.create_chat(engine, model="llama3:8b")
    service = ReplyService(engine, auto_title=False)
    reply_to(service, FakeBackend(replies=["kept safe"]), chat.id, "earlier question", "llama3:8b")
    service.shutdown()
    engine.dispose()
    return path


def test_read_only_database_shows_history_and_refuses_to_send_clearly(sqlite_path, standin, monkeypatch):
    monkeypatch.setenv("CHATCORE_DB_URL", f"sqlite:///file:{sqlite_path}?mode=ro&uri=true")
    monkeypatch.setenv("OLLAMA_HOST", standin.url)
    st.cache_resource.clear()
    at = AppTest.from_file("../streamlit_app.py", default_timeout=30).run()
    assert [shown_text(message) for message in at.chat_message] == ["earlier question", "kept safe"]
    at.chat_input[0].set_value("a new question\nover two lines").run()
    assert not at.exception
    assert "readonly database" in at.error[0].value and "was not sent" in at.error[0].value
    assert at.code[0].value == "a new question\nover two lines"
    st.cache_resource.clear()


def test_a_full_disk_is_a_clear_storage_error(sqlite_path):
    engine = store.create_db_engine(f"sqlite:///{sqlite_path}")
    event.listen(engine, "connect", lambda connection, _: connection.execute("PRAGMA max_page_count = 20"))
    [chat] = store.list_chats(engine, limit=1)
    with pytest.raises(store.StorageError, match="database or disk is full"):
        generation.start_turn(engine, chat.id, "x" * 200_000, "llama3:8b", LEASE)
    assert store.count_messages(engine, chat.id) == 2  # nothing half-written
    engine.dispose()


def test_a_database_locked_by_another_process_is_waited_for(sqlite_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(sqlite_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    engine = store.create_db_engine(f"sqlite:///{sqlite_path}")
    service = ReplyService(engine, auto_title=False)
    [chat] = store.list_chats(engine, limit=1)  # reading goes on while another process writes
    writing, released, first_write_done_after_release = threading.Event(), threading.Event(), []

    def before_write(_connection, _cursor, statement, *_):
        if statement.startswith(("INSERT", "UPDATE")):
            writing.set()

    def after_write(_connection, _cursor, statement, *_):
        if statement.startswith(("INSERT", "UPDATE")) and not first_write_done_after_release:
            first_write_done_after_release.append(released.is_set())

    event.listen(engine, "before_cursor_execute", before_write)
    event.listen(engine, "after_cursor_execute", after_write)
    with ThreadPoolExecutor(1) as pool:
        reply = pool.submit(reply_to, service, FakeBackend(replies=["after the lock"]), chat.id, "waiting", "llama3:8b")
        assert writing.wait(timeout=30)
        released.set()
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert reply.result(timeout=60) == "after the lock"
    assert first_write_done_after_release == [True]  # the write waited for the lock instead of failing
    assert holder.wait(timeout=10) == 0
    assert store.recent_messages(engine, chat.id, limit=1)[0].status == Status.COMPLETE
    service.shutdown()
    engine.dispose()


def test_a_one_megabyte_message_is_saved_whole_and_refused_clearly(engine, replies):
    chat = store.create_chat(engine, model="fake:latest")
    giant = "A long paste. " * 75_000
    backend = FakeBackend(replies=["Received."])
    with pytest.raises(ContextOverflowError, match="Your message is saved"):
        replies.send(backend, chat.id, "fake:latest", giant)
    question, reply = store.recent_messages(engine, chat.id, limit=2)
    assert question.content == giant and len(giant) > 1_000_000
    assert reply.status == Status.ERROR and "Not sent" in reply.error
    assert backend.calls == []
