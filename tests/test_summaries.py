"""Document summaries: one request for a short document, map-reduce over the parts of a long one."""

import pytest

from chatcore import documents, store, summaries
from chatcore.backends import FakeBackend

LIMIT = 50 * 2**20
MODEL = "fake:latest"


@pytest.mark.parametrize(
    ("texts", "room", "groups"),
    [
        (["a"], 10, ["a"]),
        (["aaa", "bbb", "ccc"], 100, ["aaa\n\nbbb\n\nccc"]),
        (["aaa", "bbb", "ccc", "ddd"], 6, ["aaa\n\nbbb", "ccc\n\nddd"]),
        (["aaaaaaaa", "bbbbbbbb", "c"], 5, ["aaaaaaaa\n\nbbbbbbbb", "c"]),  # two at least, even over the room
        ([], 10, []),
    ],
)
def test_texts_are_packed_in_order_into_groups_within_the_room(texts, room, groups):
    assert summaries.pack_texts(texts, room) == groups


def add_text(engine, words: int) -> int:
    """A text document of numbered words, so that each part differs; its id."""
    text = " ".join(f"word{number}" for number in range(words)).encode()
    return documents.add_file(engine, None, "long.txt", text, LIMIT).document.id


def test_a_short_document_is_summarised_in_one_request(engine):
    document_id = add_text(engine, 50)
    backend = FakeBackend(replies=["A list of words."])
    progress = []
    summary = summaries.summarise_document(engine, backend, MODEL, document_id, 4096, progress.append)
    assert summary == "A list of words."
    [call] = backend.calls
    assert call["messages"][0]["content"].startswith("Summarise the document long.txt below")
    assert "word0 word1" in call["messages"][0]["content"]
    assert call["options"] == {"num_ctx": 4096, "num_predict": summaries.SUMMARY_TOKENS, "temperature": 0.2}
    assert progress == ["Summarising"]


def test_a_long_document_is_summarised_part_by_part_then_combined(engine):
    document_id = add_text(engine, 3000)
    chunks = store.document_chunks(engine, document_id)
    backend = FakeBackend(replies=[f"Part {number}." for number in range(1, 100)])
    progress = []
    summary = summaries.summarise_document(engine, backend, MODEL, document_id, 2048, progress.append)
    requests = [call["messages"][0]["content"] for call in backend.calls]
    parts = [request for request in requests if request.startswith("Below is part")]
    assert 1 < len(parts) < len(chunks)
    assert all(f"of {len(parts)} of the document long.txt" in part for part in parts)
    assert all(len(request) < 2048 * 4 for request in requests)  # each request fits the context
    for chunk in chunks:  # every passage is read once at least
        assert any(chunk.text in part for part in parts)
    assert requests[-1].startswith("Below are summaries of consecutive parts")
    assert "Part 1.\n\nPart 2." in requests[-1]
    assert summary == f"Part {len(requests)}."
    assert progress[0] == f"Summarising: part 1 of {len(parts)}"
    assert progress[-1] == "Summarising: combining the parts"


def test_many_part_summaries_are_combined_in_rounds(engine):
    document_id = add_text(engine, 3000)
    long_note = "note " * 300  # each part's summary takes 1,500 characters: a few fit in one request
    backend = FakeBackend(replies=[long_note] * 200)
    summaries.summarise_document(engine, backend, MODEL, document_id, 2048, lambda _: None)
    combines = [call for call in backend.calls if "Below are summaries" in call["messages"][0]["content"]]
    assert len(combines) > 1
