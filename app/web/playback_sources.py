"""The ``<source>`` list of a media's player, in the order browsers should try it. Pure.

A browser plays the first source whose ``type`` it can decode: an HEVC original comes first
with its exact codecs (Safari plays it, Chromium without an HEVC decoder skips it), then the
H.264 copy; a type without ``codecs`` is left for the browser to try.
"""

from typing import NamedTuple

from app.processing.playback_plan import offers_original


class Source(NamedTuple):
    url: str
    type: str


class PlaybackFacts(NamedTuple):
    """What the choice needs of a media."""

    kind: str
    content_type: str
    container: str | None
    video_codec: str | None
    codecs: str | None
    playback_plan: str | None
    playback_codecs: str | None


def playback_sources(facts: PlaybackFacts, stream_url: str, copy_url: str | None) -> list[Source]:
    """The sources of a video or audio player; empty for other kinds."""
    if facts.kind not in ("video", "audio"):
        return []
    main = "audio" if facts.kind == "audio" else "video"
    copy = (
        Source(copy_url, _with_codecs(f"{main}/mp4", facts.playback_codecs)) if copy_url else None
    )
    original = Source(stream_url, _original_type(facts, main))
    if facts.playback_plan is None:
        # Processed before plans existed: a copy, if one was made, was made to be played.
        return [copy] if copy else [original]
    if facts.playback_plan == "original":
        return [original]
    if offers_original(facts.video_codec, facts.container):
        return [original, copy] if copy else [original]
    return [copy] if copy else [original]


def _original_type(facts: PlaybackFacts, main: str) -> str:
    """The type browsers know the original by: QuickTime files as MP4 (``video/quicktime`` is
    a type Chromium says it cannot play, yet it plays the same bytes as MP4), Matroska with
    WebM's codecs as WebM."""
    names = set((facts.container or "").split(","))
    if names & {"mov", "mp4"}:
        return _with_codecs(f"{main}/mp4", facts.codecs)
    if "matroska" in names and facts.playback_plan == "original":
        return _with_codecs(f"{main}/webm", facts.codecs)
    return facts.content_type


def _with_codecs(media_type: str, codecs: str | None) -> str:
    return f'{media_type}; codecs="{codecs}"' if codecs else media_type
