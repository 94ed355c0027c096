"""The command line, for backups and scripts: `python -m chatcore export ...` and `python -m chatcore import FILE`."""

import argparse
import sys
from pathlib import Path

from sqlalchemy import Engine

from chatcore import config, store
from chatcore.archive import MAX_FILE_BYTES, ArchiveError
from chatcore.export import ExportError, Format, plan_export
from chatcore.importer import describe_chats, import_archive


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
    out = args.out / plan.filename if args.out.is_dir() else args.out
    if plan.is_zip and out.suffix != ".zip":
        raise ExportError(f"Several chats as {plan.format.label} make a zip: give --out a .zip path or a folder.")
    out.write_bytes(plan.build())
    return describe_chats("Exported", [chat.title for chat in plan.chats], f" to {out}")


def run_import(engine: Engine, args: argparse.Namespace) -> str:
    """Import the file; return what was imported and skipped."""
    with args.file.open("rb") as file:
        data = file.read(MAX_FILE_BYTES + 1)  # one byte more than allowed is enough to refuse the file
    return import_archive(engine, data).summary()


COMMANDS = {"export": run_export, "import": run_import}


def main(argv: list[str] | None = None) -> int:
    """Run one command on the app's database; exit status 1 on an error it explains, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    try:
        engine = store.open_engine(config.load_settings().db_url)
        print(COMMANDS[args.command](engine, args))
    except (ArchiveError, ExportError, store.SchemaTooNewError, OSError) as error:
        print(f"chatcore: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
