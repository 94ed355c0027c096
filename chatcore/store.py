"""Persistence of chats, messages, token ratios and documents: engine, migrations, a short session per unit of work."""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import (
    URL,
    Connection,
    Engine,
    bindparam,
    case,
    event,
    exists,
    func,
    insert,
    inspect,
    literal,
    make_url,
    or_,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, SQLModel, create_engine, delete, select, update

from chatcore import database_problems as problems
from chatcore.models import (
    DEFAULT_TITLE,
    Chat,
    Chunk,
    ChunkVector,
    Document,
    DocumentAttachment,
    Message,
    ReplySource,
    Status,
    TokenRatio,
    UtcDateTime,
    utc_now,
)
from chatcore.tokens import Ratio

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30  # how long SQLite waits for another connection's lock before it says the database is locked
POSTGRESQL_CONNECT_TIMEOUT_S = 10  # a server that drops packets would hold the page until the system gave up


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be opened; the message says which, why, and what to do."""


class SchemaTooNewError(DatabaseUnavailableError):
    """The database was written by a newer chatcore than this one (raised with its schema version by `migrate`)."""


class _ForeignTablesError(RuntimeError):
    """The database, not yet chatcore's, has tables of another program under the names of chatcore's own."""

    def __init__(self, tables: list[str]):
        super().__init__(", ".join(tables))
        self.tables = tables


class StorageError(RuntimeError):
    """The database refused a write: read-only, disk full, or locked for too long."""


class Lease(NamedTuple):
    """The app instance writing replies, and how long each renewal of its hold on them lasts."""

    owner: str
    seconds: float


def create_db_engine(url: str) -> Engine:
    """Build an engine; SQLite files get their folder, WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": POSTGRESQL_CONNECT_TIMEOUT_S})
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # Safe with WAL (no corruption); only a power cut can undo the last commits.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def open_engine(url: str, in_data_dir: bool = False) -> Engine:
    """Build the engine for `url` and bring its schema up to date; DatabaseUnavailableError says why it cannot.

    `in_data_dir` tells that `url` is the data folder's database (CHATCORE_DB_URL unset), for errors to say so.
    """
    try:
        engine = create_db_engine(url)
    except (ArgumentError, ModuleNotFoundError):  # the latter: a kind of database whose driver is not installed
        raise DatabaseUnavailableError(problems.NOT_A_URL) from None
    except OSError as error:  # the SQLite file's folder could not be created
        raise _unavailable(make_url(url), in_data_dir, problems.describe_folder_problem(error)) from error
    try:
        migrate(engine)
    except SchemaTooNewError as error:
        engine.dispose()
        newer = problems.NEWER_SCHEMA.replace("{version}", problems.as_is(str(error)))
        raise _unavailable(engine.url, in_data_dir, newer, SchemaTooNewError) from None
    except (DBAPIError, _ForeignTablesError) as error:
        engine.dispose()  # nothing is left connected to a database that cannot be used
        raise _unavailable(engine.url, in_data_dir, _describe_refusal(engine.url, error)) from error
    except BaseException:
        engine.dispose()
        raise
    return engine


def _describe_refusal(url: URL, error: DBAPIError | _ForeignTablesError) -> str:
    if isinstance(error, _ForeignTablesError):
        return problems.describe_foreign_tables(error.tables)
    return problems.describe_open_problem(url, error.orig)


def _unavailable(
    url: URL, in_data_dir: bool, problem: str, kind: type[DatabaseUnavailableError] = DatabaseUnavailableError
) -> DatabaseUnavailableError:
    return kind(problems.describe_unavailable(url, in_data_dir, problem, SQLITE_BUSY_TIMEOUT_S))


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest schema version this chatcore knows."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply the pending migrations up to `revision` (all, by default); safe to run on every start."""
    config = _alembic_config()
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Batch migrations rebuild tables; with foreign keys on, dropping the old
            # table would cascade-delete every message.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        _refuse_unknown_schema(connection, ScriptDirectory.from_config(config))
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def _refuse_unknown_schema(connection, scripts: ScriptDirectory) -> None:
    current = MigrationContext.configure(connection).get_current_revision()
    if current is None:
        _refuse_foreign_tables(connection)
        return
    try:
        scripts.get_revision(current)
    except CommandError:
        raise SchemaTooNewError(current) from None


def _refuse_foreign_tables(connection) -> None:
    # Migrating would fail on the first table of the same name, leaving those made before it in another's database.
    clashing = sorted(set(inspect(connection).get_table_names()) & SQLModel.metadata.tables.keys())
    if clashing:
        raise _ForeignTablesError(clashing)


def schema_version(engine: Engine) -> str | None:
    """The migration the database is at."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _session(engine: Engine) -> Session:
    return Session(engine, expire_on_commit=False)


@contextmanager
def _writing(engine: Engine) -> Iterator[Session]:
    """A session for one unit of writing; the database refusing it becomes a StorageError."""
    try:
        with _session(engine) as session:
            yield session
    except OperationalError as error:
        raise StorageError(f"The database refused to save: {error.orig}.") from error


def create_chat(engine: Engine, model: str = "", options: dict | None = None, system_prompt: str = "") -> Chat:
    """Create an empty chat."""
    with _writing(engine) as session:
        chat = Chat(model=model, options=options or {}, system_prompt=system_prompt)
        session.add(chat)
        session.commit()
        return chat


def get_chat(engine: Engine, chat_id: int) -> Chat | None:
    """The chat with this id, or None."""
    with _session(engine) as session:
        return session.get(Chat, chat_id)


def list_chats(engine: Engine, limit: int | None) -> list[Chat]:
    """The most recently active chats, newest first; every chat when `limit` is None."""
    with _session(engine) as session:
        query = select(Chat).order_by(Chat.updated_at.desc(), Chat.id.desc()).limit(limit)
        return list(session.exec(query))


def find_chats(engine: Engine, chat_ids: Collection[int] | None) -> list[Chat]:
    """The chats with these ids, or every chat when None, oldest first."""
    with _session(engine) as session:
        query = select(Chat).order_by(Chat.id)
        if chat_ids is not None:
            query = query.where(Chat.id.in_(chat_ids))
        return list(session.exec(query))


def count_chats(engine: Engine) -> int:
    """How many chats there are."""
    with _session(engine) as session:
        return session.exec(select(func.count()).select_from(Chat)).one()


def update_chat(engine: Engine, chat_id: int, **fields) -> None:
    """Change some fields of a chat (nothing, if it was deleted meanwhile)."""
    _update_row(engine, Chat, chat_id, fields)


def _update_row(engine: Engine, table: type[Chat | Message], row_id: int, fields: dict) -> None:
    with _writing(engine) as session:
        row = session.get(table, row_id)
        if row is None:
            return
        for name, value in fields.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()


def name_new_chat(engine: Engine, chat_id: int, title: str) -> bool:
    """Name a chat that is new (no message, no name given), as its first message would; whether it was."""
    with _writing(engine) as session:
        named = session.connection().execute(_NAME_NEW_CHAT, {"chat": chat_id, "name": title}).rowcount
        session.commit()
        return named == 1


def rename_auto_title(engine: Engine, chat_id: int, expected: str, title: str) -> bool:
    """Set a generated title only if the chat still has the automatic one (a user rename wins)."""
    with _writing(engine) as session:
        query = update(Chat).where(Chat.id == chat_id, Chat.title == expected).values(title=title)
        changed = session.exec(query).rowcount
        session.commit()
        return changed == 1


def create_chat_like_latest(engine: Engine, model: str, default_options: dict) -> Chat:
    """A new chat with the system prompt and options of the most recently active one."""
    if latest := list_chats(engine, limit=1):
        return create_chat(engine, model, options=latest[0].options, system_prompt=latest[0].system_prompt)
    return create_chat(engine, model, options=default_options)


def delete_chat(engine: Engine, chat_id: int) -> None:
    """Delete a chat; its messages go with it."""
    with _writing(engine) as session:
        session.exec(delete(Chat).where(Chat.id == chat_id))
        session.commit()


def add_message(engine: Engine, chat_id: int, role: str, content: str, **fields) -> Message:
    """Append a message to a chat and mark the chat as active."""
    with _writing(engine) as session:
        _touch_chat(session.connection(), chat_id)
        message = Message(chat_id=chat_id, role=role, content=content, **fields)
        session.add(message)
        session.commit()
        return message


def add_exchange(
    engine: Engine, chat_id: int, text: str, model: str, lease: Lease, title: str | None = None
) -> tuple[int, int] | None:
    """Store a user message and the empty reply that will follow it, written under `lease`, in one transaction.

    Messages the chat had queued are answered by the same reply. If another instance is writing a reply in the
    chat, the message is queued behind it instead, for that instance to answer when its reply ends: None.
    A `title` names the chat if this is its first message and it has not been named.
    """
    with _writing(engine) as session:
        connection = session.connection()
        if not _claim_chat(connection, chat_id, title):
            queued = {"chat_id": chat_id, "role": "user", "content": text, "status": Status.QUEUED, "model": model}
            connection.execute(_ADD_MESSAGE, queued)
            session.commit()
            return None
        _unqueue(connection, chat_id)
        user_id = connection.execute(_ADD_MESSAGE, {"chat_id": chat_id, "role": "user", "content": text}).scalar_one()
        reply_id = _add_reply(connection, chat_id, model, lease)
        session.commit()
        return user_id, reply_id


def queue_message(engine: Engine, chat_id: int, text: str, model: str) -> Message:
    """Store a message sent while a reply is being written, to be answered when it ends."""
    return add_message(engine, chat_id, "user", text, status=Status.QUEUED, model=model)


def has_queued(engine: Engine, chat_id: int) -> bool:
    """Whether a chat has messages waiting for a reply."""
    with _session(engine) as session:
        return session.exec(select(Message.id).where(_queued(chat_id)).limit(1)).first() is not None


def answer_queued(engine: Engine, chat_id: int, model: str, lease: Lease) -> tuple[int, int] | None:
    """Add an empty reply after the chat's queued messages, which it answers; None if none is queued.

    None too if another instance is writing a reply in the chat: it answers them when its reply ends.
    """
    with _writing(engine) as session:
        connection = session.connection()
        if not _claim_chat(connection, chat_id):
            return None
        newest = _unqueue(connection, chat_id)
        if newest is None:
            return None
        reply_id = _add_reply(connection, chat_id, model, lease)
        session.commit()
        return newest, reply_id


def _touch_chat(connection: Connection, chat_id: int, title: str | None = None) -> None:
    """Mark a chat as active, as the first write of a transaction that adds messages to it; a `title` names a new one.

    Being first, it locks the chat (its row on PostgreSQL, the whole database on SQLite) before any message
    gets an id: the messages of one chat are then numbered in the order their transactions commit, so a
    message queued meanwhile can never end up before a reply that was written after it.
    """
    statement, naming = (_TOUCH_NAMING, {"name": title}) if title else (_TOUCH, {})
    connection.execute(statement, {"chat": chat_id, "now": utc_now()} | naming)


def _unqueue(connection: Connection, chat_id: int) -> int | None:
    """Mark the chat's queued messages as sent; the newest one's id."""
    return max(connection.execute(_UNQUEUE, {"chat": chat_id}).scalars(), default=None)


def _queued(chat_id: int):
    """The clause that picks a chat's messages waiting for a reply."""
    return (Message.chat_id == chat_id) & (Message.status == Status.QUEUED)


def restart_last_exchange(
    engine: Engine, chat_id: int, model: str, edited_text: str | None, lease: Lease
) -> tuple[int, int] | None:
    """Drop what follows the last user message, edit it if asked, and add an empty reply after it.

    Nothing changes, and None is returned, if another instance is writing a reply in the chat.
    """
    with _writing(engine) as session:
        connection = session.connection()
        if not _claim_chat(connection, chat_id):
            return None
        answered = (Message.chat_id == chat_id) & (Message.status != Status.QUEUED)  # queued ones wait their turn
        query = select(Message.id).where(answered, Message.role == "user")
        user_id = connection.execute(query.order_by(Message.id.desc()).limit(1)).scalar()
        if user_id is None:
            raise LookupError(f"chat {chat_id} has no user message to answer")
        connection.execute(delete(Message).where(answered, Message.id > user_id))
        if edited_text is not None:  # its token count was measured for the old text
            connection.execute(update(Message).where(Message.id == user_id).values(content=edited_text, tokens=None))
        reply_id = _add_reply(connection, chat_id, model, lease)
        session.commit()
        return user_id, reply_id


class DatabaseClock(FunctionElement):
    """The database's time, `seconds` ahead: one clock for every app instance, whatever its machine's says."""

    type = UtcDateTime()
    inherit_cache = True


@compiles(DatabaseClock, "postgresql")
def _database_clock_postgresql(element: DatabaseClock, compiler, **kw) -> str:
    return f"clock_timestamp() + make_interval(secs => {compiler.process(element.clauses, **kw)})"


@compiles(DatabaseClock, "sqlite")
def _database_clock_sqlite(element: DatabaseClock, compiler, **kw) -> str:
    # Six decimals, as SQLAlchemy writes times to SQLite, so that the text compares as the time does.
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', {compiler.process(element.clauses, **kw)} || ' seconds')"


# Written into the SQL, not bound: only then does SQLite use the index of the replies being written.
_STREAMING = Message.status == literal(Status.STREAMING.value, literal_execute=True)
_EXPIRED = Message.lease_until.is_(None) | (Message.lease_until < DatabaseClock(0))  # no lease: an older version's


# The statements every message sent runs, built once: building one costs more than SQLite takes to run it.
_TOUCH = update(Chat).where(Chat.id == bindparam("chat")).values(updated_at=bindparam("now"))
# Only a new chat (no message, no name given) is named, decided under the update's lock: of two first messages
# sent at once, only the first names the chat.
_NEW_CHAT = (Chat.title == DEFAULT_TITLE) & ~exists().where(Message.chat_id == bindparam("chat"))
_TOUCH_NAMING = _TOUCH.values(title=case((_NEW_CHAT, bindparam("name")), else_=Chat.title))
# The same naming, by the first file added to a chat.
_NAME_NEW_CHAT = update(Chat).where(Chat.id == bindparam("chat"), _NEW_CHAT).values(title=bindparam("name"))
_WRITING = (
    select(Message.id, _EXPIRED.label("expired"))
    .where(_STREAMING, Message.chat_id == bindparam("chat"))
    .with_for_update(read=True)
)
_UNQUEUE = update(Message).where(_queued(bindparam("chat"))).values(status=Status.COMPLETE).returning(Message.id)
_ADD_MESSAGE = insert(Message).returning(Message.id)
_ADD_REPLY = _ADD_MESSAGE.values(
    role="assistant", status=Status.STREAMING, lease_until=DatabaseClock(bindparam("lease_seconds"))
)


def _add_reply(connection: Connection, chat_id: int, model: str, lease: Lease) -> int:
    """Add the empty reply about to be written under `lease`; its id."""
    params = {"chat_id": chat_id, "model": model, "owner": lease.owner, "lease_seconds": lease.seconds}
    return connection.execute(_ADD_REPLY, params).scalar_one()


def _claim_chat(connection: Connection, chat_id: int, title: str | None = None) -> bool:
    """Lock the chat (as `_touch_chat`), and whether a new reply may be written in it: no live instance writes one.

    A reply whose owner's lease ran out is marked interrupted on the way. The reply being written stays locked for
    sharing until this transaction ends, so its owner can save its end only after, and then sees what was queued.
    """
    _touch_chat(connection, chat_id, title)
    replies = connection.execute(_WRITING, {"chat": chat_id}).all()
    if not (expired := [reply.id for reply in replies if reply.expired]):
        return not replies
    interrupted = connection.execute(_interrupt(Message.id.in_(expired)).returning(Message.id)).all()
    return len(interrupted) == len(replies)  # one renewed since it was read (the clock stepped back) is not


def _interrupt(*where):
    """The update marking the replies picked by `where` as interrupted, if their owner's lease ran out."""
    return update(Message).where(_STREAMING, _EXPIRED, *where).values(status=Status.PARTIAL)


def mark_interrupted_replies(engine: Engine) -> int:
    """Mark replies whose owner died (its lease ran out) as interrupted, keeping their text."""
    with _writing(engine) as session:
        if not session.exec(select(func.count()).select_from(Message).where(_STREAMING, _EXPIRED)).one():
            return 0  # no write at all, so a read-only database opens too
        count = session.exec(_interrupt()).rowcount
        session.commit()
        return count


def renew_leases(engine: Engine, lease: Lease) -> list[int]:
    """Extend the lease of every reply `lease.owner` is writing; the ids of those another instance asked to stop."""
    query = update(Message).where(_STREAMING, Message.owner == lease.owner)
    with _writing(engine) as session:
        renewed = session.exec(
            query.values(lease_until=DatabaseClock(lease.seconds)).returning(Message.id, Message.stop_requested)
        ).all()
        session.commit()
        return [reply_id for reply_id, stop in renewed if stop]


def request_stop(engine: Engine, chat_id: int) -> None:
    """Ask the instance writing a chat's reply to stop it."""
    with _writing(engine) as session:
        session.exec(update(Message).where(_STREAMING, Message.chat_id == chat_id).values(stop_requested=True))
        session.commit()


class ReplyProgress(NamedTuple):
    """A reply as saved so far: how far it has got, and whether it is still being written."""

    reply_id: int
    content: str
    status: str
    error: str


def reply_elsewhere(engine: Engine, chat_id: int, owner: str) -> ReplyProgress | None:
    """The reply an instance other than `owner` is writing in a chat, if any (one whose owner died is interrupted)."""
    return _progress(engine, _STREAMING, Message.chat_id == chat_id, Message.owner != owner)


def reply_progress(engine: Engine, reply_id: int) -> ReplyProgress | None:
    """A reply as saved so far, marked interrupted if its owner died; None once deleted."""
    return _progress(engine, Message.id == reply_id)


def _progress(engine: Engine, *where) -> ReplyProgress | None:
    """The first reply picked by `where`, after marking it interrupted if its owner died."""
    expired = (_STREAMING & _EXPIRED).label("expired")
    query = select(Message.id, Message.content, Message.status, Message.error, expired).where(*where).limit(1)
    with _session(engine) as session:
        row = session.exec(query).first()
    if row is None or not row.expired:
        return None if row is None else ReplyProgress(row.id, row.content, row.status, row.error)
    with _writing(engine) as session:
        session.exec(_interrupt(Message.id == row.id))
        session.commit()
    return _progress(engine, *where)  # as now saved: interrupted, or renewed by an owner that was only slow


def update_message(engine: Engine, message_id: int, **fields) -> None:
    """Change some fields of a message (nothing, if it was deleted meanwhile)."""
    _update_row(engine, Message, message_id, fields)


def recent_messages(engine: Engine, chat_id: int, limit: int, before: int | None = None) -> list[Message]:
    """The latest `limit` messages of a chat older than message `before` (default: of all), oldest first."""
    with _session(engine) as session:
        query = select(Message).where(Message.chat_id == chat_id)
        if before is not None:
            query = query.where(Message.id < before)
        return list(reversed(session.exec(query.order_by(Message.id.desc()).limit(limit)).all()))


def oldest_messages(engine: Engine, chat_id: int, limit: int) -> list[Message]:
    """The first `limit` messages of a chat, oldest first."""
    with _session(engine) as session:
        query = select(Message).where(Message.chat_id == chat_id)
        return list(session.exec(query.order_by(Message.id).limit(limit)))


def messages_after(engine: Engine, chat_id: int, after: int) -> list[Message]:
    """A chat's messages newer than message `after`, oldest first."""
    with _session(engine) as session:
        query = select(Message).where(Message.chat_id == chat_id, Message.id > after)
        return list(session.exec(query.order_by(Message.id)))


def messages_around(engine: Engine, chat_id: int, message_id: int, earlier: int, later: int) -> list[Message]:
    """Message `message_id` of a chat, with up to `earlier` messages before it and `later` after it, oldest first."""
    with _session(engine) as session:
        query = select(Message).where(Message.chat_id == chat_id, Message.id >= message_id)
        following = list(session.exec(query.order_by(Message.id).limit(later + 1)))
    return recent_messages(engine, chat_id, earlier, before=message_id) + following


def last_user_message(engine: Engine, chat_id: int, before: int | None = None) -> Message | None:
    """The newest user message of a chat older than message `before` (default: of all), or None."""
    with _session(engine) as session:
        query = select(Message).where(Message.chat_id == chat_id, Message.role == "user")
        if before is not None:
            query = query.where(Message.id < before)
        return session.exec(query.order_by(Message.id.desc()).limit(1)).first()


def list_messages(engine: Engine, chat_id: int) -> list[Message]:
    """Every message of a chat, oldest first, in one query."""
    with _session(engine) as session:
        return list(session.exec(select(Message).where(Message.chat_id == chat_id).order_by(Message.id)))


def count_messages(engine: Engine, chat_id: int, before: int | None = None, after: int | None = None) -> int:
    """How many messages a chat has (older than message `before`, newer than message `after`, if given)."""
    with _session(engine) as session:
        query = select(func.count()).select_from(Message).where(Message.chat_id == chat_id)
        if before is not None:
            query = query.where(Message.id < before)
        if after is not None:
            query = query.where(Message.id > after)
        return session.exec(query).one()


def iter_messages_newest_first(
    engine: Engine, chat_id: int, before: int | None = None, batch: int = 50
) -> Iterator[Message]:
    """A chat's messages older than `before` (default: all), newest first, in small batches to stop early."""
    return _iter_messages(engine, chat_id, newest_first=True, after=None, before=before, batch=batch)


def iter_messages_between(
    engine: Engine, chat_id: int, after: int | None, before: int, batch: int = 50
) -> Iterator[Message]:
    """A chat's messages with ids between `after` (None: the first) and `before`, oldest first, in small batches."""
    return _iter_messages(engine, chat_id, newest_first=False, after=after, before=before, batch=batch)


def _iter_messages(
    engine: Engine, chat_id: int, newest_first: bool, after: int | None, before: int | None, batch: int
) -> Iterator[Message]:
    while True:
        with _session(engine) as session:
            query = select(Message).where(Message.chat_id == chat_id)
            if after is not None:
                query = query.where(Message.id > after)
            if before is not None:
                query = query.where(Message.id < before)
            order = Message.id.desc() if newest_first else Message.id.asc()
            rows = session.exec(query.order_by(order).limit(batch)).all()
        yield from rows
        if len(rows) < batch:
            return
        if newest_first:
            before = rows[-1].id
        else:
            after = rows[-1].id


def get_ratio(engine: Engine, model: str) -> Ratio:
    """The characters per token learned for a model, or the starting guess."""
    with _session(engine) as session:
        row = session.get(TokenRatio, model)
        return Ratio(row.chars, row.tokens) if row else Ratio()


def save_token_counts(engine: Engine, counts: dict[int, int], model: str, ratio: Ratio) -> None:
    """Store measured token counts of messages and the model's updated ratio, in one transaction."""
    with _writing(engine) as session:
        for message_id, tokens in counts.items():
            session.exec(update(Message).where(Message.id == message_id).values(tokens=tokens))
        session.exec(_upsert_ratio(engine.dialect.name, model, ratio))
        session.commit()


def _upsert_ratio(dialect: str, model: str, ratio: Ratio):
    # An upsert, not read-then-write: replies finishing together must not collide on the key.
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = insert(TokenRatio).values(model=model, chars=ratio.chars, tokens=ratio.tokens)
    fresh = {"chars": statement.excluded.chars, "tokens": statement.excluded.tokens}
    return statement.on_conflict_do_update(index_elements=["model"], set_=fresh)


def save_memory(engine: Engine, chat_id: int, expected_until: int | None, memory: str, until: int) -> bool:
    """Replace a chat's memory, unless another update got there first (its coverage moved)."""
    covered = Chat.memory_until.is_(None) if expected_until is None else Chat.memory_until == expected_until
    with _writing(engine) as session:
        query = update(Chat).where(Chat.id == chat_id, covered).values(memory=memory, memory_until=until)
        changed = session.exec(query).rowcount
        session.commit()
        return changed == 1


def save_document(engine: Engine, document: Document, chunks: list[Chunk]) -> Document:
    """Store a document and its chunks in one transaction: a failure leaves nothing."""
    with _writing(engine) as session:
        session.add(document)
        session.flush()
        for chunk in chunks:
            chunk.document_id = document.id
        session.add_all(chunks)
        session.commit()
        return document


def find_document(engine: Engine, sha256: str) -> Document | None:
    """The document stored with this content hash, or None."""
    with _session(engine) as session:
        return session.exec(select(Document).where(Document.sha256 == sha256)).first()


def share_document(engine: Engine, document_id: int, chat_id: int | None) -> None:
    """Move a document to the library, attached to the chat it was in and to `chat_id` (None: no other)."""
    with _writing(engine) as session:
        document = session.get(Document, document_id)
        chats = {chat_id, document.chat_id} - {None}
        document.chat_id = None
        session.add(document)
        for chat in chats:
            if session.get(DocumentAttachment, (chat, document_id)) is None:
                session.add(DocumentAttachment(chat_id=chat, document_id=document_id))
        session.commit()


def get_document(engine: Engine, document_id: int) -> Document | None:
    """A document by id, or None."""
    with _session(engine) as session:
        return session.get(Document, document_id)


def document_chunks(engine: Engine, document_id: int) -> list[Chunk]:
    """A document's chunks in order."""
    with _session(engine) as session:
        return list(session.exec(select(Chunk).where(Chunk.document_id == document_id).order_by(Chunk.ordinal)))


def opening_chunks(engine: Engine, document_ids: Collection[int], limit: int) -> list[tuple[Document, Chunk]]:
    """The first `limit` chunks of each document, document by document."""
    query = (
        select(Document, Chunk)
        .join(Chunk, Chunk.document_id == Document.id)
        .where(Document.id.in_(document_ids), Chunk.ordinal < limit)
        .order_by(Document.id, Chunk.ordinal)
    )
    with _session(engine) as session:
        return list(session.exec(query))


def documents_to_process(engine: Engine, vectors_model: str, summaries: bool) -> list[Document]:
    """Documents still without vectors from `vectors_model` (if any), or without a summary (if wanted)."""
    wanted = []
    if vectors_model:
        wanted.append(Document.vectors_model != vectors_model)
    if summaries:
        wanted.append(Document.summary == "")
    if not wanted:
        return []
    with _session(engine) as session:
        return list(session.exec(select(Document).where(or_(*wanted)).order_by(Document.id)))


def save_summary(engine: Engine, document_id: int, summary: str, model: str) -> None:
    """Store a document's summary, unless another process stored one first."""
    with _writing(engine) as session:
        query = update(Document).where(Document.id == document_id, Document.summary == "")
        session.exec(query.values(summary=summary, summary_model=model))
        session.commit()


def save_vectors(engine: Engine, document_id: int, model: str, vectors: dict[int, bytes]) -> None:
    """Replace the vectors of a document's chunks with `model`'s, and mark the document as having them."""
    chunk_ids = select(Chunk.id).where(Chunk.document_id == document_id)
    with _writing(engine) as session:
        session.exec(delete(ChunkVector).where(ChunkVector.chunk_id.in_(chunk_ids)))
        session.add_all(ChunkVector(chunk_id=chunk_id, vector=vector) for chunk_id, vector in vectors.items())
        session.exec(update(Document).where(Document.id == document_id).values(vectors_model=model))
        session.commit()


def documents_with_vectors(engine: Engine, chat_id: int, model: str) -> list[Document]:
    """The chat's documents whose every chunk has a vector from `model`."""
    query = select(Document).where(chat_documents_clause(chat_id), Document.vectors_model == model)
    with _session(engine) as session:
        return list(session.exec(query.order_by(Document.id)))


def document_vectors(engine: Engine, document_id: int) -> list[tuple[int, bytes]]:
    """The (chunk id, vector) of each chunk of a document, in chunk order."""
    query = (
        select(ChunkVector.chunk_id, ChunkVector.vector)
        .join(Chunk, Chunk.id == ChunkVector.chunk_id)
        .where(Chunk.document_id == document_id)
        .order_by(Chunk.ordinal)
    )
    with _session(engine) as session:
        return list(session.exec(query))


def find_chunks(engine: Engine, chunk_ids: Collection[int]) -> dict[int, tuple[Document, Chunk]]:
    """These chunks, each with its document, by chunk id."""
    query = select(Document, Chunk).join(Chunk, Chunk.document_id == Document.id).where(Chunk.id.in_(chunk_ids))
    with _session(engine) as session:
        return {chunk.id: (document, chunk) for document, chunk in session.exec(query)}


def chat_documents_clause(chat_id: int):
    """Documents a chat uses: those uploaded into it, and the library documents attached to it."""
    attached = select(DocumentAttachment.document_id).where(DocumentAttachment.chat_id == chat_id)
    return or_(Document.chat_id == chat_id, Document.id.in_(attached))


def list_documents(engine: Engine, chat_id: int | None) -> list[Document]:
    """A chat's documents, or the library's (None), oldest first."""
    with _session(engine) as session:
        scope = Document.chat_id.is_(None) if chat_id is None else chat_documents_clause(chat_id)
        return list(session.exec(select(Document).where(scope).order_by(Document.id)))


def has_documents(engine: Engine, chat_id: int) -> bool:
    """True when a chat has documents of its own or attached."""
    with _session(engine) as session:
        return session.exec(select(Document.id).where(chat_documents_clause(chat_id)).limit(1)).first() is not None


def documents_by_chat(engine: Engine, chat_ids: Collection[int]) -> dict[int, list[Document]]:
    """The documents each of these chats uses, its own then the attached ones, in two queries."""
    own = select(Document.chat_id, Document).where(Document.chat_id.in_(chat_ids))
    attached = (
        select(DocumentAttachment.chat_id, Document)
        .join(Document, Document.id == DocumentAttachment.document_id)
        .where(DocumentAttachment.chat_id.in_(chat_ids))
    )
    used: dict[int, list[Document]] = {}
    with _session(engine) as session:
        for query in (own, attached):
            for chat_id, document in session.exec(query.order_by(Document.id)):
                used.setdefault(chat_id, []).append(document)
    return used


def attach_document(engine: Engine, chat_id: int, document_id: int) -> None:
    """Let a chat use a library document."""
    with _writing(engine) as session:
        if session.get(DocumentAttachment, (chat_id, document_id)) is None:
            session.add(DocumentAttachment(chat_id=chat_id, document_id=document_id))
            session.commit()


def detach_document(engine: Engine, chat_id: int, document_id: int) -> None:
    """Stop a chat using a library document; the document stays in the library."""
    with _writing(engine) as session:
        condition = (DocumentAttachment.chat_id == chat_id, DocumentAttachment.document_id == document_id)
        session.exec(delete(DocumentAttachment).where(*condition))
        session.commit()


def delete_document(engine: Engine, document_id: int) -> None:
    """Delete a document; its chunks and attachments go with it."""
    with _writing(engine) as session:
        session.exec(delete(Document).where(Document.id == document_id))
        session.commit()


def save_reply_sources(engine: Engine, message_id: int, chunk_ids: list[int]) -> None:
    """Record the passages a reply was given, as given, numbered from 1 in the order it was given them."""
    given = find_chunks(engine, chunk_ids)
    with _writing(engine) as session:
        session.exec(delete(ReplySource).where(ReplySource.message_id == message_id))
        session.add_all(given_source(message_id, n, *given[chunk]) for n, chunk in enumerate(chunk_ids, start=1))
        session.commit()


def given_source(message_id: int, label: int, document: Document, chunk: Chunk) -> ReplySource:
    """The record of a passage given to a reply: its document named, its text copied."""
    return ReplySource(
        message_id=message_id,
        label=label,
        document_sha256=document.sha256,
        document_name=document.name,
        document_kind=document.kind,
        page=chunk.page,
        text=chunk.text,
    )


def reply_sources(engine: Engine, message_ids: Collection[int]) -> dict[int, list[tuple[ReplySource, bool]]]:
    """The passages each of these replies was given, in number order, each with whether its document is still here."""
    if not message_ids:
        return {}
    query = (
        select(ReplySource, Document.id)
        .outerjoin(Document, Document.sha256 == ReplySource.document_sha256)
        .where(ReplySource.message_id.in_(message_ids))
        .order_by(ReplySource.message_id, ReplySource.label)
    )
    sources: dict[int, list[tuple[ReplySource, bool]]] = {}
    with _session(engine) as session:
        for source, document_id in session.exec(query):
            sources.setdefault(source.message_id, []).append((source, document_id is not None))
    return sources
