"""Markdown sections: where a Markdown text's headings start new sections, read as CommonMark reads its blocks.

A line scan, not a parser (markdown-it-py took 26 s on a 10 MB file): a `#` line outside code, HTML, quotes and
front matter (in a list item too), or a paragraph underlined with `=` or `-` outside those, lists and tables,
starts a section.
"""

import itertools
import re
from dataclasses import dataclass

# Markdown's blocks, started as CommonMark starts them.
ATX_HEADING = re.compile(r" {0,3}#{1,6}(?:[ \t]|$)")  # CommonMark's: indented further, it is code
CODE_FENCE = re.compile(r" {0,3}(`{3,}(?=[^`]*$)|~{3,})")  # a line with more backticks after them is inline code
SETEXT_UNDERLINE = re.compile(r"(?:=+|-+)[ \t]*$")
THEMATIC_BREAK = re.compile(r"([-*_])(?:[ \t]*\1){2,}[ \t]*$")
LIST_ITEM = re.compile(r"(?:[-+*]|([0-9]{1,9})[.)])(?:([ \t]+)|$)")
TABLE_CELL = r"[ \t]*:?-+:?[ \t]*"
TABLE_PIPE = re.compile(r"(?<!\\)\|")
TABLE_DELIMITER_ROW = re.compile(rf"(?=.*\|)\|?{TABLE_CELL}(?:\|{TABLE_CELL})*\|?[ \t]*$")  # GitHub's, with a pipe
HTML_BLOCK_TAGS = (
    "address|article|aside|base|basefont|blockquote|body|caption|center|col|colgroup|dd|details|dialog|dir|div|dl|dt|"
    "fieldset|figcaption|figure|footer|form|frame|frameset|h[1-6]|head|header|hr|html|iframe|legend|li|link|main|menu|"
    "menuitem|nav|noframes|ol|optgroup|option|p|param|search|section|summary|table|tbody|td|tfoot|th|thead|title|tr|"
    "track|ul"
)
HTML_BLOCK = re.compile(  # CommonMark's seven kinds of HTML block; a lone tag (the last) cannot interrupt a paragraph
    r"<(?:(?P<raw>(?:pre|script|style|textarea)(?=[ \t>]|$))|(?P<comment>!--)|(?P<instruction>\?)|(?P<cdata>!\[CDATA\[)"
    rf"|(?P<declaration>![A-Za-z])|(?P<block>/?(?:{HTML_BLOCK_TAGS})(?=[ \t>]|/>|$))"
    r"|(?P<tag>/?[A-Za-z][A-Za-z0-9-]*(?:[ \t][^<>]*)?/?>[ \t]*$))",
    re.IGNORECASE,
)
HTML_BLOCK_ENDS = {
    "raw": re.compile(r"</(?:pre|script|style|textarea)>", re.IGNORECASE),
    "comment": re.compile("-->"),
    "instruction": re.compile(r"\?>"),
    "cdata": re.compile(r"\]\]>"),
    "declaration": re.compile(">"),
}
BLANK_LINE = re.compile(r"^[ \t]*$", re.MULTILINE)  # what ends the other kinds; never found past a line's start
# A line break before a line that may start a block: one that starts with a letter is text.
BLOCK_LINE = re.compile(r"\n(?![^\W\d_])")
# YAML front matter, as Jekyll reads it, from a first line of `---` to the next of `---` or `...`; the line after
# the first must be a key, so that a file opening with a thematic break and text keeps its headings.
FRONT_MATTER = re.compile(r"---[ \t]*\n[\w\"'-][^:\n]*:[ \t\n](?:.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def split_markdown(text: str) -> list[str]:
    """Markdown text cut before each heading outside code: a `#` line, or a paragraph underlined with `=` or `-`."""
    text = text.replace("\r\n", "\n")
    front = FRONT_MATTER.match(text)
    starts = MarkdownScan(text).section_starts(front.end() if front else 0)
    return [text[start:end] for start, end in itertools.pairwise([0, *starts, len(text)])]


@dataclass
class MarkdownScan:
    """A reading of Markdown text line by line, which knows where it stands: in code, HTML, a list, a paragraph.

    Only lines that may start or end a block are read one by one: code and HTML are skipped to their end, and lines
    that start with a letter (most of a file) are text, found as a whole by a regex.
    """

    text: str
    fence: str = ""  # the code fence open, if any
    html_end: re.Pattern[str] | None = None  # what ends the HTML block open, if any
    list_column: int = 0  # the column where the text of the open list's items starts; 0 outside lists
    empty_item: bool = False  # whether the line read last opened an empty list item
    paragraph: bool = False  # whether a paragraph is open: a line of text goes on with it
    table: bool = False  # whether the open paragraph is a table, which an indented line ends
    heading_from: int | None = None  # where the open paragraph starts, if an underline would make it a heading

    def section_starts(self, position: int) -> list[int]:
        """Where the text's sections start, at its headings, reading from `position` on."""
        text, starts = self.text, []
        while position <= len(text):
            end = text.find("\n", position)
            end = len(text) if end < 0 else end
            start = self.read_line(text[position:end], position)
            if start is not None:
                starts.append(start)
            position = end + 1
            if self.fence or self.html_end or text[position : position + 1].isalpha():
                position = self.skip_lines(position)
        return starts

    def skip_lines(self, position: int) -> int:
        """Where the next line that needs reading starts, from `position` on: past code, HTML and lines of text
        (which start with a letter)."""
        if self.fence:
            position = self.line_after(closing_fence(self.fence).search(self.text, position - 1))
            self.fence = ""
        elif self.html_end:
            position = self.line_after(self.html_end.search(self.text, position))
            self.html_end = None
        if not self.text[position : position + 1].isalpha():
            return position
        self.read_text(position)  # the first of the lines of text, which may start a paragraph
        found = BLOCK_LINE.search(self.text, position)
        return found.end() if found else len(self.text) + 1

    def line_after(self, found: re.Match[str] | None) -> int:
        """Where the line after the one `found` ends in starts; past the text's end if there is none."""
        end = self.text.find("\n", found.end()) if found else -1
        return len(self.text) + 1 if end < 0 else end + 1

    def read_line(self, line: str, at: int) -> int | None:
        """Read the line starting at `at`: where a new section starts if the line starts or ends a heading."""
        rest = line.lstrip(" \t")
        if not rest:
            self.end_paragraph()
            self.list_column = 0 if self.empty_item else self.list_column  # an item starts with one blank line at most
            return None
        self.empty_item = False
        width = len(line) - len(rest)
        width = len(line[:width].expandtabs(4)) if "\t" in line[:width] else width
        if rest[0] in "`~#":
            fence = CODE_FENCE.match(line)
            if fence or ATX_HEADING.match(line):
                self.fence = fence.group(1) if fence else ""
                self.start_block(width)
                return None if fence else at
        if self.list_column and width >= self.list_column:
            self.read_item_line(rest, width - self.list_column)
            return None
        if width >= 4:  # code, which ends a table, or the open paragraph going on
            if self.table:
                self.end_paragraph()
            return None
        return self.read_block(rest, width, at)

    def read_item_line(self, rest: str, indent: int) -> None:
        """Read a line of a list item, indented `indent` more than the item's text: no heading of the document's."""
        if indent < 4:  # else code, or the item's paragraph going on
            underline = self.paragraph and SETEXT_UNDERLINE.match(rest)
            self.paragraph = not underline and is_text(rest)
        self.heading_from = None

    def read_block(self, rest: str, width: int, at: int) -> int | None:
        """Read a line indented less than code, outside lists: where a new section starts if it underlines a heading."""
        if self.heading_from is not None and rest[0] in "=-|:":
            if self.is_table_header(rest, at):
                self.heading_from, self.table = None, True
                return None
            if SETEXT_UNDERLINE.match(rest):
                start = self.heading_from
                self.end_paragraph()
                return start
        opened = self.open_break_or_quote(rest, width) or self.open_html(rest, width)
        if not (opened or self.open_list_item(rest, width)):
            self.read_text(at)
        return None

    def is_table_header(self, rest: str, at: int) -> bool:
        """Whether the line is a table's delimiter row, the paragraph's line before it the header (GitHub's tables)."""
        if not TABLE_DELIMITER_ROW.match(rest):
            return False
        return count_cells(self.text[self.text.rfind("\n", 0, at - 1) + 1 : at - 1]) == count_cells(rest)

    def open_break_or_quote(self, rest: str, width: int) -> bool:
        """Read a thematic break, or open a block quote, if the line is one: a quote's text is the quote's."""
        quote = rest[0] == ">"
        if not quote and not (rest[0] in "-*_" and THEMATIC_BREAK.match(rest)):
            return False
        self.start_block(width)
        self.paragraph = quote and is_text(rest[1:].lstrip(" \t"))
        return True

    def open_html(self, rest: str, width: int) -> bool:
        """Open the HTML block the line starts, if it starts one: a lone tag cannot interrupt a paragraph."""
        found = HTML_BLOCK.match(rest) if rest[0] == "<" else None
        if not found or (found.lastgroup == "tag" and self.paragraph):
            return False
        self.start_block(width)
        end = HTML_BLOCK_ENDS.get(found.lastgroup or "", BLANK_LINE)
        self.html_end = None if end.search(rest, found.end()) else end
        return True

    def open_list_item(self, rest: str, width: int) -> bool:
        """Open the list item the line starts, if it starts one: an empty one, or a first one numbered other than 1,
        cannot interrupt a paragraph (but one outside the line's containers, which the item closes)."""
        found = LIST_ITEM.match(rest) if rest[0] in "-+*0123456789" else None
        if not found:
            return False
        number, gap = found.group(1), found.group(2) or ""
        empty = found.end() == len(rest)
        if self.heading_from is not None and (empty or (number is not None and int(number) != 1)):
            return False
        gap_width = len(gap.expandtabs(4))
        marker = found.start(2) if gap else found.end()
        self.start_block(width)
        self.list_column = width + marker + (gap_width if 0 < gap_width <= 4 and not empty else 1)  # wider: code
        self.paragraph = is_text(rest[found.end() :])
        self.empty_item = empty
        return True

    def read_text(self, at: int) -> None:
        """Read a line of text starting at `at`: the open paragraph's next line, or the first of a new one."""
        if not self.paragraph:
            self.paragraph, self.heading_from, self.list_column = True, at, 0

    def start_block(self, width: int) -> None:
        """Start a block at this column: the open paragraph ends, and the open list if the block is left of its text."""
        self.end_paragraph()
        self.list_column = self.list_column if width >= self.list_column else 0

    def end_paragraph(self) -> None:
        """End the open paragraph, if any."""
        self.paragraph, self.heading_from, self.table = False, None, False


def is_text(content: str) -> bool:
    """Whether a line's content (indentation left out) opens or goes on with a paragraph: starts no other block."""
    if content[:1].isalpha():  # as most do
        return True
    if not content.strip(" \t") or ATX_HEADING.match(content) or CODE_FENCE.match(content):
        return False
    if THEMATIC_BREAK.match(content):
        return False
    if content[0] == ">":
        return is_text(content[1:].lstrip(" \t"))
    item = LIST_ITEM.match(content)
    if item:
        return is_text(content[item.end() :])
    html = HTML_BLOCK.match(content)
    return not html or html.lastgroup == "tag"


def count_cells(row: str) -> int:
    """How many cells a table's row has: its parts between pipes (not escaped), the outer pipes left out."""
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return len(TABLE_PIPE.split(inner))


def closing_fence(fence: str) -> re.Pattern[str]:
    """A line break before the line that closes a code fence: as many of its marks or more, then only whitespace."""
    return re.compile(rf"\n {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[^\S\n]*(?=\n|\Z)")
