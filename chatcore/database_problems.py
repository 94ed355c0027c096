"""Database problems: why a database cannot be opened, in words, with what to do.

From SQLite's result codes, the system's error numbers, and PostgreSQL's words (its client has no codes for these).
A message names the database (a SQLite file's path, or a server's host and port, never a password).
"""

import errno
import re
from pathlib import Path

from sqlalchemy import URL

POSTGRESQL_PORT = 5432
NOT_A_URL = (
    "Cannot open the database: CHATCORE_DB_URL is not a database address chatcore can use. Give it one such as "
    "sqlite:////home/me/chatcore.db or postgresql+psycopg://user:password@host/database."
)
# Why SQLite could not open its file, by its result code, and what to do; {folder} is the file's folder, {elsewhere}
# the setting to change for another database, {seconds} how long a lock is waited for.
SQLITE_PROBLEMS = {
    "SQLITE_NOTADB": "the file is not a database. Check the path, or {elsewhere}",
    "SQLITE_CORRUPT": "the file is damaged. Put back a copy of it from a backup, or {elsewhere}",
    "SQLITE_READONLY": "it is read-only, and chatcore must write to it or in its folder {folder} to open it "
    "(to update it to this version, or to start its journal). Allow writing to both, or {elsewhere}",
    "SQLITE_BUSY": "another program has kept it locked for over {seconds} seconds. "
    "Close the programs using it (a database browser, say), then try again",
    "SQLITE_FULL": "the disk is full. Free some space on it, or {elsewhere}",
    "SQLITE_IOERR": "the disk failed while reading or writing it. Check the disk, or {elsewhere}",
}
CANNOT_OPEN_FOLDER = "it is a folder, not a file. Check the path, or {elsewhere}"
CANNOT_OPEN_FILE = (
    "chatcore is not allowed to open it, or to write in its folder {folder}. Check their permissions, or {elsewhere}"
)
CANNOT_CREATE_FILE = (
    "it cannot be created in {folder} (writing there is not allowed, or the disk is read-only). "
    "Allow writing there, or {elsewhere}"
)
NEWER_SCHEMA = (
    "it was written by a newer chatcore (its schema version is {version}), which this one cannot read. "
    "Upgrade chatcore, or {elsewhere}"
)
FOREIGN_TABLES = "it holds tables of another program ({tables}), not chatcore's. Give chatcore its own: {elsewhere}"
# Why the SQLite file's folder could not be created, by error number.
FOLDER_PROBLEMS = {
    errno.EACCES: "you are not allowed to create it there",
    errno.EPERM: "you are not allowed to create it there",
    errno.EROFS: "that disk is read-only",
    errno.ENOTDIR: "part of that path is a file",
    errno.ENOSPC: "the disk is full",
    errno.ENOENT: "nothing can be created there",
    errno.EEXIST: "a file has that name",
}
# Why PostgreSQL refused, from the words of the server or its client library (it has no codes for these), checked
# in order, and what to do; {user} is the user chatcore logs in as, in words.
POSTGRESQL_PROBLEMS = (
    (
        re.compile(r"failed to resolve host|could not translate host name"),
        "no host has that name. Check the host in CHATCORE_DB_URL",
    ),
    (
        re.compile(r"password authentication failed|no password supplied|role \".*\" does not exist|pg_hba\.conf"),
        "the server refused the login of {user}. Check the user and password in CHATCORE_DB_URL",
    ),
    (
        re.compile(r"database \".*\" does not exist"),
        "the server has no database of that name. Create it, or name one that exists in CHATCORE_DB_URL",
    ),
    (
        re.compile(r"Connection refused|No such file or directory|timeout expired|No route to host|is unreachable"),
        "no PostgreSQL server answers there. Start PostgreSQL, or check the host and port in CHATCORE_DB_URL",
    ),
    (
        re.compile(r"permission denied"),
        "{user} lacks the rights chatcore needs there (to connect, and to create its tables). "
        "Make it the database's owner, or name a database it owns in CHATCORE_DB_URL",
    ),
)


def describe_unavailable(url: URL, in_data_dir: bool, problem: str, busy_seconds: float) -> str:
    """Why a database cannot be opened and what to do, in words: `problem`, with its placeholders filled in."""
    if in_data_dir:
        elsewhere = "set CHATCORE_DATA_DIR to another folder (or CHATCORE_DB_URL to another database)"
    else:
        elsewhere = f"set CHATCORE_DB_URL to another {'file' if is_sqlite(url) else 'database'}"
    folder = sqlite_path(url).parent if is_sqlite(url) else None
    user = f"user “{url.username}”" if url.username else "the user of your login name (CHATCORE_DB_URL names none)"
    details = {"elsewhere": elsewhere, "folder": folder, "user": user, "seconds": busy_seconds}
    return f"Cannot open {describe_database(url)}: {problem.format_map(details)}."


def describe_database(url: URL) -> str:
    """The database in words: a SQLite file's path, else its kind, name, host and port (never the password)."""
    if is_sqlite(url):
        return f"the SQLite database {sqlite_path(url)}"
    kind = "PostgreSQL" if url.get_backend_name() == "postgresql" else url.get_backend_name()
    name = f" “{url.database}”" if url.database else ""
    port = url.port or (POSTGRESQL_PORT if kind == "PostgreSQL" else None)
    server = f" at {url.host}{f':{port}' if port else ''}" if url.host else " on this machine"
    return f"the {kind} database{name}{server}"


def is_sqlite(url: URL) -> bool:
    """Whether the database is a SQLite file."""
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path:
    """A SQLite database's file."""
    return Path((url.database or "").removeprefix("file:")).absolute()  # "file:" starts it in a URI (uri=true)


def describe_folder_problem(error: OSError) -> str:
    """Why a SQLite file's folder could not be created, and what to do."""
    why = FOLDER_PROBLEMS.get(error.errno, "the system refused it")
    return f"its folder {{folder}} cannot be created ({why}). Create it yourself, or {{elsewhere}}"


def describe_foreign_tables(tables: list[str]) -> str:
    """Why a database that another program uses cannot be chatcore's, and what to do."""
    return FOREIGN_TABLES.replace("{tables}", as_is(", ".join(tables)))


def describe_open_problem(url: URL, error: Exception) -> str:
    """Why the database's driver refused to open it (`error`, the driver's own), and what to do."""
    if is_sqlite(url):
        return describe_sqlite_problem(sqlite_path(url), error)
    if url.get_backend_name() == "postgresql":
        return describe_postgresql_problem(error)
    return describe_other_problem(error)


def describe_sqlite_problem(path: Path, error: Exception) -> str:
    """Why SQLite could not open the file at `path`, from its result code."""
    code = "_".join(getattr(error, "sqlite_errorname", "").split("_")[:2])  # SQLITE_READONLY_DIRECTORY: READONLY
    if code != "SQLITE_CANTOPEN":
        return SQLITE_PROBLEMS.get(code) or describe_other_problem(error)
    if path.is_dir():
        return CANNOT_OPEN_FOLDER
    return CANNOT_OPEN_FILE if path.exists() else CANNOT_CREATE_FILE


def describe_postgresql_problem(error: Exception) -> str:
    """Why PostgreSQL refused, from its words."""
    for words, problem in POSTGRESQL_PROBLEMS:
        if words.search(str(error)):
            return problem
    return describe_other_problem(error)


def describe_other_problem(error: Exception) -> str:
    """A refusal not known in words: the database's own, quoted."""
    return f"the database says “{as_is(' '.join(str(error).split()))}”. Try again later, or {{elsewhere}}"


def as_is(text: str) -> str:
    """Text put in a message whose {placeholders} are filled later, kept as it is."""
    return text.replace("{", "{{").replace("}", "}}")
