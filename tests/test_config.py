"""Settings from the environment."""

import tomllib
from pathlib import Path

import pytest

from chatcore.config import DEFAULT_MAX_UPLOAD_MB, SettingsError, load_settings


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


@pytest.mark.parametrize(("value", "lease"), [(None, 10.0), ("3", 3.0), ("1", 1.0)])
def test_the_reply_lease_comes_from_the_environment(monkeypatch, value, lease):
    set_variable(monkeypatch, "CHATCORE_REPLY_LEASE_S", value)
    assert load_settings().reply_lease_s == lease


RESERVE = "must be a share above 0 and below 1, such as 0.25. Change it, or remove it to use 0.25."
NUM_CTX = "must be a whole number of tokens up to 1048576, such as 8192. Change it, or remove it to use 4096."


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CHATCORE_REPLY_RESERVE", "0", f"The setting CHATCORE_REPLY_RESERVE is “0”, but {RESERVE}"),
        ("CHATCORE_REPLY_RESERVE", "1", f"The setting CHATCORE_REPLY_RESERVE is “1”, but {RESERVE}"),
        ("CHATCORE_REPLY_RESERVE", "-0.2", f"The setting CHATCORE_REPLY_RESERVE is “-0.2”, but {RESERVE}"),
        ("CHATCORE_REPLY_RESERVE", "25%", f"The setting CHATCORE_REPLY_RESERVE is “25%”, but {RESERVE}"),
        ("CHATCORE_REPLY_RESERVE", "nan", f"The setting CHATCORE_REPLY_RESERVE is “nan”, but {RESERVE}"),
        ("CHATCORE_NUM_CTX", "8k", f"The setting CHATCORE_NUM_CTX is “8k”, but {NUM_CTX}"),
        ("CHATCORE_NUM_CTX", "8192.5", f"The setting CHATCORE_NUM_CTX is “8192.5”, but {NUM_CTX}"),
        ("CHATCORE_NUM_CTX", "-1", f"The setting CHATCORE_NUM_CTX is “-1”, but {NUM_CTX}"),
        ("CHATCORE_NUM_CTX", "99999999", f"The setting CHATCORE_NUM_CTX is “99999999”, but {NUM_CTX}"),
        (  # other instances would take over replies still written
            "CHATCORE_REPLY_LEASE_S",
            "0.5",
            "The setting CHATCORE_REPLY_LEASE_S is “0.5”, but must be a number of seconds from 1 to 3600. "
            "Change it, or remove it to use 10.0.",
        ),
        (  # the database's clock cannot add that much: every reply would look abandoned at once
            "CHATCORE_REPLY_LEASE_S",
            "inf",
            "The setting CHATCORE_REPLY_LEASE_S is “inf”, but must be a number of seconds from 1 to 3600. "
            "Change it, or remove it to use 10.0.",
        ),
        (
            "CHATCORE_MAX_UPLOAD_MB",
            "0",
            "The setting CHATCORE_MAX_UPLOAD_MB is “0”, but must be a whole number of megabytes up to 10240, "
            "such as 50. Change it, or remove it to use 50.",
        ),
        (
            "CHATCORE_READ_SECONDS",
            "twenty",
            "The setting CHATCORE_READ_SECONDS is “twenty”, but must be a number of seconds up to 3600, such as 20. "
            "Change it, or remove it to use 20.",
        ),
        (
            "CHATCORE_BACKEND",
            "Llama",
            "The setting CHATCORE_BACKEND is “Llama”, but must be one of auto, ollama, embedded. "
            "Change it, or remove it to use auto.",
        ),
    ],
)
def test_a_setting_that_cannot_be_used_is_refused_in_words(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert str(refused.value) == message


@pytest.mark.parametrize("name", ["CHATCORE_NUM_CTX", "CHATCORE_REPLY_RESERVE", "CHATCORE_BACKEND"])
def test_an_empty_setting_is_its_default(monkeypatch, name):
    monkeypatch.delenv(name, raising=False)
    unset = load_settings()
    monkeypatch.setenv(name, " ")
    assert load_settings() == unset


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
