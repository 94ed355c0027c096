"""Message histories for tests and benchmarks: stand-in rows, and long chats inserted in bulk."""

from dataclasses import dataclass

from sqlalchemy import Engine, insert

from chatcore.models import Message, Status, utc_now


@dataclass
class Stored:
    """What the window reads of a stored message."""

    id: int
    role: str
    content: str
    tokens: int | None = None


FILLER = "Tell me more about the history of Lisbon's trams and the hills they climb. " * 2  # 150 characters


def fill_chat(engine: Engine, chat_id: int, count: int, tokens: int | None = None, text: str = FILLER) -> None:
    """Append `count` alternating user and assistant messages to a chat, in one statement."""
    now = utc_now()
    rows = [
        {
            "chat_id": chat_id,
            "role": "user" if index % 2 == 0 else "assistant",
            "content": f"{index}: {text}",
            "status": Status.COMPLETE,
            "error": "",
            "model": "",
            "tokens": tokens,
            "created_at": now,
        }
        for index in range(count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Message.__table__), rows)
