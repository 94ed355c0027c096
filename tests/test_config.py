"""Settings from the environment."""

import tomllib
from pathlib import Path

import pytest

from chatcore.config import DEFAULT_MAX_UPLOAD_MB, load_settings


def set_variable(monkeypatch, name: str, value: str | None) -> None:
    """Set an environment variable, or remove it for None."""
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("value", "reserve"), [(None, 0.25), ("0.4", 0.4), ("0.1", 0.1)])
def test_reply_reserve_comes_from_the_environment(monkeypatch, value, reserve):
    set_variable(monkeypatch, "CHATCORE_REPLY_RESERVE", value)
    assert load_settings().reply_reserve == reserve


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2"])
def test_a_reply_reserve_outside_zero_to_one_is_refused(monkeypatch, value):
    monkeypatch.setenv("CHATCORE_REPLY_RESERVE", value)
    with pytest.raises(ValueError, match="CHATCORE_REPLY_RESERVE must be above 0 and below 1"):
        load_settings()


@pytest.mark.parametrize(("value", "lease"), [(None, 10.0), ("3", 3.0), ("1", 1.0)])
def test_the_reply_lease_comes_from_the_environment(monkeypatch, value, lease):
    set_variable(monkeypatch, "CHATCORE_REPLY_LEASE_S", value)
    assert load_settings().reply_lease_s == lease


def test_a_reply_lease_under_a_second_is_refused(monkeypatch):
    monkeypatch.setenv("CHATCORE_REPLY_LEASE_S", "0.5")  # other instances would take over replies still written
    with pytest.raises(ValueError, match="CHATCORE_REPLY_LEASE_S must be at least 1"):
        load_settings()


@pytest.mark.parametrize(("value", "megabytes"), [(None, 50), ("5", 5)])
def test_the_upload_limit_comes_from_the_environment_and_matches_streamlit(monkeypatch, value, megabytes):
    set_variable(monkeypatch, "CHATCORE_MAX_UPLOAD_MB", value)
    assert load_settings().max_upload_mb == megabytes
    assert load_settings().max_upload_bytes == megabytes * 2**20
    streamlit_config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text())
    assert streamlit_config["server"]["maxUploadSize"] == DEFAULT_MAX_UPLOAD_MB


@pytest.mark.parametrize(
    ("value", "model"), [(None, "nomic-embed-text"), ("mxbai-embed-large", "mxbai-embed-large"), ("None", "")]
)
def test_the_embedding_model_comes_from_the_environment_and_can_be_turned_off(monkeypatch, value, model):
    set_variable(monkeypatch, "CHATCORE_EMBED_MODEL", value)
    assert load_settings().embed_model == model


@pytest.mark.parametrize(("value", "on"), [(None, True), ("1", True), ("0", False), ("off", False), ("No", False)])
def test_switches_are_on_unless_turned_off(monkeypatch, value, on):
    set_variable(monkeypatch, "CHATCORE_SUMMARIES", value)
    set_variable(monkeypatch, "CHATCORE_AUTO_TITLE", value)
    assert (load_settings().summaries, load_settings().auto_title) == (on, on)
