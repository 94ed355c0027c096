"""Shared fixtures: a fresh database per test (SQLite, and PostgreSQL when one is given), the stand-in Ollama."""

import os
import uuid

import pytest
from sqlalchemy import create_engine, make_url

from chatcore import store
from tests.ollama_standin import StandinOllama

# A PostgreSQL URL whose role may create databases; each test gets a database of its own there.
POSTGRES_URL = os.environ.get("CHATCORE_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A URL for an empty database of this test's own, on each supported database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'chatcore.db'}"
        return
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL tests must run in CI: set CHATCORE_TEST_POSTGRES_URL")
        pytest.skip("no PostgreSQL given: set CHATCORE_TEST_POSTGRES_URL to run this test on it too")
    yield from fresh_postgres_database(POSTGRES_URL)


def fresh_postgres_database(server_url: str):
    """Create a uniquely named database, hand out its URL, and drop it afterwards."""
    name = f"chatcore_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
