"""Cutting a document's sections into overlapping chunks of a token budget, with their page and offsets."""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from chatcore.ingestion import Section
from chatcore.tokens import MESSAGE_OVERHEAD_TOKENS, Ratio

CHUNK_TOKENS = 200
OVERLAP_TOKENS = 40
SPACE = re.compile(r"\s")


@dataclass(frozen=True)
class Piece:
    """A chunk of a document: its place in order, its page or section, and its characters [start, end) there."""

    ordinal: int
    page: int
    start: int
    end: int
    text: str


def chunk_sections(
    sections: Iterable[Section],
    max_tokens: int = CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
    chars_per_token: float = Ratio().value,
) -> list[Piece]:
    """Each section cut into chunks of at most `max_tokens` (estimated), neighbours sharing about `overlap_tokens`."""
    size = int((max_tokens - MESSAGE_OVERHEAD_TOKENS) * chars_per_token)
    overlap = int(overlap_tokens * chars_per_token)
    pieces: list[Piece] = []
    for section in sections:
        for start, end in split_spans(section.text, size, overlap):
            pieces.append(Piece(len(pieces), section.number, start, end, section.text[start:end]))
    return pieces


def split_spans(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Spans of at most `size` characters covering `text`, cut at whitespace, each overlapping the last."""
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = len(text) if len(text) - start <= size else cut_point(text, start, start + size)
        spans.append((start, end))
        if end >= len(text):
            return spans
        start = next_start(text, start, end, overlap)


def cut_point(text: str, start: int, limit: int) -> int:
    """The last whitespace before `limit` in the second half of the span, else `limit` (one very long word)."""
    spaces = [match.start() for match in SPACE.finditer(text, start + (limit - start) // 2, limit)]
    return spaces[-1] if spaces else limit


def next_start(text: str, start: int, end: int, overlap: int) -> int:
    """Where the next span begins: `overlap` characters before `end`, moved on to a word's start."""
    candidate = max(end - overlap, start + 1)
    space = SPACE.search(text, candidate - 1, end)
    begin = space.end() if space else candidate
    while begin < len(text) and text[begin].isspace():
        begin += 1
    return begin
