"""Imports: a lossless round trip, no duplicates, and hostile files refused with nothing written."""

import json

import pytest

from chatcore import archive, documents, importer, store
from chatcore.archive import MAX_CHATS, MAX_TEXT_CHARS, MAX_TITLE_CHARS, ArchiveError
from chatcore.export import Format, plan_export
from chatcore.importer import ImportReport, import_archive
from tests.conftest import at


@pytest.fixture
def other_engine(tmp_path):
    """A second, empty database to import into."""
    engine = store.open_engine(f"sqlite:///{tmp_path / 'other.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def exported(engine, sample_chats) -> bytes:
    """The JSON export of the sample chats."""
    return plan_export(engine, None, Format.JSON).build()


def comparable(export: bytes) -> dict:
    """An export without what may differ between databases: ids and the export's own time."""
    document = json.loads(export)
    del document["exported_at"]
    for chat in document["chats"]:
        del chat["id"]
        for message in chat["messages"]:
            del message["id"]
    return document


def database_contents(engine) -> dict:
    """Everything stored, to check that a refused import wrote nothing."""
    chats = store.find_chats(engine, None)
    return {
        chat.model_dump_json(): [m.model_dump_json() for m in store.list_messages(engine, chat.id)] for chat in chats
    }


def edited(change):
    """A change of the export's bytes, made to its parsed document."""

    def apply(raw: bytes) -> bytes:
        document = json.loads(raw)
        change(document)
        return json.dumps(document).encode()

    return apply


def parent_and_key(document: dict, path: str) -> tuple:
    """The container of the field at a path such as chats.1.messages.0.role, and the field's key."""
    *parents, key = [int(part) if part.isdigit() else part for part in path.split(".")]
    for part in parents:
        document = document[part]
    return document, key


def set_field(path: str, value):
    """A change that sets one field."""

    def change(document: dict) -> None:
        parent, key = parent_and_key(document, path)
        parent[key] = value

    return edited(change)


def drop_field(path: str):
    """A change that removes one field."""

    def change(document: dict) -> None:
        parent, key = parent_and_key(document, path)
        del parent[key]

    return edited(change)


def test_round_trip_into_an_empty_database_gives_the_same_export(exported, other_engine):
    report = import_archive(other_engine, exported)
    assert report == ImportReport(imported=["Trip to <b>Lisbon</b>", "Recipes"], skipped=[])
    assert comparable(plan_export(other_engine, None, Format.JSON).build()) == comparable(exported)


def test_importing_twice_adds_nothing_the_second_time(exported, other_engine):
    import_archive(other_engine, exported)
    report = import_archive(other_engine, exported)
    assert report == ImportReport(imported=[], skipped=["Trip to <b>Lisbon</b>", "Recipes"])
    assert store.count_chats(other_engine) == 2


def test_chats_exported_from_this_database_are_recognised(engine, exported):
    before = database_contents(engine)
    assert import_archive(engine, exported).imported == []
    assert database_contents(engine) == before


def test_a_chat_twice_in_one_file_is_imported_once(exported, other_engine):
    document = json.loads(exported)
    document["chats"].append(document["chats"][0])
    report = import_archive(other_engine, json.dumps(document).encode())
    assert report.skipped == ["Trip to <b>Lisbon</b>"]
    assert store.count_chats(other_engine) == 2


def test_a_continued_chat_gets_only_the_messages_it_lacks(engine, sample_chats, other_engine):
    import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    store.add_message(engine, sample_chats[1], "user", "And bread?")
    report = import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    assert report == ImportReport(extended=["Recipes"], skipped=["Trip to <b>Lisbon</b>"], added_messages=1)
    assert store.count_chats(other_engine) == 2
    recipes = next(chat for chat in store.find_chats(other_engine, None) if chat.title == "Recipes")
    assert [m.content for m in store.list_messages(other_engine, recipes.id)] == ["Soup?", "Yes.", "And bread?"]
    assert comparable(plan_export(other_engine, None, Format.JSON).build()) == comparable(
        plan_export(engine, None, Format.JSON).build()
    )


def test_an_older_backup_imported_after_the_chat_went_on_adds_no_duplicate(engine, sample_chats):
    backup = plan_export(engine, None, Format.JSON).build()
    store.add_message(engine, sample_chats[1], "user", "And bread?")
    store.update_chat(engine, sample_chats[1], title="Soups and breads")
    report = import_archive(engine, backup)
    assert report == ImportReport(skipped=["Trip to <b>Lisbon</b>", "Soups and breads"])
    assert store.count_chats(engine) == 2
    assert store.count_messages(engine, sample_chats[1]) == 3


def test_a_chat_changed_on_both_sides_is_left_as_it_is_and_said_so(engine, sample_chats, other_engine):
    import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    store.add_message(engine, sample_chats[1], "user", "And bread?")
    [copy] = [chat for chat in store.find_chats(other_engine, None) if chat.title == "Recipes"]
    store.add_message(other_engine, copy.id, "user", "And salad?")
    report = import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    assert report.diverged == ["Recipes"] and "changed both here and in the file" in report.summary()
    assert [m.content for m in store.list_messages(other_engine, copy.id)] == ["Soup?", "Yes.", "And salad?"]
    assert store.count_chats(other_engine) == 2


def as_version_1(export: bytes) -> bytes:
    """An export as chatcore wrote it before chats had a uid and replies their sources and finishing time."""
    document = json.loads(export)
    document["format_version"] = 1
    for chat in document["chats"]:
        del chat["uid"]
        for message in chat["messages"]:
            del message["sources"], message["finished_at"]
    return json.dumps(document).encode()


def test_a_version_1_export_imports_and_is_recognised_after_the_chat_went_on(engine, sample_chats, other_engine):
    backup = as_version_1(plan_export(engine, None, Format.JSON).build())
    assert import_archive(other_engine, backup).imported == ["Trip to <b>Lisbon</b>", "Recipes"]
    [copy] = [chat for chat in store.find_chats(other_engine, None) if chat.title == "Recipes"]
    store.add_message(other_engine, copy.id, "user", "And bread?")
    assert import_archive(other_engine, backup) == ImportReport(skipped=["Trip to <b>Lisbon</b>", "Recipes"])
    assert store.count_chats(other_engine) == 2


def test_sources_and_finishing_times_round_trip(engine, sample_chats, other_engine):
    trip = sample_chats[0]
    added = documents.add_file(engine, trip, "menu.md", b"# Menu\n\nSoup of the day.", 2**20).document
    reply = store.list_messages(engine, trip)[1]
    store.save_reply_sources(engine, reply.id, [chunk.id for chunk in store.document_chunks(engine, added.id)])
    store.update_message(engine, reply.id, finished_at=at(9, 0, 9))
    exported = plan_export(engine, None, Format.JSON).build()
    import_archive(other_engine, exported)
    again = plan_export(other_engine, None, Format.JSON).build()
    without_documents = [comparable(export) for export in (exported, again)]
    for document in without_documents:  # described, not carried: the files are added again after an import
        for chat in document["chats"]:
            del chat["documents"]
    assert without_documents[0] == without_documents[1]
    message = json.loads(again)["chats"][0]["messages"][1]
    assert message["finished_at"] == "2025-03-01T09:00:09Z"
    assert message["sources"] == [
        {"label": 1, "document_sha256": added.sha256, "document_name": "menu.md", "document_kind": "md",
         "page": 1, "text": "# Menu\n\nSoup of the day."}
    ]  # fmt: skip


def test_html_is_stored_as_text(exported, other_engine):
    import_archive(other_engine, exported)
    trip = store.find_chats(other_engine, None)[0]
    assert trip.title == "Trip to <b>Lisbon</b>"
    assert store.list_messages(other_engine, trip.id)[2].content == "And <script>alert(1)</script>?"


def test_times_with_an_offset_are_stored_in_utc(exported, other_engine):
    document = json.loads(exported)
    document["chats"][0]["created_at"] = "2025-03-01T10:00:00+01:00"
    import_archive(other_engine, json.dumps(document).encode())
    assert store.find_chats(other_engine, None)[0].created_at.isoformat() == "2025-03-01T09:00:00+00:00"


def test_a_failure_while_writing_leaves_nothing_behind(exported, other_engine, monkeypatch):
    add_chat = importer.add_chat
    added = []

    def fail_on_the_second_chat(session, record):
        if added:
            raise RuntimeError("disk full")
        add_chat(session, record)
        added.append(record)

    monkeypatch.setattr(importer, "add_chat", fail_on_the_second_chat)
    with pytest.raises(RuntimeError, match="disk full"):
        import_archive(other_engine, exported)
    assert store.count_chats(other_engine) == 0


def test_a_file_too_large_is_refused_before_parsing(exported, other_engine, monkeypatch):
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", len(exported) - 1)
    with pytest.raises(ArchiveError, match="larger than"):
        import_archive(other_engine, exported)


def test_problems_are_listed_briefly_however_long_the_names_in_the_file(exported, other_engine):
    hostile = edited(lambda document: document["chats"][0].update({f"<b>{index}</b>" * 1000: 1 for index in range(50)}))
    with pytest.raises(ArchiveError) as refused:
        import_archive(other_engine, hostile(exported))
    assert len(str(refused.value)) < 1000
    assert str(refused.value).endswith("- … and 45 more")


# The second chat is the broken one, so the first, valid, chat must not be written either.
MALFORMED = [
    pytest.param(lambda raw: b"hello", "file: Invalid JSON: expected value at line 1 column 1", id="not JSON"),
    pytest.param(lambda raw: raw[: len(raw) // 2], "file: Invalid JSON: EOF while parsing", id="truncated"),
    pytest.param(lambda raw: b"[]", "file: Input should be an object", id="not an object"),
    pytest.param(
        set_field("format_version", 3), "format_version: version 3 is not supported", id="wrong format_version"
    ),
    pytest.param(
        set_field("format_version", "1"), "format_version: Input should be a valid integer", id="format_version as text"
    ),
    pytest.param(
        set_field("chats.1.messages.0.role", "bot"),
        "chats[1].messages[0].role: Input should be 'user', 'assistant' or 'system'",
        id="unknown role",
    ),
    pytest.param(
        set_field("chats.1.messages.1.status", "done"),
        "chats[1].messages[1].status: Input should be "
        "'queued', 'streaming', 'complete', 'cut', 'stopped', 'partial' or 'error'",
        id="unknown status",
    ),
    pytest.param(
        set_field("chats.1.messages.1.reply_tokens", "12"),
        "chats[1].messages[1].reply_tokens: Input should be a valid integer",
        id="tokens as text",
    ),
    pytest.param(
        set_field("chats.1.messages.1.reply_tokens", True),
        "reply_tokens: Input should be a valid integer",
        id="tokens as bool",
    ),
    pytest.param(
        set_field("chats.1.messages.1.total_ms", -1.0),
        "total_ms: Input should be greater than or equal to 0",
        id="negative time",
    ),
    pytest.param(
        set_field("chats.1.messages.0.content", ["a"]),
        "chats[1].messages[0].content: Input should be a valid string",
        id="content as list",
    ),
    pytest.param(lambda raw: raw.replace(b"2150.5", b"NaN"), "total_ms: Input should be a finite number", id="NaN"),
    pytest.param(
        set_field("chats.1.created_at", "yesterday"),
        "chats[1].created_at: Input should be a valid datetime",
        id="bad time",
    ),
    pytest.param(
        set_field("chats.1.messages.0.content", "x" * (MAX_TEXT_CHARS + 1)),
        "chats[1].messages[0].content: String should have at most 2000000 characters",
        id="huge content",
    ),
    pytest.param(
        set_field("chats.1.title", "t" * (MAX_TITLE_CHARS + 1)),
        "chats[1].title: String should have at most 500 characters",
        id="long title",
    ),
    pytest.param(
        drop_field("chats.1.messages.0.content"), "chats[1].messages[0].content: Field required", id="missing field"
    ),
    pytest.param(drop_field("chats"), "chats: Field required", id="missing chats"),
    pytest.param(
        set_field("chats.1.source", "elsewhere"), "chats[1].source: Extra inputs are not permitted", id="unknown field"
    ),
    pytest.param(
        edited(lambda document: document["chats"].extend(document["chats"][:1] * MAX_CHATS)),
        "chats: List should have at most 10000 items",
        id="too many chats",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_malformed_files_are_refused_and_nothing_is_written(exported, other_engine, change, message):
    store.create_chat(other_engine)
    before = database_contents(other_engine)
    with pytest.raises(ArchiveError) as refused:
        import_archive(other_engine, change(exported))
    assert message in str(refused.value)
    assert database_contents(other_engine) == before


@pytest.mark.parametrize(
    ("report", "summary"),
    [
        (ImportReport(), "Imported 0 chats."),
        (ImportReport(imported=["Plans"]), "Imported 1 chat: “Plans”."),
        (
            ImportReport(imported=["A", "B"], skipped=["C"]),
            "Imported 2 chats: “A”, “B”. Skipped 1 chat already here: “C”.",
        ),
        (
            ImportReport(skipped=list("abcdefghijkl")),
            "Imported 0 chats. Skipped 12 chats already here: “a”, “b”, “c”, “d”, “e”, “f”, “g”, “h”, “i”, “j” "
            "and 2 more.",
        ),
        (
            ImportReport(extended=["A"], diverged=["B"], added_messages=2),
            "Imported 0 chats. Added 2 messages to 1 chat: “A”. Skipped 1 chat changed both here and in the file "
            "since the export (left as they are here): “B”.",
        ),
    ],
)
def test_report_summary(report, summary):
    assert report.summary() == summary


def test_a_chat_memory_survives_the_round_trip(engine, sample_chats, other_engine):
    trip_messages = store.list_messages(engine, sample_chats[0])
    store.save_memory(
        engine, sample_chats[0], expected_until=None, memory="They ate at the market.", until=trip_messages[1].id
    )
    import_archive(other_engine, plan_export(engine, None, Format.JSON).build())
    imported = next(chat for chat in store.find_chats(other_engine, None) if chat.memory)
    covered = next(
        message for message in store.list_messages(other_engine, imported.id) if message.id == imported.memory_until
    )
    assert (imported.memory, covered.content) == ("They ate at the market.", trip_messages[1].content)


def test_memory_must_cover_one_of_the_chats_messages(exported, other_engine):
    document = json.loads(exported)
    document["chats"][0]["memory_until"] = 999_999
    with pytest.raises(ArchiveError, match="memory_until: 999999 is not the id of one of this chat's messages"):
        import_archive(other_engine, json.dumps(document).encode())
    assert store.count_chats(other_engine) == 0
