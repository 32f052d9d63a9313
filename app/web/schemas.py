"""Shapes of the JSON API."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field
from starlette.datastructures import URLPath
from starlette.routing import Router

from app.catalog.kinds import MediaKind, media_kind
from app.catalog.models import TITLE_MAX_CHARS, Media
from app.config import Visibility
from app.ingest.filenames import normalize_title
from app.processing.jobs import snapshot
from app.processing.playback_plan import offers_original
from app.storage.keys import url_version
from app.web.playback_sources import PlaybackFacts, playback_sources


class Processing(BaseModel):
    """Where a media's processing stands."""

    state: Literal["pending", "running", "done", "failed", "skipped"]
    progress: float = Field(ge=0, le=1)
    step: str | None = None
    error: str | None = None


class Playback(BaseModel):
    """How browsers get to play a media (README's "Playback")."""

    plan: Literal["original", "remux", "transcode"]
    reason: str
    original_first: bool = Field(
        default=False, description="The original is still offered first (HEVC: Safari plays it)"
    )


class SourceOut(BaseModel):
    url: str
    type: str = Field(description='A MIME type with codecs: video/mp4; codecs="avc1.64001f"')


class Tags(BaseModel):
    """What an audio file's tags say."""

    title: str | None
    artist: str | None
    album: str | None


class MediaOut(BaseModel):
    """A media as the API and the pages present it."""

    id: str
    title: str
    filename: str
    content_type: str
    kind: MediaKind
    size: int = Field(description="Bytes")
    sha256: str
    created_at: datetime
    page_url: str
    stream_url: str
    download_url: str
    duration: float | None = Field(description="Seconds")
    width: int | None
    height: int | None
    video_codec: str | None
    audio_codec: str | None
    bitrate: int | None = Field(description="Bits per second")
    container: str | None
    playable: bool | None = Field(description="Whether browsers play it as uploaded")
    thumbnail_url: str | None
    poster_url: str | None
    playback_url: str = Field(description="What a player should load")
    playback: Playback | None = Field(description="Decided once the media is probed")
    sources: list[SourceOut] = Field(description="What a player tries, in this order")
    hls_url: str | None = Field(description="The HLS master playlist, when renditions exist")
    tags: Tags | None = Field(description="Audio tags")
    camera: str | None = Field(description="An image's camera (EXIF)")
    taken_at: str | None = Field(description="When an image was taken (EXIF, local time)")
    events_url: str
    processing: Processing
    owner: str | None = Field(description="The owner's user name")
    visibility: Visibility

    @classmethod
    def from_media(cls, media: Media, router: Router, share: str | None = None) -> "MediaOut":
        """Present a catalog row, with links resolved through the app's routes; ``share``
        (a share link's token) goes into every link, so the page's player may load them."""
        query = f"?share={share}" if share else ""

        def path(name: str) -> str:
            url: URLPath = router.url_path_for(name, media_id=media.id)
            return str(url) + query

        def derived(name: str, key: str | None) -> str | None:
            # The key in the URL makes a new derived file a new URL: caches keep each forever.
            if not key:
                return None
            return f"{path(name)}{'&' if query else '?'}v={url_version(key)}"

        kind = media_kind(media.content_type)
        stream_url = path("stream_media")
        playback_url = derived("media_playback", media.playback_key)
        sources = playback_sources(
            PlaybackFacts(
                kind, media.content_type, media.container, media.video_codec, media.codecs,
                media.playback_plan, media.playback_codecs,
            ),
            stream_url,
            playback_url,
        )  # fmt: skip
        has_tags = media.tag_title or media.tag_artist or media.tag_album
        return cls(
            id=media.id,
            title=media.title,
            filename=media.filename,
            content_type=media.content_type,
            kind=kind,
            size=media.size,
            sha256=media.sha256,
            created_at=media.created_at,
            page_url=path("media_page"),
            stream_url=stream_url,
            download_url=path("download_media"),
            duration=media.duration,
            width=media.width,
            height=media.height,
            video_codec=media.video_codec,
            audio_codec=media.audio_codec,
            bitrate=media.bitrate,
            container=media.container,
            playable=media.playable,
            thumbnail_url=derived("media_thumbnail", media.thumbnail_key),
            poster_url=derived("media_poster", media.poster_key),
            playback_url=playback_url or stream_url,
            playback=Playback(
                plan=media.playback_plan,  # type: ignore[arg-type]
                reason=media.playback_reason or "",
                original_first=media.playback_plan == "transcode"
                and offers_original(media.video_codec, media.container),
            )
            if media.playback_plan
            else None,
            sources=[SourceOut(url=s.url, type=s.type) for s in sources],
            hls_url=path("media_hls_master") if media.renditions else None,
            tags=Tags(title=media.tag_title, artist=media.tag_artist, album=media.tag_album)
            if has_tags
            else None,
            camera=media.camera,
            taken_at=media.taken_at,
            events_url=path("media_events"),
            processing=Processing(**snapshot(media.job)),  # type: ignore[arg-type]
            owner=media.owner_name,
            visibility=media.visibility,  # type: ignore[arg-type]
        )


class MediaPage(BaseModel):
    """One page of the catalog."""

    items: list[MediaOut]
    total: int
    page: int
    per_page: int


class MediaUploaded(BaseModel):
    """The media an upload created, in upload order."""

    items: list[MediaOut]


def _nonblank_title(value: str) -> str:
    title = normalize_title(value)
    if not title:
        raise ValueError("the title must not be blank")
    return title


Title = Annotated[str, Field(max_length=TITLE_MAX_CHARS), AfterValidator(_nonblank_title)]


class MediaPatch(BaseModel):
    """The fields a client may change; at least one."""

    model_config = {"extra": "forbid"}

    title: Title | None = None
    visibility: Visibility | None = None


class ShareCreate(BaseModel):
    """A new share link: seconds until it expires (omitted: never), and a note."""

    model_config = {"extra": "forbid"}

    expires_in: float | None = Field(default=None, gt=0, le=100 * 365 * 86400)
    note: str = Field(default="", max_length=500)


class ShareOut(BaseModel):
    id: str
    url: str
    media_id: str
    note: str
    created_at: datetime
    expires_at: datetime | None


class Me(BaseModel):
    username: str
    is_admin: bool


class Health(BaseModel):
    status: str = "ok"
