"""The command line, run as users run it: `python -m chatcore ...` in a subprocess; in-process where the system is
made to refuse files."""

import errno
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chatcore import store
from chatcore.__main__ import main
from chatcore.export import Format, plan_export

SLOW = pytest.mark.slow  # the test starts Python processes
ROOT = Path(__file__).resolve().parents[1]


def chatcore(db_url: str, *args: str) -> subprocess.CompletedProcess:
    """Run the command line on this database."""
    env = os.environ | {"CHATCORE_DB_URL": db_url}
    command = [sys.executable, "-m", "chatcore", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@SLOW
def test_export_then_import_into_another_database(db_url, sample_chats, tmp_path):
    backup = tmp_path / "backup.json"
    exported = chatcore(db_url, "export", "--format", "json", "--out", backup)
    assert (exported.returncode, exported.stdout) == (
        0,
        f"Exported 2 chats to {backup}: “Trip to <b>Lisbon</b>”, “Recipes”.\n",
    )
    other = f"sqlite:///{tmp_path / 'other.db'}"
    first = chatcore(other, "import", backup)
    assert (first.returncode, first.stdout) == (0, "Imported 2 chats: “Trip to <b>Lisbon</b>”, “Recipes”.\n")
    again = chatcore(other, "import", backup)
    assert "Skipped 2 chats already here" in again.stdout and again.returncode == 0


@SLOW
def test_export_of_one_chat_as_markdown(db_url, engine, sample_chats, tmp_path):
    out = tmp_path / "trip.md"
    result = chatcore(db_url, "export", "--format", "md", "--out", out, "--chat", sample_chats[0])
    assert result.returncode == 0
    assert out.read_bytes() == plan_export(engine, sample_chats[:1], Format.MARKDOWN).build()


@SLOW
def test_export_into_a_folder_uses_the_export_name(db_url, engine, sample_chats, tmp_path):
    result = chatcore(db_url, "export", "--format", "txt", "--out", tmp_path)
    written = tmp_path / plan_export(engine, None, Format.TEXT).filename
    assert result.returncode == 0 and str(written) in result.stdout
    assert len(zipfile.ZipFile(written).namelist()) == 2


@SLOW
@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["export", "--format", "md", "--out", "out.md", "--chat", "999"], 1, "chatcore: No chat with id 999."),
        (["export", "--format", "md", "--out", "all.md"], 1, "give --out a .zip path or a folder"),
        (["export", "--format", "doc", "--out", "x"], 2, "invalid choice: 'doc'"),
        (["import", "missing.json"], 1, "missing.json: there is no such file. Check its name and folder."),
        (["import", "bad.json"], 1, "Chat 1, message 1: `role` must be 'user', 'assistant' or 'system'"),
        (["fly"], 2, "invalid choice: 'fly'"),
    ],
)
def test_errors_exit_non_zero_with_a_message(db_url, engine, sample_chats, tmp_path, args, status, message):
    document = json.loads(plan_export(engine, None, Format.JSON).build())
    document["chats"][0]["messages"][0]["role"] = "bot"
    (tmp_path / "bad.json").write_text(json.dumps(document))
    result = chatcore(db_url, *[str(tmp_path / arg) if arg.endswith((".json", ".md")) else arg for arg in args])
    assert (result.returncode, result.stdout) == (status, "")
    assert message in result.stderr
    assert store.count_chats(engine) == 2


class FailingFile:
    """An open file whose disk fails with this error on reading it, or halfway through writing it."""

    def __init__(self, file, error: OSError):
        self.file, self.error = file, error

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.file.close()

    def __getattr__(self, name: str):
        return getattr(self.file, name)

    def read(self, *size):
        raise self.error

    def write(self, data):
        self.file.write(data[: len(data) // 2])
        self.file.flush()
        raise self.error


def refuse_files(monkeypatch, folder: Path, number: int, when: str) -> None:
    """Make the system refuse the files in a folder with this error number, on opening them or on using them."""
    real_open = io.open

    def open_or_refuse(file, *args, **kwargs):
        if not isinstance(file, Path) or file.parent != folder:
            return real_open(file, *args, **kwargs)
        error = OSError(number, os.strerror(number), str(file))
        if when == "open":
            raise error
        return FailingFile(real_open(file, *args, **kwargs), error)

    monkeypatch.setattr(io, "open", open_or_refuse)


def folder_contents(folder: Path) -> dict[str, bytes]:
    """Every file in a folder, by name, with its bytes."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture
def files(engine, sample_chats, tmp_path) -> Path:
    """A folder with a JSON export of the sample chats, the same saved by an editor as Windows-1252, and a link to
    itself."""
    folder = tmp_path / "files"
    folder.mkdir()
    exported = plan_export(engine, None, Format.JSON).build()
    (folder / "backup.json").write_bytes(exported)
    (folder / "ansi.json").write_bytes(exported.decode().encode("cp1252"))
    (folder / "loop.json").symlink_to("loop.json")
    return folder


EXPORT = ["export", "--format", "json", "--out"]
NOT_UTF8 = (
    "The file is not in UTF-8, the text encoding of chatcore's exports: an editor may have saved it in another one. "
    "Save it as UTF-8 in your text editor (in Windows Notepad: Save As, Encoding: UTF-8), "
    "or export the chats again as JSON on chatcore's Export page."
)


# {files} is the folder of the `files` fixture; a fault is the error number the system refuses a file there with,
# and whether on opening it or on reading or writing it.
@pytest.mark.parametrize(
    ("args", "fault", "message"),
    [
        pytest.param(
            ["import", "{files}/missing.json"],
            None,
            "Cannot import {files}/missing.json: there is no such file. Check its name and folder.",
            id="import: no such file",
        ),
        pytest.param(
            ["import", "{files}"],
            None,
            "Cannot import {files}: it is a folder. Give the path of the export file in it.",
            id="import: a folder",
        ),
        pytest.param(
            ["import", "{files}/backup.json/chats.json"],
            None,
            "Cannot import {files}/backup.json/chats.json: part of its path is a file, not a folder. Check the path.",
            id="import: a file in the path",
        ),
        pytest.param(
            ["import", "{files}/backup.json"],
            (errno.EACCES, "open"),
            "Cannot import {files}/backup.json: you are not allowed to read it. "
            "Get permission to read it, or import a copy you can read.",
            id="import: not allowed",
        ),
        pytest.param(
            ["import", "{files}/backup.json"],
            (errno.EIO, "use"),
            "Cannot import {files}/backup.json: the disk failed while reading it. "
            "Import a copy from elsewhere, or export the chats again.",
            id="import: disk failure",
        ),
        pytest.param(
            ["import", "{files}/loop.json"],
            None,
            "Cannot import {files}/loop.json: the system refused it (too many levels of symbolic links). "
            "Check the path.",
            id="import: a problem without words of its own",
        ),
        pytest.param(
            ["import", "{files}/ansi.json"],
            None,
            "Cannot import {files}/ansi.json: " + NOT_UTF8,
            id="import: not UTF-8",
        ),
        pytest.param(
            [*EXPORT, "{files}/new/backup.json"],
            None,
            "Cannot export to {files}/new/backup.json: the folder {files}/new does not exist. "
            "Create it, or give --out a folder that exists.",
            id="export: no such folder",
        ),
        pytest.param(
            [*EXPORT, "{files}/backup.json/chats.json"],
            None,
            "Cannot export to {files}/backup.json/chats.json: {files}/backup.json is not a folder: "
            "part of that path is a file. Give --out a path in a folder.",
            id="export: a file in the path",
        ),
        pytest.param(
            [*EXPORT, "{files}/backup.json"],
            (errno.EACCES, "open"),
            "Cannot export to {files}/backup.json: you are not allowed to write in {files}. "
            "Give --out a folder you can write in.",
            id="export: not allowed",
        ),
        pytest.param(
            [*EXPORT, "{files}/backup.json"],
            (errno.EROFS, "open"),
            "Cannot export to {files}/backup.json: {files} is on a read-only disk. "
            "Give --out a folder on another disk.",
            id="export: read-only disk",
        ),
        pytest.param(
            [*EXPORT, "{files}/backup.json"],
            (errno.ENOSPC, "use"),
            "Cannot export to {files}/backup.json: the disk is full. "
            "Free some space on it, or give --out a folder on another disk.",
            id="export: disk full halfway",
        ),
        pytest.param(
            [*EXPORT, "{files}/backup.json"],
            (errno.EFBIG, "use"),
            "Cannot export to {files}/backup.json: the file is larger than that disk takes "
            "(FAT32 USB sticks take 4 GB at most). Export fewer chats, or give --out a folder on another disk.",
            id="export: too large for the disk",
        ),
        pytest.param(
            [*EXPORT, "/dev/full"],
            None,
            "Cannot export to /dev/full: the disk is full. "
            "Free some space on it, or give --out a folder on another disk.",
            id="export: a full device",
        ),
    ],
)
def test_file_problems_are_said_in_words_and_leave_the_files_as_they_were(
    db_url, files, monkeypatch, capsys, args, fault, message
):
    before = folder_contents(files)
    monkeypatch.setenv("CHATCORE_DB_URL", db_url)
    if fault:
        refuse_files(monkeypatch, files, *fault)
    status = main([arg.format(files=files) for arg in args])
    monkeypatch.undo()
    assert (status, *capsys.readouterr()) == (1, "", f"chatcore: {message.format(files=files)}\n")
    assert folder_contents(files) == before  # an older export kept whole, and no part of a new one


# {tmp} is this test's folder, which holds notes.json, a file that is not a database.
@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        pytest.param(
            {"CHATCORE_DB_URL": "sqlite:///{tmp}/notes.json"},
            [*EXPORT, "{tmp}/backup.json"],
            "Cannot open the SQLite database {tmp}/notes.json: the file is not a database. "
            "Check the path, or set CHATCORE_DB_URL to another file.",
            id="not a database",
        ),
        pytest.param(
            {"CHATCORE_DATA_DIR": "/proc/chatcore"},
            [*EXPORT, "{tmp}/backup.json"],
            "Cannot open the SQLite database /proc/chatcore/chatcore.db: its folder /proc/chatcore cannot be created "
            "(nothing can be created there). Create it yourself, or set CHATCORE_DATA_DIR to another folder "
            "(or CHATCORE_DB_URL to another database).",
            id="data folder cannot be created",
        ),
        pytest.param(
            {"CHATCORE_DATA_DIR": "{tmp}/notes.json"},
            ["import", "{tmp}/notes.json"],
            "Cannot open the SQLite database {tmp}/notes.json/chatcore.db: its folder {tmp}/notes.json cannot be "
            "created (a file has that name). Create it yourself, or set CHATCORE_DATA_DIR to another folder "
            "(or CHATCORE_DB_URL to another database).",
            id="data folder is a file",
        ),
        pytest.param(
            {"CHATCORE_DB_URL": "postgresql+psycopg://chatcore:s3cret@127.0.0.1:9/chats"},
            ["import", "{tmp}/notes.json"],
            "Cannot open the PostgreSQL database “chats” at 127.0.0.1:9: no PostgreSQL server answers there. "
            "Start PostgreSQL, or check the host and port in CHATCORE_DB_URL.",
            id="PostgreSQL not reachable",
        ),
        pytest.param(
            {"CHATCORE_BACKEND": "llama"},
            [*EXPORT, "{tmp}/backup.json"],
            "The setting CHATCORE_BACKEND is “llama”, but must be one of auto, ollama, embedded. "
            "Change it, or remove it to use auto.",
            id="a setting",
        ),
    ],
)
def test_a_database_or_setting_that_cannot_be_used_is_said_in_words_and_nothing_is_written(
    tmp_path, monkeypatch, capsys, env, args, message
):
    (tmp_path / "notes.json").write_text('{"chats": []}')
    monkeypatch.delenv("CHATCORE_DB_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    status = main([arg.format(tmp=tmp_path) for arg in args])
    assert (status, *capsys.readouterr()) == (1, "", f"chatcore: {message.format(tmp=tmp_path)}\n")
    assert folder_contents(tmp_path) == {"notes.json": b'{"chats": []}'}
