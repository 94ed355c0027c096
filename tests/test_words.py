"""Words: a document's words are found by a question with the same words, whatever the script, on both databases."""

import unicodedata

import pytest

from chatcore import documents, retrieval, store
from chatcore.words import clean_text, is_noise, query_words

LIMIT = 50 * 2**20


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("The bullet\ue000word stands beside a private-use glyph.", "Where is the bullet?"),
        ("Un cafe\u0301 noir, s'il vous plaît.", "Un café?"),  # decomposed in the file, composed in the question
        ("Un café noir, s'il vous plaît.", "cafe\u0301"),  # and the other way round
        ("Welcome in Arabic is حَبيبي and more.", "حَبيبي"),  # right to left, with vowel marks
        ("בראשית ברא אלהים את השמים", "מה ברא אלהים?"),  # right to left, plain
        ("नमस्ते दुनिया, a greeting.", "नमस्ते"),  # vowel signs are combining marks inside the word
        ("東京都に住んでいます。", "東京都"),  # no spaces between words
        ("Straße und Maße", "STRASSE straße"),
    ],
)
def test_a_question_finds_the_words_of_a_document(engine, text, question):
    chat = store.create_chat(engine)
    documents.add_file(engine, chat.id, "words.txt", text.encode(), LIMIT)
    assert [passage.name for passage in retrieval.find_passages(engine, chat.id, question)] == ["words.txt"]


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("word\ue000glued", ["word\ue000glued"]),
        ("حَبيبي!", ["حَبيبي"]),
        ("cafe\u0301 CAFÉ", ["café"]),
        ("foo_bar x-y", ["foo", "bar", "x", "y"]),
        ("\u0301 ... ?", []),
    ],
)
def test_a_question_is_split_into_runs_of_letters_digits_and_marks(question, words):
    assert query_words(question) == words


def test_stored_text_is_composed_and_rid_of_private_use_and_control_characters():
    assert clean_text("cafe\u0301\ue000x\x07y\tz\n") == "café x y\tz\n"


def test_every_noise_character_and_no_other_is_blanked():
    everything = unicodedata.normalize("NFC", "".join(map(chr, range(0x110000))))
    assert clean_text(everything) == "".join(" " if is_noise(char) else char for char in everything)
