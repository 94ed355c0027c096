"""Shared fixtures: a fresh database per test, and the stand-in Ollama server."""

import pytest

from chatcore import store
from tests.ollama_standin import StandinOllama


@pytest.fixture
def db_url(tmp_path) -> str:
    """A SQLite URL for a database file of this test's own."""
    return f"sqlite:///{tmp_path / 'chatcore.db'}"


@pytest.fixture
def engine(db_url):
    """A migrated engine on a fresh database."""
    engine = store.open_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def standin():
    """A running stand-in Ollama server."""
    with StandinOllama() as server:
        yield server
