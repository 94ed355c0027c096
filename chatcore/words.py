"""Words: how stored text is cleaned and questions are split, so that a question's words are the index's words.

Both full-text indexes (SQLite's unicode61, PostgreSQL's 'simple' parser) take letters, digits and their
combining marks as parts of a word. A question is split into such runs only, never inside them; each run is then
handed to the database, which splits it exactly as it split the indexed text. Stored document text is composed
(NFC) and rid of private-use characters, which the two databases treat differently and which mean nothing to a
reader or a model (a symbol font's bullets, most often).
"""

import itertools
import re
import unicodedata

WORD_CATEGORIES = ("L", "N", "M")  # letters, numbers, combining marks
UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA")  # written without spaces between words
KEPT_CONTROLS = "\t\n\r\f"
# Every character is_noise may find: controls (but those kept) and the private-use areas. Only these are looked at,
# as Python looking at each character of a 50 MB file took half a minute.
NOISE_CANDIDATES = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\U000f0000-\U0010ffff]")


def clean_text(text: str) -> str:
    """Text composed (NFC), with private-use and control characters (but line breaks and tabs) as spaces."""
    return NOISE_CANDIDATES.sub(blank_noise, unicodedata.normalize("NFC", text))


def blank_noise(found: re.Match[str]) -> str:
    """A space for a noise character, else the character."""
    return " " if is_noise(found.group()) else found.group()


def is_noise(char: str) -> bool:
    """A private-use or control character: no part of a word, and nothing a reader can see."""
    category = unicodedata.category(char)
    return category == "Co" or (category == "Cc" and char not in KEPT_CONTROLS)


def is_word_char(char: str) -> bool:
    """A letter, digit or combining mark, or a private-use character (SQLite's index keeps those in words)."""
    category = unicodedata.category(char)
    return category[0] in WORD_CATEGORIES or category == "Co"


def has_words(text: str) -> bool:
    """Whether the text has a letter or a digit."""
    return any(unicodedata.category(char)[0] in "LN" for char in text)


def query_words(question: str) -> list[str]:
    """The question's words, lowercased and composed, each once, in order: runs of letters, digits and marks."""
    composed = unicodedata.normalize("NFC", question.lower())
    runs = ("".join(chars) for is_word, chars in itertools.groupby(composed, is_word_char) if is_word)
    return list(dict.fromkeys(run for run in runs if has_words(run)))


def is_unspaced(word: str) -> bool:
    """Whether the word is in a script written without spaces (Chinese, Japanese): the index holds whole runs."""
    return any(unicodedata.name(char, "").startswith(UNSPACED_SCRIPTS) for char in word)
