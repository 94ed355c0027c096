"""A document's one-time summary: in one request if it fits, else map-reduce over its chunks."""

from collections.abc import Callable

from sqlalchemy import Engine

from chatcore import store
from chatcore.backends import Backend, complete_text
from chatcore.tokens import MESSAGE_OVERHEAD_TOKENS

SUMMARY_TOKENS = 400  # the most a summary, or a summary of a part, may take
REQUEST_TOKENS = 120  # the instructions around the text, generously
WHOLE = (
    "Summarise the document {name} below in one to three short paragraphs: what it is, its main points, "
    "and any conclusions. Write only the summary.\n\n{text}"
)
PART = (
    "Below is part {number} of {count} of the document {name}. Summarise this part in a few sentences, "
    "keeping names, figures and conclusions. Write only the summary.\n\n{text}"
)
COMBINE = (
    "Below are summaries of consecutive parts of the document {name}. Combine them into one summary of the "
    "whole document in one to three short paragraphs. Write only the summary.\n\n{text}"
)


def pack_texts(texts: list[str], room: int) -> list[str]:
    """Consecutive texts joined into as few groups of at most `room` characters as possible, two at least each.

    Two at least, so that each round of combining shortens the list; a text longer than `room` goes alone.
    """
    groups: list[list[str]] = []
    for text in texts:
        if groups and (len(groups[-1]) < 2 or sum(map(len, groups[-1])) + len(text) <= room):
            groups[-1].append(text)
        else:
            groups.append([text])
    return ["\n\n".join(group) for group in groups]


def summarise_document(
    engine: Engine,
    backend: Backend,
    model: str,
    document_id: int,
    num_ctx: int,
    progress: Callable[[str], None] = lambda _: None,
) -> str:
    """Summarise a document with the model: each part that fits in `num_ctx`, then those summaries together."""
    document = store.get_document(engine, document_id)
    room_tokens = num_ctx - SUMMARY_TOKENS - REQUEST_TOKENS - MESSAGE_OVERHEAD_TOKENS
    room = int(room_tokens * store.get_ratio(engine, model).value)
    parts = pack_texts([chunk.text for chunk in store.document_chunks(engine, document_id)], room)
    options = {"num_ctx": num_ctx, "num_predict": SUMMARY_TOKENS, "temperature": 0.2}

    def ask(request: str, **fields) -> str:
        content = request.format(name=document.name, **fields)
        return complete_text(backend, model, [{"role": "user", "content": content}], options).strip()

    if len(parts) == 1:
        progress("Summarising")
        return ask(WHOLE, text=parts[0])
    notes = []
    for number, part in enumerate(parts, start=1):
        progress(f"Summarising: part {number} of {len(parts)}")
        notes.append(ask(PART, number=number, count=len(parts), text=part))
    progress("Summarising: combining the parts")
    while len(groups := pack_texts(notes, room)) > 1:
        notes = [ask(COMBINE, text=group) for group in groups]
    return ask(COMBINE, text=groups[0])
