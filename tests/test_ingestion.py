"""Reading documents: text per page or section from real and generated files, and every bad input refused clearly."""

import itertools
import random

import pytest
from markdown_it import MarkdownIt

from chatcore.ingestion import DocumentError, decode_text, extract_document, normalise_whitespace
from chatcore.markdown_sections import split_markdown
from tests.documents import make_pdf, sample
from tests.odd_files import encrypted_pdf, zipped

LIMIT = 50 * 2**20


def extract_sample(name: str):
    return extract_document(name, sample(name), LIMIT)


@pytest.mark.parametrize(
    ("name", "pages", "numbers", "expected"),
    [
        ("pdflatex-4-pages.pdf", 4, [1, 2, 3, 4], "Hello, here is some text without a meaning"),
        ("google-doc-document.pdf", 1, [1], "Beautiful is better than ugly."),
        ("minimal-document.pdf", 1, [1], "Lorem ipsum"),
        ("002-trivial-libre-office-writer.pdf", 1, [1], "Lorem ipsum dolor sit amet"),
        ("crazyones-pdfa.pdf", 1, [1], "the crazy ones"),
        ("multicolumn.pdf", 3, [1, 2, 3], "Two-Column Document"),
        ("habibi.pdf", 1, [1], "حَبيبي habibi"),
        ("par-known-paragraphs.docx", 1, [1], "Heading Paragraph\n\nNormal paragraph"),
        ("hdr-header-footer.docx", 2, [1, 2], "section with header"),
        ("blk-paras-and-tables.docx", 3, [1, 2, 3], "Text before"),
    ],
)
def test_text_is_extracted_per_page_or_section(name, pages, numbers, expected):
    extracted = extract_sample(name)
    assert extracted.pages == pages
    assert [section.number for section in extracted.sections] == numbers
    assert expected in "\n".join(section.text for section in extracted.sections)


@pytest.mark.slow
def test_a_long_compressed_pdf_keeps_every_page():
    extracted = extract_sample("GeoTopo-komprimiert.pdf")
    assert extracted.pages == 117
    assert sum(len(section.text) for section in extracted.sections) > 100_000


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("libreoffice-writer-password.pdf", r"^libreoffice-writer-password\.pdf is password protected"),
        ("imagemagick-images.pdf", r"^imagemagick-images\.pdf: no text found, only images: OCR is not supported"),
        ("tbl-having-tables.docx", r"^tbl-having-tables\.docx: no text found\.$"),
        ("having-images.docx", r"^having-images\.docx: no text found, only images: OCR is not supported\.$"),
    ],
)
def test_sample_documents_without_usable_text_are_refused(name, message):
    with pytest.raises(DocumentError, match=message):
        extract_sample(name)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.pdf", b"", "notes.pdf is empty"),
        ("notes.txt", b"", "is empty"),
        ("notes.pdf", b"Just some text, not a PDF.", "not a PDF file"),
        ("notes.docx", b"Just some text, not a Word file.", "not a DOCX file"),
        ("broken.pdf", b"%PDF-1.4\n" + bytes(range(256)) * 4, "damaged PDF"),
        ("cut.pdf", make_pdf(["A page cut short"])[:120], "damaged PDF"),
        ("broken.docx", b"PK\x03\x04" + b"\x00" * 64, "damaged DOCX"),
        ("other.docx", zipped({"hello.txt": b"hi"}), "not a Word document"),
        ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file"),
        ("blank.pdf", make_pdf(["", ""]), "no text found: its pages are blank"),
        ("blank.md", b"  \n\n \t\n", "no text found"),
        ("slides.pptx", b"PK\x03\x04", "only PDF, DOCX, TXT and Markdown"),
        ("README", b"text", "only PDF, DOCX, TXT and Markdown"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(name, data, message):
    with pytest.raises(DocumentError, match=message):
        extract_document(name, data, LIMIT)


def test_a_pdf_encrypted_with_an_empty_password_is_read_and_one_with_a_password_is_refused():
    opened = extract_document("open.pdf", encrypted_pdf("Locked but readable", ""), LIMIT)
    assert [section.text for section in opened.sections] == ["Locked but readable"]
    with pytest.raises(DocumentError, match=r"^locked\.pdf is password protected"):
        extract_document("locked.pdf", encrypted_pdf("Locked", "secret"), LIMIT)


def test_a_file_over_the_size_limit_is_refused_before_it_is_read():
    with pytest.raises(DocumentError, match=r"2\.0 MB; files of at most 1 MB"):
        extract_document("big.txt", b"word " * (2**21 // 5 + 1), max_bytes=2**20)


def test_a_generated_pdf_keeps_its_page_numbers_past_empty_pages():
    extracted = extract_document("made.pdf", make_pdf(["First page text here", "", "Third page text here"]), LIMIT)
    assert extracted.pages == 3
    assert [(section.number, section.text) for section in extracted.sections] == [
        (1, "First page text here"),
        (3, "Third page text here"),
    ]


def test_markdown_is_cut_at_its_headings_and_names_are_only_text():
    data = b"# Intro\n\nHello there.\n\n## Details\n\nMore   words\there.\n"
    extracted = extract_document("<b>../../etc/passwd</b>.md", data, LIMIT)
    assert [(section.number, section.text) for section in extracted.sections] == [
        (1, "# Intro\n\nHello there."),
        (2, "## Details\n\nMore words here."),
    ]


GARDEN = "# Gardening guide\nIntro line.\n\n## Tomatoes\nTomatoes need sun.\n\n## Basil\nBasil likes warmth.\n"


@pytest.mark.parametrize(
    ("text", "headings"),
    [
        (GARDEN, ["# Gardening guide", "## Tomatoes", "## Basil"]),
        ("# One\n\nText.\n\n## Two\n\nMore.", ["# One", "## Two"]),
        ("# Guide\n## Part\nText.\n### Detail\n\nMore.", ["# Guide", "## Part", "### Detail"]),
        ("# Title\n\n## Subtitle\n\nBody.", ["# Title", "## Subtitle"]),
        ("Some text.\n## Last", ["Some text.", "## Last"]),
        ("Some text.\n\n# Last\n", ["Some text.", "# Last"]),
        ("Preface.\n# One\nBody.", ["Preface.", "# One"]),
        ("# One\r\nText.\r\n## Two\r\nMore.", ["# One", "## Two"]),
        ("Intro.\n\n```python\nx = 1\n\n# a comment\ny = 2\n```\n", ["Intro."]),
        ("# Setup\n~~~\n## not a heading\n~~~\n## Use\nRun.", ["# Setup", "## Use"]),
        ("# Doc\n````md\n```\n# still code\n````\n# Next\nText.", ["# Doc", "# Next"]),
        ("# Doc\n```\n# code to the end\n", ["# Doc"]),
        ("# Doc\n```a```\n# Next\nText.", ["# Doc", "# Next"]),
        ("Text.\n\n#hashtag\n\n####### seven\n\n    # indented code", ["Text."]),
        # Setext headings: a paragraph underlined with = or -, however long the line, indented up to three spaces
        ("Title\n=====\nText.\n\nPart\n-\nMore.", ["Title", "Part"]),
        ("Intro.\n\n  Title  \n   ===   \nBody.", ["Intro.", "Title"]),
        ("Intro.\n\nLine one\nline two\n---\nBody.", ["Intro.", "Line one"]),  # the whole paragraph is the heading
        ("# One\nTwo\n---\nText.", ["# One", "Two"]),
        ("Intro.\n\nThe year was\n1984. Then\n---\nBody.", ["Intro.", "The year was"]),  # 1984. starts no list
        ("Intro.\r\n\r\nTitle\r\n=====\r\nBody.", ["Intro.", "Title"]),
        # ... and what only looks like one
        ("Intro.\n\n---\n\nMore.\n\n***\n___", ["Intro."]),  # after a blank line, a thematic break
        ("Intro.\n= =\nText\n    ---\nMore\n--- -", ["Intro."]),  # spaced, or indented as code
        ("---\ntitle: Notes\n# a YAML comment\n---\nIntro.\n\n# One\nText.", ["---", "# One"]),  # front matter
        ("Intro.\n\n```\nTitle\n-----\n```\n~~~\nTitle\n=====\n~~~", ["Intro."]),
        ("Intro.\n\n    code\n---\n    code\n===", ["Intro."]),
        ("Intro.\n\n- item\n---\n1. item\n===\n- item\n\n  more\n  ---\n\n  text\n  ===", ["Intro."]),
        ("Intro.\n- item\nlazy text\n---", ["Intro."]),  # the list's, not a new paragraph
        ("Intro.\n\n> quote\n---\n> quote\nlazy text\n===", ["Intro."]),
        ("Intro.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n---", ["Intro."]),  # a table's header and rows
        ("Intro.\n\n<!--\nNote\n----\n# note\n-->\n<div>\nTitle\n=====\n</div>", ["Intro."]),  # HTML
        ("- item\n\nAfter a list\n---\n> quote\n\nAfter a quote\n===", ["- item", "After a list", "After a quote"]),
        ("Intro.\n\n| a |\n|---|---|\n---", ["Intro.", "| a |"]),  # one cell over two: no table
        ("Intro.\n\n<b>Bold</b> title\n===\n<br/>\n===", ["Intro.", "<b>Bold</b> title"]),  # a lone tag is HTML
    ],
)
def test_markdown_sections_start_at_every_heading_line_outside_code(text, headings):
    extracted = extract_document("notes.md", text.encode(), LIMIT)
    assert [section.text.split("\n")[0] for section in extracted.sections] == headings
    assert [section.number for section in extracted.sections] == list(range(1, len(headings) + 1))
    assert extracted.pages == len(headings)


# Lines that start, end or look like Markdown blocks, for documents made at random
TRICKY_LINES = (
    "Text line", "more text", "", "", "  ", "===", "---", "--", "-", "- - -", "***", "___", "  ---", "    ---",
    "# Head", "## Head", "#nohead", "    # code", "```", "~~~", "````", "```py", "- item", "* item", "+ item",
    "1. one", "2. two", "1) one", "  indented", "    code", "      deep", "> quote", ">", "<div>", "</div>",
    "<!-- c", "-->", "<b>bold</b>", "<span>", "| a | b |", "|---|---|", "a | b", "--|--", "\ttab", "=", "= =",
    "   ===", "  - sub", "   text", "<pre>", "</pre>", "- ", "10. ten", "`code`", "*emph*",
)  # fmt: skip


def test_markdown_sections_start_where_a_commonmark_parser_finds_headings():
    parser = MarkdownIt("commonmark").enable("table")  # GitHub's tables too
    generator = random.Random(11)
    for _ in range(3000):
        text = "\n".join(generator.choices(TRICKY_LINES, k=generator.randint(1, 12)))
        starts = set(itertools.accumulate(part.count("\n") for part in split_markdown(text)[:-1]))
        tokens = parser.parse(text)
        assert starts == {token.map[0] for token in tokens if token.type == "heading_open" and token.level == 0}, text


def test_a_setext_heading_starts_its_section_with_its_underline_and_text():
    text = "Intro.\n\nTomatoes\n========\nThey need sun.\n\nBasil\n-----\nIt likes warmth.\n\n---\n\nThe end."
    extracted = extract_document("garden.md", text.encode(), LIMIT)
    assert [section.text for section in extracted.sections] == [
        "Intro.",
        "Tomatoes\n========\nThey need sun.",
        "Basil\n-----\nIt likes warmth.\n\n---\n\nThe end.",
    ]


def test_a_long_markdown_file_keeps_every_heading_and_its_code():
    sections = [
        f"Part {number}\n{'=-'[number % 2] * 6}\nText of part {number}.\n\n- a point\n- another\n\n"
        f"```\n# not a heading\nnor this\n---\n```\n\n    code\n---\n\n## Subpart {number}\n| a | b |\n|-|-|\n\n"
        for number in range(1, 1001)
    ]
    extracted = extract_document("long.md", "".join(sections).encode(), LIMIT)
    firsts = [section.text.split("\n")[0] for section in extracted.sections]
    assert firsts == [line for number in range(1, 1001) for line in (f"Part {number}", f"## Subpart {number}")]
    assert "# not a heading\nnor this\n---" in extracted.sections[0].text


def test_a_markdown_heading_directly_followed_by_text_keeps_it_in_its_section():
    extracted = extract_document("garden.md", GARDEN.encode(), LIMIT)
    assert [section.text for section in extracted.sections] == [
        "# Gardening guide\nIntro line.",
        "## Tomatoes\nTomatoes need sun.",
        "## Basil\nBasil likes warmth.",
    ]


@pytest.mark.parametrize(
    ("data", "text", "note"),
    [
        ("Crème brûlée".encode(), "Crème brûlée", ""),
        (b"\xef\xbb\xbf" + "Crème".encode(), "Crème", ""),
        ("Crème \u2013 “quoted”".encode("cp1252"), "Crème \u2013 “quoted”", "read as Windows-1252"),
        (b"caf\xe9 cr\xe8me, tr\x81s bien", "café crème, tr s bien", "read as Latin-1"),
    ],
)
def test_text_encodings_are_detected(data, text, note):
    decoded, found = decode_text("menu.txt", data)
    assert decoded == text
    assert note in found and bool(found) == bool(note)


@pytest.mark.parametrize(
    ("data", "readable"),
    [
        (b"word " * 10 + b"\x07" * 5, True),  # 5 controls of 55 characters: under a tenth
        (b"word " * 10 + b"\x07" * 6, False),
        (b"word " * 10 + b"\x1c\x1d\x1e\x1f\x0b\x0c" * 10, True),  # separators: whitespace, not controls
        (b"word " * 10 + "\x85\x9f".encode() * 6, True),  # NEL is whitespace, so 6 of 62
        (b"word " * 10 + "\x80\x9f".encode() * 3, False),
    ],
)
def test_a_text_file_is_refused_when_over_a_tenth_of_it_is_control_characters(data, readable):
    if readable:
        assert decode_text("log.txt", data)[0].startswith("word word")
    else:
        with pytest.raises(DocumentError, match=r"^log\.txt is not a text file"):
            decode_text("log.txt", data)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  a \t b  ", "a b"),
        ("a\r\nb", "a\nb"),
        ("a\n\n\n\n b", "a\n\nb"),
        ("\n\n", ""),
        ("a \u00a0\t b\u3000c", "a b c"),
        ("a\rb\x0bc\u2028d", "a b c d"),  # line breaks other than \n are spaces
        (" \n \n a \n\t\n \n\n b \r\n", "a\n\nb"),
        ("  x  \n  y  ", "x\ny"),
    ],
)
def test_whitespace_is_normalised(raw, clean):
    assert normalise_whitespace(raw) == clean
