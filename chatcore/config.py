"""Settings read from environment variables, in one place."""

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_NUM_CTX = 4096
DEFAULT_REPLY_RESERVE = 0.25  # share of the context length kept free for the reply
DEFAULT_REPLY_LEASE_S = 10.0  # how long a reply stays its instance's after the last heartbeat (every half second)
DEFAULT_MAX_UPLOAD_MB = 50  # as server.maxUploadSize in .streamlit/config.toml
DEFAULT_EMBED_MODEL = "nomic-embed-text"
DEFAULT_READ_SECONDS = 20  # the time reading one document may take
BACKEND_CHOICES = ("auto", "ollama", "embedded")


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
    backend = os.environ.get("CHATCORE_BACKEND", "auto").lower()
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"CHATCORE_BACKEND must be one of {', '.join(BACKEND_CHOICES)}, not {backend!r}")
    return Settings(
        db_url=db_url or f"sqlite:///{data_dir / 'chatcore.db'}",
        data_dir=data_dir,
        ollama_hosts=read_ollama_hosts(),
        backend=backend,
        default_model=os.environ.get("CHATCORE_MODEL", ""),
        num_ctx=int(os.environ.get("CHATCORE_NUM_CTX") or DEFAULT_NUM_CTX),
        reply_reserve=read_reply_reserve(),
        reply_lease_s=read_reply_lease(),
        auto_title=read_switch("CHATCORE_AUTO_TITLE"),
        summaries=read_switch("CHATCORE_SUMMARIES"),
        max_upload_mb=int(os.environ.get("CHATCORE_MAX_UPLOAD_MB") or DEFAULT_MAX_UPLOAD_MB),
        read_seconds=float(os.environ.get("CHATCORE_READ_SECONDS") or DEFAULT_READ_SECONDS),
        embed_model=read_embed_model(),
        db_in_data_dir=not db_url,
    )


def read_switch(name: str) -> bool:
    """An on/off setting, on unless set to 0, false, no or off."""
    return os.environ.get(name, "1").lower() not in ("0", "false", "no", "off")


def read_embed_model() -> str:
    """CHATCORE_EMBED_MODEL: the embedding model's name; "none" turns embeddings off."""
    model = os.environ.get("CHATCORE_EMBED_MODEL") or DEFAULT_EMBED_MODEL
    return "" if model.lower() == "none" else model


def read_reply_reserve() -> float:
    """CHATCORE_REPLY_RESERVE: the share of the context length kept for the reply, above 0 and below 1."""
    reserve = float(os.environ.get("CHATCORE_REPLY_RESERVE") or DEFAULT_REPLY_RESERVE)
    if not 0 < reserve < 1:
        raise ValueError(f"CHATCORE_REPLY_RESERVE must be above 0 and below 1, not {reserve}")
    return reserve


def read_reply_lease() -> float:
    """CHATCORE_REPLY_LEASE_S: how long a reply whose instance stopped renewing it stays its own; at least 1 second."""
    lease = float(os.environ.get("CHATCORE_REPLY_LEASE_S") or DEFAULT_REPLY_LEASE_S)
    if lease < 1:
        raise ValueError(f"CHATCORE_REPLY_LEASE_S must be at least 1 (seconds), not {lease}")
    return lease
