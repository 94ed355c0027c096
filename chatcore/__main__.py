"""The command line, for backups and scripts: `python -m chatcore export ...` and `python -m chatcore import FILE`."""

import argparse
import errno
import os
import secrets
import sys
from pathlib import Path

from sqlalchemy import Engine

from chatcore import config, store
from chatcore.archive import MAX_FILE_BYTES, ArchiveError
from chatcore.export import ExportError, Format, plan_export
from chatcore.importer import describe_chats, import_archive

NOT_ALLOWED_TO_READ = "you are not allowed to read it. Get permission to read it, or import a copy you can read"
NOT_ALLOWED_TO_WRITE = "you are not allowed to write in {folder}. Give --out a folder you can write in"
# Why the system refused a file, and what to do, by its error number; {folder} is the folder of the file written.
READ_PROBLEMS = {
    errno.ENOENT: "there is no such file. Check its name and folder",
    errno.ENOTDIR: "part of its path is a file, not a folder. Check the path",
    errno.EISDIR: "it is a folder. Give the path of the export file in it",
    errno.EACCES: NOT_ALLOWED_TO_READ,
    errno.EPERM: NOT_ALLOWED_TO_READ,
    errno.EIO: "the disk failed while reading it. Import a copy from elsewhere, or export the chats again",
}
WRITE_PROBLEMS = {
    errno.ENOENT: "the folder {folder} does not exist. Create it, or give --out a folder that exists",
    errno.ENOTDIR: "{folder} is not a folder: part of that path is a file. Give --out a path in a folder",
    errno.EISDIR: "there is a folder of that name. Give --out another file name",
    errno.EACCES: NOT_ALLOWED_TO_WRITE,
    errno.EPERM: NOT_ALLOWED_TO_WRITE,
    errno.EROFS: "{folder} is on a read-only disk. Give --out a folder on another disk",
    errno.ENOSPC: "the disk is full. Free some space on it, or give --out a folder on another disk",
    errno.EDQUOT: "you have used all the disk space you are allowed. Free some, or give --out a folder on another disk",
    errno.EFBIG: "the file is larger than that disk takes (FAT32 USB sticks take 4 GB at most). "
    "Export fewer chats, or give --out a folder on another disk",
    errno.EIO: "the disk failed while writing. Give --out a folder on another disk",
    errno.ENAMETOOLONG: "the name is too long. Give --out a shorter one",
}


class FileError(Exception):
    """A file the command cannot read or write; the message says which, why, and what to do."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of both commands."""
    parser = argparse.ArgumentParser(prog="python -m chatcore", description="Export and import chatcore chats.")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write chats to a file: JSON holds them all, md and txt zip several")
    export.add_argument("--format", choices=[fmt.value for fmt in Format], required=True)
    export.add_argument("--out", type=Path, required=True, help="the file to write, or a folder to write it in")
    export.add_argument(
        "--chat", type=int, action="append", dest="chat_ids", metavar="ID", help="repeatable; default: all"
    )
    importer = commands.add_parser("import", help="add the chats of a chatcore JSON export not already here")
    importer.add_argument("file", type=Path)
    return parser


def run_export(engine: Engine, args: argparse.Namespace) -> str:
    """Write the export file; return what was written where."""
    plan = plan_export(engine, args.chat_ids, Format(args.format))
    out = args.out / plan.filename if os.path.isdir(args.out) else args.out
    if plan.is_zip and out.suffix != ".zip":
        raise ExportError(f"Several chats as {plan.format.label} make a zip: give --out a .zip path or a folder.")
    content = plan.build()
    try:
        write_whole(out, content)
    except OSError as error:
        raise FileError(f"Cannot export to {out}: {describe_file_problem(WRITE_PROBLEMS, error, out)}.") from None
    return describe_chats("Exported", [chat.title for chat in plan.chats], f" to {out}")


def write_whole(path: Path, content: bytes) -> None:
    """Write a file whole or not at all: if writing fails, a file already there is left as it was."""
    if path.exists() and not path.is_file():  # a device or a pipe, such as /dev/stdout, cannot be replaced
        path.write_bytes(content)
        return
    target = path.resolve()  # through a symbolic link, so that the file it points to is replaced, not the link
    part = target.with_name(f".chatcore-export-{secrets.token_hex(8)}.part")
    try:
        with part.open("xb") as file:  # a new file, with the permissions new files get
            file.write(content)
            file.flush()
            os.fsync(file.fileno())  # else a power cut just after the rename could leave an empty file
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def run_import(engine: Engine, args: argparse.Namespace) -> str:
    """Import the file; return what was imported and skipped."""
    try:
        return import_archive(engine, read_export(args.file)).summary()
    except ArchiveError as error:
        raise FileError(f"Cannot import {args.file}: {error}") from None


def read_export(path: Path) -> bytes:
    """The bytes of a file to import, up to one more than allowed, which is enough to refuse it."""
    try:
        with path.open("rb") as file:
            return file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise FileError(f"Cannot import {path}: {describe_file_problem(READ_PROBLEMS, error, path)}.") from None


def describe_file_problem(problems: dict[int, str], error: OSError, path: Path) -> str:
    """Why the system refused a file and what to do, in words, from these problems by error number."""
    number = errno.EISDIR if os.path.isdir(path) else error.errno  # Windows reports a folder as access denied
    if number not in problems:
        return f"the system refused it ({(error.strerror or 'for no reason it gave').lower()}). Check the path"
    return problems[number].format(folder=path.parent)


COMMANDS = {"export": run_export, "import": run_import}


def main(argv: list[str] | None = None) -> int:
    """Run one command on the app's database; exit status 1 on an error it explains, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    try:
        settings = config.load_settings()
        engine = store.open_engine(settings.db_url, settings.db_in_data_dir)
        print(COMMANDS[args.command](engine, args))
    except (FileError, ExportError, config.SettingsError, store.DatabaseUnavailableError, OSError) as error:
        print(f"chatcore: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
