"""Markdown made safe to show: images only as links, a user's text as typed."""

import pytest
from markdown_it import MarkdownIt

from chatcore.markdown import escape_markdown, link_images, link_images_as_streamed

GFM = MarkdownIt("commonmark").enable(["table", "strikethrough"])
URL = "http://127.0.0.1:9999/leak?secret=4711"


def rendered(text: str) -> str:
    return GFM.render(text)


@pytest.mark.parametrize(
    "text",
    [
        f"![x]({URL})",
        f"see ![x][ref] here\n\n[ref]: {URL}",
        f"a shortcut ![ref] too\n\n[ref]: {URL}",
        f"[![inside a link]({URL})](https://example.com)",
        f"> quoted\n> ![x]( {URL} 'a title' )",
        f"- item\n\n  ![x]({URL})",
        f"| a | b |\n|---|---|\n| ![x]({URL}) | `c![d]` |",
        f"# A heading ![x]({URL})",
        f"\\\\![an escaped backslash, then an image]({URL})",
        f"a\rb ![x]({URL})",
    ],
)
def test_every_image_becomes_a_link_to_it(text):
    shown = rendered(link_images(text))
    assert "<img" not in shown
    assert "<a href=" in shown


def test_text_without_images_is_left_as_it_is():
    text = "Use `vec![1, 2]`:\n\n```rust\nlet v = vec![1];\n```\n\n\\![not an image](x) and [a link](y)"
    assert link_images(text) == text


def test_code_blocks_beside_an_image_are_left_as_they_are():
    text = f"![x]({URL})\n\n```rust\nlet v = vec![1];\n```\n"
    assert "let v = vec![1];" in link_images(text)
    assert "<img" not in rendered(link_images(text))


def test_a_streamed_reply_never_shows_an_image_and_ends_when_an_image_completes():
    pieces = ["see ![x](", URL, ") and more", " text"]
    shown = ""
    for piece in link_images_as_streamed(pieces):
        shown += piece
        assert "<img" not in rendered(shown)
    assert shown == "see ![x](" + URL  # the image completed: the caller starts over from the whole text
    assert "".join(link_images_as_streamed(["plain ", "text"])) == "plain text"


def test_escaped_text_shows_as_typed():
    typed = "What does __init__.py do? *x* `y` [a](b) <b>c</b> # 1. - + > | ~~z~~ \\ $5"
    assert rendered(escape_markdown(typed)) == f"<p>{typed.replace('<', '&lt;').replace('>', '&gt;')}</p>\n"
