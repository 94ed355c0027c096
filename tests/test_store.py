"""Storage: chats, messages, pragmas and migrations."""

import os
import shutil
import sqlite3
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, make_url, text
from sqlmodel import SQLModel

from chatcore import retrieval, search, store
from chatcore.models import Status, tokens_per_second
from chatcore.tokens import Ratio
from tests.conftest import POSTGRES_URL, fresh_postgres_database
from tests.replies import LEASE


def test_chats_are_listed_newest_activity_first(engine):
    first = store.create_chat(engine, model="a")
    second = store.create_chat(engine, model="b")
    store.add_message(engine, first.id, "user", "bump")
    assert [chat.id for chat in store.list_chats(engine, limit=10)] == [first.id, second.id]
    assert [chat.id for chat in store.list_chats(engine, limit=1)] == [first.id]
    assert store.count_chats(engine) == 2


def test_deleting_a_chat_deletes_its_messages(engine):
    chat = store.create_chat(engine)
    other = store.create_chat(engine)
    store.add_message(engine, chat.id, "user", "gone")
    store.add_message(engine, other.id, "user", "kept")
    store.delete_chat(engine, chat.id)
    with engine.connect() as connection:
        contents = connection.execute(text("SELECT content FROM message")).scalars().all()
    assert contents == ["kept"]
    assert store.get_chat(engine, chat.id) is None


def test_message_fields_round_trip(engine):
    chat = store.create_chat(engine, options={"num_ctx": 2048})
    message = store.add_message(engine, chat.id, "assistant", "", status=Status.PARTIAL, model="m")
    store.update_message(engine, message.id, content="hi", status=Status.COMPLETE, reply_tokens=3, reply_ms=1500.0)
    [saved] = store.recent_messages(engine, chat.id, limit=5)
    assert (saved.content, saved.status, saved.model, saved.reply_tokens) == ("hi", "complete", "m", 3)
    assert tokens_per_second(saved.reply_tokens, saved.reply_ms) == pytest.approx(2.0)
    assert store.get_chat(engine, chat.id).options == {"num_ctx": 2048}


def test_recent_messages_are_the_latest_oldest_first(engine):
    chat = store.create_chat(engine)
    for index in range(7):
        store.add_message(engine, chat.id, "user", str(index))
    assert [m.content for m in store.recent_messages(engine, chat.id, limit=3)] == ["4", "5", "6"]
    assert store.count_messages(engine, chat.id) == 7


def test_messages_newest_first_cross_batches(engine):
    chat = store.create_chat(engine)
    for index in range(12):
        store.add_message(engine, chat.id, "user", str(index))
    contents = [m.content for m in store.iter_messages_newest_first(engine, chat.id, batch=5)]
    assert contents == [str(index) for index in reversed(range(12))]


def test_messages_newest_first_before_a_message(engine):
    chat = store.create_chat(engine)
    ids = [store.add_message(engine, chat.id, "user", str(index)).id for index in range(8)]
    contents = [m.content for m in store.iter_messages_newest_first(engine, chat.id, before=ids[5], batch=2)]
    assert contents == ["4", "3", "2", "1", "0"]


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    engine = store.open_engine(f"sqlite:///{tmp_path / 'chat.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_data_folder_is_created(tmp_path):
    engine = store.open_engine(f"sqlite:///{tmp_path / 'new' / 'deeper' / 'chat.db'}")
    assert (tmp_path / "new" / "deeper" / "chat.db").exists()
    engine.dispose()


def test_migrate_is_idempotent_and_keeps_data(db_url):
    engine = store.open_engine(db_url)
    chat = store.create_chat(engine)
    store.add_message(engine, chat.id, "user", "remember me")
    engine.dispose()
    reopened = store.open_engine(db_url)
    store.migrate(reopened)
    assert store.schema_version(reopened) == store.head_revision()
    assert [m.content for m in store.recent_messages(reopened, chat.id, limit=5)] == ["remember me"]
    reopened.dispose()


def test_database_from_a_newer_version_is_refused(engine, db_url):
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(store.SchemaTooNewError) as refused:
        store.open_engine(db_url)
    assert str(refused.value).endswith(
        ": it was written by a newer chatcore (its schema version is 9999), which this one cannot read. "
        f"Upgrade chatcore, or set CHATCORE_DB_URL to another {'file' if db_url.startswith('sqlite') else 'database'}."
    )
    assert str(refused.value).startswith("Cannot open the ")


def test_migration_from_0001_keeps_everything_and_adds_the_context_columns(db_url):
    engine = store.create_db_engine(db_url)
    store.migrate(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO chat (id, title, model, system_prompt, options, created_at, updated_at) VALUES "
                "(1, 'Lisbon', 'llama3:8b', 'Be brief.', '{\"num_ctx\": 8192}', '2025-05-01 10:00:00', "
                "'2025-05-01 10:05:00'), (2, 'Empty', '', '', '{}', '2025-05-02 10:00:00', '2025-05-02 10:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO message (chat_id, role, content, status, error, model, prompt_tokens, reply_tokens, "
                "created_at) VALUES (1, 'user', 'What to see?', 'complete', '', '', NULL, NULL, '2025-05-01 10:00:00'),"
                " (1, 'assistant', 'Trams.', 'complete', '', 'llama3:8b', 20, 3, '2025-05-01 10:00:01'),"
                " (1, 'assistant', 'Half', 'partial', '', 'llama3:8b', NULL, NULL, '2025-05-01 10:00:02')"
            )
        )
    store.migrate(engine)
    assert store.schema_version(engine) == store.head_revision()
    lisbon = store.get_chat(engine, 1)
    assert (lisbon.title, lisbon.system_prompt, lisbon.options) == ("Lisbon", "Be brief.", {"num_ctx": 8192})
    assert (lisbon.memory, lisbon.memory_until, lisbon.memory_enabled) == ("", None, True)
    assert store.count_chats(engine) == 2
    messages = store.recent_messages(engine, 1, limit=10)
    assert [(m.content, m.status, m.reply_tokens) for m in messages] == [
        ("What to see?", "complete", None),
        ("Trams.", "complete", 3),
        ("Half", "partial", None),
    ]
    assert [m.tokens for m in messages] == [None, 3, None]  # finished replies count by their eval_count
    assert store.get_ratio(engine, "llama3:8b") == Ratio()
    engine.dispose()


def outside_the_search_index(name, _type, _parents) -> bool:
    """The full-text indexes live in the migrations alone (FTS5 tables, indexes, a generated column), not the models."""
    names = ("message_fts", "ix_message_content_fts", "chunk_fts", "ix_chunk_text_fts", "text_fts")
    return not (name or "").startswith(names)


def test_migrations_build_the_schema_the_models_describe(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": outside_the_search_index})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_messages_between_two_ids_oldest_first(engine):
    chat = store.create_chat(engine)
    ids = [store.add_message(engine, chat.id, "user", str(index)).id for index in range(12)]
    between = store.iter_messages_between(engine, chat.id, after=ids[2], before=ids[10], batch=3)
    assert [m.content for m in between] == [str(index) for index in range(3, 10)]
    from_start = store.iter_messages_between(engine, chat.id, after=None, before=ids[2])
    assert [m.content for m in from_start] == ["0", "1"]


def test_token_counts_and_ratios_are_saved_per_model(engine):
    chat = store.create_chat(engine)
    message = store.add_message(engine, chat.id, "user", "hello")
    store.save_token_counts(engine, {message.id: 7}, "llama3:8b", Ratio(900, 300))
    store.save_token_counts(engine, {}, "llama3:8b", Ratio(1000, 320))
    assert store.recent_messages(engine, chat.id, limit=1)[0].tokens == 7
    assert store.get_ratio(engine, "llama3:8b") == Ratio(1000, 320)
    assert store.get_ratio(engine, "qwen2.5:0.5b") == Ratio()


def test_memory_is_saved_only_over_the_coverage_it_was_made_from(engine):
    chat = store.create_chat(engine)
    assert store.save_memory(engine, chat.id, expected_until=None, memory="first", until=4)
    assert not store.save_memory(engine, chat.id, expected_until=None, memory="stale", until=2)
    assert store.save_memory(engine, chat.id, expected_until=4, memory="second", until=9)
    saved = store.get_chat(engine, chat.id)
    assert (saved.memory, saved.memory_until) == ("second", 9)


def test_editing_a_message_forgets_its_measured_tokens(engine):
    chat = store.create_chat(engine)
    user_id, reply_id = store.add_exchange(engine, chat.id, "secnd", "m", LEASE)
    store.update_message(engine, reply_id, status=Status.COMPLETE)
    store.save_token_counts(engine, {user_id: 9}, "m", Ratio())
    store.restart_last_exchange(engine, chat.id, "m", "second", LEASE)
    assert store.recent_messages(engine, chat.id, limit=2)[0].tokens is None


def test_migration_from_0004_keeps_documents_and_leaves_their_summary_and_vectors_to_write(db_url):
    engine = store.create_db_engine(db_url)
    store.migrate(engine, "0004_documents")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO document (id, chat_id, name, kind, sha256, size, pages, chunk_count, status, created_at) "
                "VALUES (1, NULL, 'notes.txt', 'txt', :sha, 12, 1, 1, 'ready', '2025-05-01 10:00:00')"
            ),
            {"sha": "a" * 64},
        )
        connection.execute(
            text(
                'INSERT INTO chunk (document_id, ordinal, page, start, "end", text) '
                "VALUES (1, 0, 1, 0, 12, 'Rivers flow.')"
            )
        )
    store.migrate(engine)
    document = store.get_document(engine, 1)
    assert (document.name, document.summary, document.summary_model, document.vectors_model) == (
        "notes.txt",
        "",
        "",
        "",
    )
    assert [chunk.text for chunk in store.document_chunks(engine, 1)] == ["Rivers flow."]
    assert store.documents_to_process(engine, "nomic-embed-text", summaries=True) == [document]
    chat = store.create_chat(engine)
    store.attach_document(engine, chat.id, 1)
    assert [passage.text for passage in retrieval.find_passages(engine, chat.id, "rivers")] == ["Rivers flow."]
    engine.dispose()


@pytest.mark.parametrize(
    "revision",
    ["0001", "0002_context", "0003_search", "0004_documents", "0005_inline_chunk_search", "0006_summaries_and_vectors"],
)
def test_migration_to_owned_replies_counts_a_reply_left_streaming_by_an_older_version_as_interrupted(db_url, revision):
    engine = store.create_db_engine(db_url)
    store.migrate(engine, revision)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO chat (id, title, model, system_prompt, options, created_at, updated_at) VALUES "
                "(1, 'Lisbon', 'llama3:8b', '', '{}', '2025-05-01 10:00:00', '2025-05-01 10:05:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO message (chat_id, role, content, status, error, model, created_at) VALUES "
                "(1, 'user', 'What to see?', 'complete', '', '', '2025-05-01 10:00:00'),"
                " (1, 'assistant', 'Trams and', 'streaming', '', 'llama3:8b', '2025-05-01 10:00:01')"
            )
        )
    store.migrate(engine)
    _, reply = store.list_messages(engine, 1)
    assert (reply.content, reply.owner, reply.lease_until, reply.stop_requested) == ("Trams and", "", None, False)
    assert store.mark_interrupted_replies(engine) == 1  # no lease: its writer is gone
    assert [(m.content, m.status) for m in store.list_messages(engine, 1)] == [
        ("What to see?", Status.COMPLETE),
        ("Trams and", Status.PARTIAL),
    ]
    question, _ = store.add_exchange(engine, 1, "And to eat?", "llama3:8b", LEASE)  # the chat can be claimed
    assert [hit.message_id for hit in search.search_chats(engine, "trams")] == [reply.id]
    assert [hit.message_id for hit in search.search_chats(engine, "eat")] == [question]  # still indexed as written
    engine.dispose()


def test_migration_from_0006_gives_each_chat_a_uid_and_keeps_the_passages_replies_were_given(db_url):
    engine = store.create_db_engine(db_url)
    store.migrate(engine, "0006_summaries_and_vectors")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO chat (id, title, model, system_prompt, options, created_at, updated_at) VALUES "
                "(1, 'Lisbon', '', '', '{}', '2025-05-01 10:00:00', '2025-05-01 10:05:00'), "
                "(2, 'Porto', '', '', '{}', '2025-05-02 10:00:00', '2025-05-02 10:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO message (id, chat_id, role, content, status, error, model, created_at) VALUES "
                "(1, 1, 'user', 'Trams?', 'complete', '', '', '2025-05-01 10:00:00'), "
                "(2, 1, 'assistant', 'Tram 28 [1].', 'complete', '', 'llama3:8b', '2025-05-01 10:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO document (id, chat_id, name, kind, sha256, size, pages, chunk_count, status, created_at) "
                "VALUES (1, 1, 'trams.pdf', 'pdf', :sha, 12, 3, 1, 'ready', '2025-05-01 10:00:00')"
            ),
            {"sha": "b" * 64},
        )
        connection.execute(
            text(
                'INSERT INTO chunk (id, document_id, ordinal, page, start, "end", text) VALUES (7, 1, 0, 3, 0, 9, :t)'
            ),
            {"t": "Tram 28 climbs the hills."},
        )
        connection.execute(text("INSERT INTO reply_source (message_id, chunk_id, label) VALUES (2, 7, 1)"))
    store.migrate(engine)
    uids = {chat.uid for chat in store.find_chats(engine, None)}
    assert len(uids) == 2 and all(str(uuid.UUID(uid)) == uid for uid in uids)
    assert [message.finished_at for message in store.list_messages(engine, 1)] == [None, None]  # never recorded
    store.delete_document(engine, 1)
    [(source, present)] = store.reply_sources(engine, [2])[2]
    assert (source.label, source.document_name, source.page, source.text) == (
        1,
        "trams.pdf",
        3,
        "Tram 28 climbs the hills.",
    )
    assert not present
    engine.dispose()


def test_a_new_chat_gets_a_uid_of_its_own(engine):
    first, second = store.create_chat(engine), store.create_chat(engine)
    assert first.uid != second.uid and str(uuid.UUID(first.uid)) == first.uid


SECRET = "s3cret-word"  # a password, which no message may show


def a_text_file(folder: Path) -> str:
    (folder / "notes.json").write_text('{"chats": []}')
    return f"sqlite:///{folder / 'notes.json'}"


def a_damaged_database(folder: Path) -> str:
    engine = store.open_engine(f"sqlite:///{folder / 'chatcore.db'}")
    engine.dispose()
    with (folder / "chatcore.db").open("r+b") as file:
        file.seek(100)  # past the header: the first page's table of the tables
        file.write(b"\xff" * 4000)
    return f"sqlite:///{folder / 'chatcore.db'}"


def postgres_server() -> str:
    """The PostgreSQL server's URL; a test that needs one is skipped without it, except in CI."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL tests must run in CI: set CHATCORE_TEST_POSTGRES_URL")
        pytest.skip("no PostgreSQL given: set CHATCORE_TEST_POSTGRES_URL to run this test on it too")
    return POSTGRES_URL


def on_the_server(**parts) -> str:
    return make_url(postgres_server()).set(**parts).render_as_string(hide_password=False)


# Each case makes, in this test's folder, a database that cannot be opened, and gives its URL; {folder} is that
# folder, {server} the PostgreSQL server's host and port.
@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            a_text_file,
            "Cannot open the SQLite database {folder}/notes.json: the file is not a database. "
            "Check the path, or set CHATCORE_DB_URL to another file.",
            id="sqlite: not a database",
        ),
        pytest.param(
            a_damaged_database,
            "Cannot open the SQLite database {folder}/chatcore.db: the file is damaged. "
            "Put back a copy of it from a backup, or set CHATCORE_DB_URL to another file.",
            id="sqlite: damaged",
        ),
        pytest.param(
            lambda folder: f"sqlite:///{folder}",
            "Cannot open the SQLite database {folder}: it is a folder, not a file. "
            "Check the path, or set CHATCORE_DB_URL to another file.",
            id="sqlite: a folder",
        ),
        pytest.param(
            lambda folder: "sqlite:////proc/chatcore.db",
            "Cannot open the SQLite database /proc/chatcore.db: it cannot be created in /proc (writing there is not "
            "allowed, or the disk is read-only). Allow writing there, or set CHATCORE_DB_URL to another file.",
            id="sqlite: cannot be created there",
        ),
        pytest.param(
            lambda folder: "sqlite:////proc/chatcore/chatcore.db",
            "Cannot open the SQLite database /proc/chatcore/chatcore.db: its folder /proc/chatcore cannot be created "
            "(nothing can be created there). Create it yourself, or set CHATCORE_DB_URL to another file.",
            id="sqlite: its folder cannot be created",
        ),
        pytest.param(
            lambda folder: f"{a_text_file(folder)}/chatcore.db",
            "Cannot open the SQLite database {folder}/notes.json/chatcore.db: its folder {folder}/notes.json cannot be "
            "created (a file has that name). Create it yourself, or set CHATCORE_DB_URL to another file.",
            id="sqlite: a file in the way of its folder",
        ),
        pytest.param(
            lambda folder: "sqlite+nosuchdriver:///chatcore.db",
            "Cannot open the database: CHATCORE_DB_URL is not a database address chatcore can use. Give it one such "
            "as sqlite:////home/me/chatcore.db or postgresql+psycopg://user:password@host/database.",
            id="not a database address",
        ),
        pytest.param(
            lambda folder: "mysql://chatcore@127.0.0.1/chats",  # its driver is not installed
            "Cannot open the database: CHATCORE_DB_URL is not a database address chatcore can use. Give it one such "
            "as sqlite:////home/me/chatcore.db or postgresql+psycopg://user:password@host/database.",
            id="a database without its driver",
        ),
        pytest.param(
            lambda folder: f"postgresql+psycopg://chatcore:{SECRET}@127.0.0.1:9/chats",
            "Cannot open the PostgreSQL database “chats” at 127.0.0.1:9: no PostgreSQL server answers there. "
            "Start PostgreSQL, or check the host and port in CHATCORE_DB_URL.",
            id="postgresql: not reachable",
        ),
        pytest.param(
            lambda folder: f"postgresql+psycopg://chatcore:{SECRET}@nosuchhost.invalid/chats",
            "Cannot open the PostgreSQL database “chats” at nosuchhost.invalid:5432: no host has that name. "
            "Check the host in CHATCORE_DB_URL.",
            id="postgresql: no such host",
        ),
        pytest.param(
            lambda folder: on_the_server(password=SECRET),
            "Cannot open the PostgreSQL database “{database}” at {server}: the server refused the login of user "
            "“{user}”. Check the user and password in CHATCORE_DB_URL.",
            id="postgresql: wrong password",
            marks=pytest.mark.postgres,
        ),
        pytest.param(
            lambda folder: on_the_server(database="chatcore_nowhere"),
            "Cannot open the PostgreSQL database “chatcore_nowhere” at {server}: the server has no database of "
            "that name. Create it, or name one that exists in CHATCORE_DB_URL.",
            id="postgresql: no such database",
            marks=pytest.mark.postgres,
        ),
    ],
)
def test_a_database_that_cannot_be_opened_is_named_with_what_is_wrong_and_what_to_do(tmp_path, make, message):
    url = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(store.DatabaseUnavailableError) as refused:
        store.open_engine(url)
    server = make_url(POSTGRES_URL or url)
    details = {"folder": tmp_path, "server": f"{server.host}:{server.port or 5432}"}
    assert str(refused.value) == message.format(**details, database=server.database, user=server.username)
    assert SECRET not in str(refused.value)
    assert sorted(tmp_path.rglob("*")) == before  # no file made, not even an empty database


def test_a_database_in_the_data_folder_says_to_change_the_data_folder(tmp_path):
    with pytest.raises(store.DatabaseUnavailableError) as refused:
        store.open_engine(a_text_file(tmp_path), in_data_dir=True)
    assert str(refused.value) == (
        f"Cannot open the SQLite database {tmp_path}/notes.json: the file is not a database. Check the path, "
        "or set CHATCORE_DATA_DIR to another folder (or CHATCORE_DB_URL to another database)."
    )


def test_a_read_only_database_opens_for_reading_unless_it_must_be_updated(migrated_sqlite, tmp_path):
    shutil.copyfile(migrated_sqlite, tmp_path / "current.db")
    writable = store.open_engine(f"sqlite:///{tmp_path / 'current.db'}")
    store.create_chat(writable)
    writable.dispose()
    older = store.create_db_engine(f"sqlite:///{tmp_path / 'older.db'}")
    store.migrate(older, "0001")
    older.dispose()
    current = store.open_engine(f"sqlite:///file:{tmp_path / 'current.db'}?mode=ro&uri=true")
    assert store.count_chats(current) == 1
    with pytest.raises(store.StorageError, match="readonly"):
        store.create_chat(current)
    current.dispose()
    with pytest.raises(store.DatabaseUnavailableError) as refused:
        store.open_engine(f"sqlite:///file:{tmp_path / 'older.db'}?mode=ro&uri=true")
    assert str(refused.value) == (
        f"Cannot open the SQLite database {tmp_path}/older.db: it is read-only, and chatcore must write to it or in "
        f"its folder {tmp_path} to open it (to update it to this version, or to start its journal). "
        "Allow writing to both, or set CHATCORE_DB_URL to another file."
    )


def test_a_database_locked_by_another_program_says_so_once_the_wait_is_over(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    other = sqlite3.connect(tmp_path / "chatcore.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(store.DatabaseUnavailableError) as refused:
            store.open_engine(f"sqlite:///{tmp_path / 'chatcore.db'}")
    finally:
        other.close()
    assert str(refused.value) == (
        f"Cannot open the SQLite database {tmp_path}/chatcore.db: another program has kept it locked for over "
        "0.1 seconds. Close the programs using it (a database browser, say), then try again."
    )


def test_a_database_of_another_program_is_refused_and_left_as_it_was(db_url):
    other = create_engine(db_url)
    with other.begin() as connection:
        connection.execute(text("CREATE TABLE chat (handle VARCHAR)"))
        connection.execute(text("CREATE TABLE contact (name VARCHAR)"))
    with pytest.raises(store.DatabaseUnavailableError, match=r"it holds tables of another program \(chat\), not "):
        store.open_engine(db_url)
    assert sorted(inspect(other).get_table_names()) == ["chat", "contact"]
    other.dispose()


@pytest.mark.postgres
def test_a_postgresql_user_without_rights_on_the_database_is_told_what_to_do():
    admin = create_engine(postgres_server(), isolation_level="AUTOCOMMIT")
    guest = f"chatcore_guest_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f"CREATE ROLE {guest} LOGIN PASSWORD '{SECRET}'")
    try:
        with contextmanager(fresh_postgres_database)(postgres_server()) as url:  # the server user's, not the guest's
            as_guest = make_url(url).set(username=guest, password=SECRET)
            with pytest.raises(store.DatabaseUnavailableError) as refused:
                store.open_engine(as_guest.render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"DROP ROLE {guest}")
        admin.dispose()
    server = make_url(postgres_server())
    assert str(refused.value) == (
        f"Cannot open the PostgreSQL database “{as_guest.database}” at {server.host}:{server.port or 5432}: "
        f"user “{guest}” lacks the rights chatcore needs there (to connect, and to create its tables). "
        "Make it the database's owner, or name a database it owns in CHATCORE_DB_URL."
    )
