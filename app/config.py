"""Settings, read from ``STREAMPORT_*`` environment variables and an optional ``.env``."""

from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Network = IPv4Network | IPv6Network
# Who may see a media besides its owner and admins; see README's "Accounts and sharing".
Visibility = Literal["public", "unlisted", "private"]
VISIBILITIES: tuple[str, ...] = get_args(Visibility)


class Settings(BaseSettings):
    """Everything Streamport can be configured with; see README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="STREAMPORT_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    media_dir: Path = Path("media")
    database_url: str | None = None  # filled from media_dir by the validator below
    max_upload_bytes: int = Field(default=100 * 2**30, gt=0)
    min_free_bytes: int = Field(default=2**30, ge=0)
    max_ranges: int = Field(default=100, ge=1)
    chunk_bytes: int = Field(default=1024 * 1024, ge=64 * 1024, le=64 * 2**20)
    send_buffer_bytes: int = Field(default=8 * 2**20, ge=128 * 1024)
    lookup_cache_seconds: float = Field(default=2.0, ge=0)
    processing_concurrency: int = Field(default=1, ge=0, le=64)
    # The playback plan (README's "Playback"): lossless remux, H.264 transcode, HLS ladder.
    remux: bool = True
    transcode: bool = True
    hls_ladder: str = "1080,720,480,360"
    hls_min_bitrate: int = Field(default=3_000_000, ge=0)
    # Bounds of every ffprobe/ffmpeg run; see README's configuration table.
    probe_timeout_seconds: float = Field(default=30.0, gt=0)
    transcode_timeout_factor: float = Field(default=10.0, gt=0)
    processing_memory_bytes: int = Field(default=3 * 2**30, ge=256 * 2**20)
    processing_max_pixels: int = Field(default=100_000_000, ge=1_000_000)
    storage: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None  # unset: AWS itself
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_region: str | None = None
    # Connections (per worker process); see README's configuration table.
    max_connections: int = Field(default=1000, ge=1)
    max_connections_per_address: int = Field(default=250, ge=1)
    header_timeout_seconds: float = Field(default=20.0, gt=0)
    keepalive_timeout_seconds: float = Field(default=20.0, gt=0)
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    send_timeout_seconds: float = Field(default=60.0, gt=0)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024)
    max_event_streams_per_client: int = Field(default=16, ge=1)
    # Accounts and access; see README's "Accounts and sharing".
    allowed_hosts: str | None = None  # unset: local names, the --host address, PUBLIC_URL's
    public_url: str | None = None
    secret_key_file: Path | None = None  # unset: secret.key in the media dir
    default_visibility: Visibility = "private"
    # Reverse proxies whose X-Forwarded-For is believed (addresses or networks); none by default.
    trusted_proxies: str = ""

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> "Settings":
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("STREAMPORT_S3_BUCKET is required when STREAMPORT_STORAGE=s3")
        return self

    @model_validator(mode="after")
    def _default_database_url(self) -> "Settings":
        if self.database_url is None:
            self.database_url = f"sqlite+aiosqlite:///{self.media_dir.resolve() / 'streamport.db'}"
        return self

    @model_validator(mode="after")
    def _public_url_is_an_origin(self) -> "Settings":
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("STREAMPORT_PUBLIC_URL must look like https://media.example.org")
            self.public_url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        return self

    @model_validator(mode="after")
    def _trusted_proxies_are_addresses(self) -> "Settings":
        self.trusted_networks  # noqa: B018 - parsed once here so that a typo stops the start
        return self

    @model_validator(mode="after")
    def _ladder_is_heights(self) -> "Settings":
        self.hls_heights  # noqa: B018 - parsed once here so that a typo stops the start
        return self

    @cached_property
    def hls_heights(self) -> tuple[int, ...]:
        """``STREAMPORT_HLS_LADDER`` ("1080,720,480,360") as heights, highest first; empty
        for no adaptive streaming."""
        heights = set()
        for entry in self.hls_ladder.split(","):
            entry = entry.strip().lower().removesuffix("p")
            if not entry:
                continue
            if not entry.isdigit() or not 144 <= int(entry) <= 4320 or int(entry) % 2:
                raise ValueError(
                    f"STREAMPORT_HLS_LADDER: not a rendition height (even, 144 to 4320): {entry!r}"
                )
            heights.add(int(entry))
        return tuple(sorted(heights, reverse=True))

    @cached_property
    def trusted_networks(self) -> tuple[Network, ...]:
        """``STREAMPORT_TRUSTED_PROXIES`` parsed: ``"127.0.0.1, 10.0.0.0/8"``."""
        networks = []
        for entry in self.trusted_proxies.split(","):
            entry = entry.strip()
            if entry:
                try:
                    networks.append(ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(
                        f"STREAMPORT_TRUSTED_PROXIES: not an address or network: {entry!r}"
                    ) from None
        return tuple(networks)

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS: when users reach the portal at an https address."""
        return self.public_url is not None and self.public_url.startswith("https://")

    @property
    def public_origin(self) -> str | None:
        """``STREAMPORT_PUBLIC_URL``'s origin (scheme, host and port, no path)."""
        if self.public_url is None:
            return None
        parts = urlsplit(self.public_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def key_path(self) -> Path:
        """Where the signing key lives."""
        return self.secret_key_file or self.media_dir / "secret.key"

    @property
    def host_names(self) -> frozenset[str]:
        """The host names requests may name (``*`` answers any)."""
        if self.allowed_hosts is not None:
            names = {name.strip().lower() for name in self.allowed_hosts.split(",")}
        else:
            names = {"localhost", "127.0.0.1", "[::1]"}
            if self.host not in ("", "0.0.0.0", "::", "[::]"):
                names.add(f"[{self.host}]" if ":" in self.host else self.host.lower())
        if self.public_url is not None:
            hostname = urlsplit(self.public_url).hostname or ""
            names.add(f"[{hostname}]" if ":" in hostname else hostname)
        return frozenset(name for name in names if name)

    @property
    def catalog_url(self) -> str:
        """The SQLAlchemy URL of the catalog (never ``None`` after validation)."""
        assert self.database_url is not None
        return self.database_url
