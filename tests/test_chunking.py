"""Chunking: no text lost, neighbours overlap, every chunk within its token limit, pages and offsets kept."""

import itertools
import re

import pytest

from chatcore.chunking import chunk_sections, split_spans
from chatcore.ingestion import Section
from chatcore.tokens import estimate_tokens

WORDS = " ".join(f"word{index}" for index in range(600))


def words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


@pytest.mark.parametrize(
    ("text", "size", "overlap"),
    [
        (WORDS, 400, 80),
        (WORDS, 400, 0),
        (WORDS, 100, 60),
        ("short text", 400, 80),
        ("x" * 1000, 300, 50),  # one word longer than a chunk is cut inside
        ("para one.\n\npara two is here.\n\n" * 40, 120, 30),
    ],
)
def test_spans_cover_the_text_within_the_size(text, size, overlap):
    spans = split_spans(text, size, overlap)
    assert all(0 < end - start <= size for start, end in spans)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    covered = set().union(*(range(start, end) for start, end in spans))
    assert all(index in covered for index, char in enumerate(text) if not char.isspace())


def test_neighbouring_chunks_overlap_by_whole_words():
    spans = split_spans(WORDS, 400, 80)
    for (_, end), (start, _) in itertools.pairwise(spans):
        shared = WORDS[start:end]
        assert 40 <= len(shared) <= 80
        assert shared.startswith("word") and WORDS[start - 1] == " "


@pytest.mark.parametrize("max_tokens", [20, 60, 200])
def test_chunks_keep_pages_offsets_and_the_token_limit(max_tokens):
    sections = [Section(2, WORDS), Section(5, "the last page")]
    pieces = chunk_sections(sections, max_tokens=max_tokens, overlap_tokens=5)
    assert [piece.ordinal for piece in pieces] == list(range(len(pieces)))
    assert {piece.page for piece in pieces} == {2, 5}
    assert all(estimate_tokens(piece.text) <= max_tokens for piece in pieces)
    for piece in pieces:
        source = WORDS if piece.page == 2 else "the last page"
        assert source[piece.start : piece.end] == piece.text
    kept = {word for piece in pieces if piece.page == 2 for word in words(piece.text)}
    assert kept == set(words(WORDS))
