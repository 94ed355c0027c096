"""Storage: chats, messages, pragmas and migrations."""

import pytest
from sqlalchemy import text

from chatcore import store
from chatcore.models import Status, tokens_per_second


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


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_data_folder_is_created(tmp_path):
    engine = store.open_engine(f"sqlite:///{tmp_path / 'new' / 'deeper' / 'chat.db'}")
    assert (tmp_path / "new" / "deeper" / "chat.db").exists()
    engine.dispose()


def test_migrate_is_idempotent_and_keeps_data(db_url):
    engine = store.open_engine(db_url)
    head = store.schema_version(engine)
    chat = store.create_chat(engine)
    store.add_message(engine, chat.id, "user", "remember me")
    engine.dispose()
    reopened = store.open_engine(db_url)
    store.migrate(reopened)
    assert store.schema_version(reopened) == head
    assert [m.content for m in store.recent_messages(reopened, chat.id, limit=5)] == ["remember me"]
    reopened.dispose()


def test_database_from_a_newer_version_is_refused(engine, db_url):
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(store.SchemaTooNewError, match="newer version"):
        store.open_engine(db_url)
