"""Settings read from environment variables, in one place."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NUM_CTX = 4096
DEFAULT_REPLY_RESERVE = 0.25  # share of the context length kept free for the reply
DEFAULT_REPLY_LEASE_S = 10.0  # how long a reply stays its instance's after the last heartbeat (every half second)
DEFAULT_MAX_UPLOAD_MB = 50  # as server.maxUploadSize in .streamlit/config.toml
DEFAULT_EMBED_MODEL = "nomic-embed-text"
DEFAULT_READ_SECONDS = 20  # the time reading one document may take
BACKEND_CHOICES = ("auto", "ollama", "embedded")


class SettingsError(ValueError):
    """A setting's value cannot be used; the message says which, why, and what to do."""


@dataclass(frozen=True)
class Settings:
    """Everything the app can be configured with."""

    db_url: str
    data_dir: Path
    ollama_hosts: tuple[str | None, ...]
    backend: str
    default_model: str
    num_ctx: int
    reply_reserve: float
    reply_lease_s: float  # after this long without a heartbeat from the instance writing a reply, it is interrupted
    auto_title: bool
    summaries: bool  # whether documents get a summary written in the background
    max_upload_mb: int
    read_seconds: float  # the time reading one document may take before it is refused
    embed_model: str  # the Ollama embedding model used when it is pulled; "" for none
    db_in_data_dir: bool  # the database is the data folder's (CHATCORE_DB_URL unset), as errors say

    @property
    def max_upload_bytes(self) -> int:
        """The upload limit in bytes, as ingestion checks it."""
        return self.max_upload_mb * 2**20


def default_data_dir() -> Path:
    """The per-user data folder: $XDG_DATA_HOME/chatcore, else ~/.local/share/chatcore."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "chatcore"


def read_ollama_hosts() -> tuple[str | None, ...]:
    """OLLAMA_HOSTS (several, separated by commas or spaces), else OLLAMA_HOST; None is the client's default."""
    hosts = os.environ.get("OLLAMA_HOSTS", "").replace(",", " ").split()
    return tuple(hosts) or (os.environ.get("OLLAMA_HOST") or None,)


def load_settings() -> Settings:
    """Read the settings from the environment."""
    data_dir = Path(os.environ.get("CHATCORE_DATA_DIR") or default_data_dir())
    db_url = os.environ.get("CHATCORE_DB_URL")
    return Settings(
        db_url=db_url or f"sqlite:///{data_dir / 'chatcore.db'}",
        data_dir=data_dir,
        ollama_hosts=read_ollama_hosts(),
        backend=read_backend(),
        default_model=os.environ.get("CHATCORE_MODEL", ""),
        num_ctx=read_number(
            "CHATCORE_NUM_CTX",
            DEFAULT_NUM_CTX,
            int,
            "a whole number of tokens up to 1048576, such as 8192",
            lambda tokens: 0 < tokens <= 2**20,
        ),
        reply_reserve=read_number(
            "CHATCORE_REPLY_RESERVE",
            DEFAULT_REPLY_RESERVE,
            float,
            "a share above 0 and below 1, such as 0.25",
            lambda share: 0 < share < 1,
        ),
        reply_lease_s=read_number(
            "CHATCORE_REPLY_LEASE_S",
            DEFAULT_REPLY_LEASE_S,
            float,
            "a number of seconds from 1 to 3600",
            lambda seconds: 1 <= seconds <= 3600,
        ),
        auto_title=read_switch("CHATCORE_AUTO_TITLE"),
        summaries=read_switch("CHATCORE_SUMMARIES"),
        max_upload_mb=read_number(
            "CHATCORE_MAX_UPLOAD_MB",
            DEFAULT_MAX_UPLOAD_MB,
            int,
            "a whole number of megabytes up to 10240, such as 50",
            lambda megabytes: 0 < megabytes <= 10240,
        ),
        read_seconds=read_number(
            "CHATCORE_READ_SECONDS",
            DEFAULT_READ_SECONDS,
            float,
            "a number of seconds up to 3600, such as 20",
            lambda seconds: 0 < seconds <= 3600,
        ),
        embed_model=read_embed_model(),
        db_in_data_dir=not db_url,
    )


def read_backend() -> str:
    """CHATCORE_BACKEND: which backend answers, one of BACKEND_CHOICES."""
    raw = os.environ.get("CHATCORE_BACKEND", "").strip()
    if raw and raw.lower() not in BACKEND_CHOICES:
        raise SettingsError(describe_refusal("CHATCORE_BACKEND", raw, f"one of {', '.join(BACKEND_CHOICES)}", "auto"))
    return raw.lower() or "auto"


def read_number(
    name: str, default: float, kind: Callable[[str], float], what: str, fits: Callable[[float], bool]
) -> float:
    """A number setting from the environment, else `default`; SettingsError if it is not `what` (`fits` tells)."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(describe_refusal(name, raw, what, default)) from None
    if not fits(value):  # NaN fits no range, as it compares with nothing
        raise SettingsError(describe_refusal(name, raw, what, default))
    return value


def describe_refusal(name: str, raw: str, what: str, default: object) -> str:
    """Why a setting's value cannot be used, and what to do."""
    return f"The setting {name} is “{raw}”, but must be {what}. Change it, or remove it to use {default}."


def read_switch(name: str) -> bool:
    """An on/off setting, on unless set to 0, false, no or off."""
    return os.environ.get(name, "1").lower() not in ("0", "false", "no", "off")


def read_embed_model() -> str:
    """CHATCORE_EMBED_MODEL: the embedding model's name; "none" turns embeddings off."""
    model = os.environ.get("CHATCORE_EMBED_MODEL") or DEFAULT_EMBED_MODEL
    return "" if model.lower() == "none" else model
