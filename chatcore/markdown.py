"""Text made safe to show as Markdown: images as links (showing one would fetch it), a user's text as typed.

Images are found by a CommonMark parser (markdown-it-py, with the GitHub tables and strikethrough Streamlit
renders too), reference-style ones included, then their `!` is escaped: `![x](url)` shows as "!" and a link.
"""

import re
from collections.abc import Iterable, Iterator

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_LINE = re.compile(r"(?<=\n)")
_IMAGE_START = re.compile(r"(?<!\\)((?:\\\\)*)!\[")  # a `![` whose `!` no backslash escapes: where an image may start
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # ASCII punctuation, which a backslash always makes literal


def link_images(text: str) -> str:
    """Markdown that shows each image of `text` as a link to it, and is `text` itself when it has none."""
    if "![" not in text:  # every image starts so: no need to parse (this runs at every piece of a streamed reply)
        return text
    found = _inlines_with_images(text)
    if not found:
        return text
    places = {number for inline in found if inline.map for number in range(*inline.map)}
    lines = _LINE.split(text)
    linked = "".join(_escape_image_starts(line) if number in places else line for number, line in enumerate(lines))
    return linked if not _inlines_with_images(linked) else _escape_image_starts(text)  # what the lines missed


def link_images_as_streamed(pieces: Iterable[str]) -> Iterator[str]:
    """What to append to the text shown as `pieces` arrive: always `link_images` of the text so far.

    Ends early when new text changes what was already shown (an image completed), so that the caller shows
    the whole text again.
    """
    text = shown = ""
    for piece in pieces:
        text += piece
        linked = link_images(text)
        if not linked.startswith(shown):
            return
        yield linked[len(shown) :]
        shown = linked


def escape_markdown(text: str) -> str:
    """Markdown that shows `text` as typed: every ASCII punctuation character escaped."""
    return _PUNCTUATION.sub(r"\\\1", text)


def _inlines_with_images(text: str) -> list[Token]:
    """The runs of inline text (a paragraph, a heading, a table row's cell) holding an image, with their lines."""
    return [token for token in _PARSER.parse(text) if token.type == "inline" and _holds_image(token.children or [])]


def _holds_image(tokens: list[Token]) -> bool:
    return any(token.type == "image" or _holds_image(token.children or []) for token in tokens)


def _escape_image_starts(text: str) -> str:
    return _IMAGE_START.sub(r"\1\\![", text)
