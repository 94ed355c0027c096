"""The command line, run as users run it: `python -m chatcore ...` in a subprocess."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chatcore import store
from chatcore.export import Format, plan_export

pytestmark = pytest.mark.slow  # each test starts Python processes
ROOT = Path(__file__).resolve().parents[1]


def chatcore(db_url: str, *args: str) -> subprocess.CompletedProcess:
    """Run the command line on this database."""
    env = os.environ | {"CHATCORE_DB_URL": db_url}
    command = [sys.executable, "-m", "chatcore", *map(str, args)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


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


def test_export_of_one_chat_as_markdown(db_url, engine, sample_chats, tmp_path):
    out = tmp_path / "trip.md"
    result = chatcore(db_url, "export", "--format", "md", "--out", out, "--chat", sample_chats[0])
    assert result.returncode == 0
    assert out.read_bytes() == plan_export(engine, sample_chats[:1], Format.MARKDOWN).build()


def test_export_into_a_folder_uses_the_export_name(db_url, engine, sample_chats, tmp_path):
    result = chatcore(db_url, "export", "--format", "txt", "--out", tmp_path)
    written = tmp_path / plan_export(engine, None, Format.TEXT).filename
    assert result.returncode == 0 and str(written) in result.stdout
    assert len(zipfile.ZipFile(written).namelist()) == 2


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["export", "--format", "md", "--out", "out.md", "--chat", "999"], 1, "chatcore: No chat with id 999."),
        (["export", "--format", "md", "--out", "all.md"], 1, "give --out a .zip path or a folder"),
        (["export", "--format", "doc", "--out", "x"], 2, "invalid choice: 'doc'"),
        (["import", "missing.json"], 1, "No such file or directory"),
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
