"""Chat search: titles by substring, messages by full-text index, on both databases."""

import pytest
from sqlalchemy import text

from chatcore import search, store


@pytest.fixture
def chats(engine):
    """Three chats with known titles and messages; returns their ids by name."""
    seeded = {
        "lisbon": ("Trip to Lisbon", ["Which trams go to Belém?", "Tram 15 goes to Belém."]),
        "pasta": ("Dinner 100% ideas_v2", ["How long do I boil fresh pasta?", "About three minutes."]),
        "tides": ("Physics questions", ["Why are there two tides a day?", "Because of the Moon's pull."]),
    }
    ids = {}
    for name, (title, contents) in seeded.items():
        chat = store.create_chat(engine)
        store.update_chat(engine, chat.id, title=title)
        for index, content in enumerate(contents):
            store.add_message(engine, chat.id, "user" if index % 2 == 0 else "assistant", content)
        ids[name] = chat.id
    return ids


def found(engine, query):
    return [(hit.chat_id, hit.message_id is None) for hit in search.search_chats(engine, query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lisbon", [("lisbon", True)]),
        ("tram", [("lisbon", False), ("lisbon", False)]),
        ("boil pasta", [("pasta", False)]),
        ("BOIL", [("pasta", False)]),
        ("minute", [("pasta", False)]),
        ("moon", [("tides", False)]),
        ("100%", [("pasta", True)]),
        ("ideas_v2", [("pasta", True)]),
        ("what's up?!", []),
        ("   ", []),
        ("*", []),
        ("unicorn", []),
    ],
)
def test_search_finds_titles_then_messages(engine, chats, query, expected):
    assert sorted(found(engine, query)) == sorted((chats[name], is_title) for name, is_title in expected)


def test_snippet_marks_the_match(engine, chats):
    [hit] = search.search_chats(engine, "boil")
    assert "\x02boil\x03" in hit.snippet
    assert hit.title == "Dinner 100% ideas_v2"


def test_a_hit_shows_its_title_and_snippet_as_typed_and_the_match_in_bold(engine, chats):
    store.add_message(engine, chats["pasta"], "user", "Does __init__.py *simmer* it?")
    [hit] = search.search_chats(engine, "simmer")
    typed_up_to_the_match = "Dinner 100\\% ideas\\_v2 · Does \\_\\_init\\_\\_\\.py \\***simmer**"
    assert search.hit_label(hit).startswith(typed_up_to_the_match)


def test_index_follows_updates_and_deletes(engine, chats):
    message = store.add_message(engine, chats["tides"], "assistant", "")
    store.update_message(engine, message.id, content="Spring tides follow the full moon.")
    assert (chats["tides"], False) in found(engine, "spring")
    store.delete_chat(engine, chats["tides"])
    assert found(engine, "moon") == []
    assert found(engine, "spring") == []


def test_upgrading_an_existing_database_indexes_its_messages(db_url):
    engine = store.create_db_engine(db_url)
    store.migrate(engine, revision="0002_context")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO chat (title, model, system_prompt, options, memory, memory_enabled, created_at, "
                "updated_at) VALUES ('Old', '', '', '{}', '', true, '2025-05-01 10:00:00', '2025-05-01 10:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO message (chat_id, role, content, status, error, model, created_at) VALUES "
                "((SELECT id FROM chat), 'user', 'written before search existed', 'complete', '', '', '2025-05-01')"
            )
        )
    store.migrate(engine)
    [chat] = store.list_chats(engine, limit=5)
    assert found(engine, "existed") == [(chat.id, False)]
    engine.dispose()
