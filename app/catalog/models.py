"""The catalog's tables."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

TITLE_MAX_CHARS = 500
FILENAME_MAX_CHARS = 255
USERNAME_MAX_CHARS = 64
NOTE_MAX_CHARS = 500


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, even on SQLite which stores no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Media(Base):
    """One stored file: its metadata and the storage key of its bytes."""

    __tablename__ = "media"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX_CHARS))
    filename: Mapped[str] = mapped_column(String(FILENAME_MAX_CHARS))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # When the stored bytes were replaced, which only versions before originals were kept
    # untouched did (a faststart remux); None, as for every upload since, means created_at.
    modified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    # Filled by processing (ffprobe); None until then or when not a media file.
    duration: Mapped[float | None] = mapped_column(Float, default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    video_codec: Mapped[str | None] = mapped_column(String(64), default=None)
    audio_codec: Mapped[str | None] = mapped_column(String(64), default=None)
    bitrate: Mapped[int | None] = mapped_column(BigInteger, default=None)
    container: Mapped[str | None] = mapped_column(String(255), default=None)
    playable: Mapped[bool | None] = mapped_column(Boolean, default=None)
    # Derived files, in storage under generated keys like the media bytes.
    poster_key: Mapped[str | None] = mapped_column(String(255), default=None)
    thumbnail_key: Mapped[str | None] = mapped_column(String(255), default=None)
    playback_key: Mapped[str | None] = mapped_column(String(255), default=None)
    # How browsers get to play it (``processing.playback_plan``), and why.
    playback_plan: Mapped[str | None] = mapped_column(String(16), default=None)
    playback_reason: Mapped[str | None] = mapped_column(String(255), default=None)
    # RFC 6381 codecs of the original and of the playable copy, for <source type="…">.
    codecs: Mapped[str | None] = mapped_column(String(64), default=None)
    playback_codecs: Mapped[str | None] = mapped_column(String(64), default=None)
    # Audio tags; an image's camera and when it was taken (EXIF, local time as written).
    tag_title: Mapped[str | None] = mapped_column(String(255), default=None)
    tag_artist: Mapped[str | None] = mapped_column(String(255), default=None)
    tag_album: Mapped[str | None] = mapped_column(String(255), default=None)
    camera: Mapped[str | None] = mapped_column(String(255), default=None)
    taken_at: Mapped[str | None] = mapped_column(String(32), default=None)

    # Who uploaded it; None only for media of an install upgraded from before accounts, until
    # the first admin exists (they are given the lot).
    owner_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    visibility: Mapped[str] = mapped_column(String(16), default="private")

    job: Mapped["ProcessingJob | None"] = relationship(
        back_populates="media", lazy="joined", passive_deletes=True
    )

    owner: Mapped["User | None"] = relationship(lazy="joined")

    renditions: Mapped[list["Rendition"]] = relationship(
        lazy="selectin", passive_deletes=True, order_by="Rendition.height.desc()"
    )

    __table_args__ = (
        Index("ix_media_created_at_id", "created_at", "id"),
        Index("ix_media_visibility_created_at_id", "visibility", "created_at", "id"),
    )

    @property
    def owner_name(self) -> str | None:
        """The owner's user name (None for media nobody owns yet)."""
        return self.owner.username if self.owner is not None else None

    @property
    def bytes_modified_at(self) -> datetime:
        """When the stored bytes last changed: what ``Last-Modified`` announces."""
        return self.modified_at or self.created_at


class Rendition(Base):
    """One quality of a video's adaptive stream: a fragmented MP4 in storage and its HLS media
    playlist, whose segments are byte ranges of that one file."""

    __tablename__ = "renditions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    media_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("media.id", ondelete="CASCADE"), index=True
    )
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bandwidth: Mapped[int] = mapped_column(BigInteger)  # peak segment bits per second
    average_bandwidth: Mapped[int] = mapped_column(BigInteger)
    codecs: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    # The media playlist with ``{uri}`` where the file's URL goes (see ``processing.hls``).
    playlist: Mapped[str] = mapped_column(Text, deferred=True)


JOB_STATES = ("pending", "running", "done", "failed", "skipped")
FINAL_JOB_STATES = frozenset({"done", "failed", "skipped"})


class ProcessingJob(Base):
    """The processing of one media after upload; a row, so it survives restarts."""

    __tablename__ = "processing_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    media_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("media.id", ondelete="CASCADE"), unique=True
    )
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    step: Mapped[str | None] = mapped_column(String(32), default=None)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Fair queueing: whose job this is (the upload request now; the uploader once there are
    # accounts), and its place in the queue. See ``catalog.next_fair_rank``.
    queue_key: Mapped[str] = mapped_column(String(64), default="")
    fair_rank: Mapped[int] = mapped_column(BigInteger, default=0)
    # Which worker holds a running job, and until when its claim stands without renewal.
    claimed_by: Mapped[str | None] = mapped_column(String(128), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    media: Mapped[Media] = relationship(back_populates="job")

    __table_args__ = (
        # The claim: the pending job with the lowest rank.
        Index("ix_processing_jobs_state_fair_rank", "state", "fair_rank", "id"),
        # A new job's rank: the last rank of its queue key among unfinished jobs.
        Index("ix_processing_jobs_queue_key_state_fair_rank", "queue_key", "state", "fair_rank"),
    )


class User(Base):
    """An account: an admin (manages users, sees everything) or a member."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Stored as typed; unique regardless of case (``username_key``).
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_CHARS))
    username_key: Mapped[str] = mapped_column(String(USERNAME_MAX_CHARS), unique=True)
    # None: no password login (an account used through API tokens only).
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuthSession(Base):
    """A signed-in browser. The cookie holds a random secret; only its SHA-256 is kept here."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the secret
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="")


class ApiToken(Base):
    """A bearer token for scripts and download tools; only its SHA-256 is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Share(Base):
    """A link that opens one media for anyone who has it, until it expires or is deleted."""

    __tablename__ = "shares"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    media_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("media.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    note: Mapped[str] = mapped_column(String(NOTE_MAX_CHARS), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class AuditEvent(Base):
    """Who did what, from where: kept for admins."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    user_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_CHARS), default="")
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")
    address: Mapped[str] = mapped_column(String(64), default="")


class LoginFailure(Base):
    """One failed sign-in, counted per account and per address for throttling (every worker
    and node sees the same rows)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_login_failures_key_at", "key", "at"),)


class SetupToken(Base):
    """The hash of the one-time token ``serve`` prints while no account exists."""

    __tablename__ = "setup_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
