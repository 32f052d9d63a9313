"""RFC 6381 ``codecs`` strings from what ffprobe says of a stream. Pure.

Browsers decide from ``<source type='video/mp4; codecs="…"'>`` (and HLS players from a
rendition's ``CODECS``) whether they can decode a file without downloading it. ffprobe gives
profile and level, not the bit-exact constraint flags, so these are the strings encoders write
for the common profiles.
"""

from app.processing.probe import ProbeResult

# H.264 profile name → profile_idc and constraint flags (ISO/IEC 14496-15).
_AVC_PROFILES = {
    "Constrained Baseline": "42E0",
    "Baseline": "4200",
    "Main": "4D40",
    "Extended": "5800",
    "High": "6400",
    "High 10": "6E00",
    "High 4:2:2": "7A00",
    "High 4:4:4 Predictive": "F400",
}
# HEVC profile name → general_profile_idc and its compatibility flags, reversed bits in hex.
_HEVC_PROFILES = {"Main": "1.6", "Main 10": "2.4", "Main Still Picture": "3.8", "Rext": "4.10"}
_AV1_PROFILES = {"Main": 0, "High": 1, "Professional": 2}


def video_codec_string(probe: ProbeResult) -> str | None:
    """``avc1.640028``, ``hvc1.1.6.L93.B0``, ``av01.0.08M.08``, ``vp09.00.10.08``; None when
    the codec has no MP4 form browsers know."""
    codec, profile, level = probe.video_codec, probe.video_profile or "", probe.video_level
    if codec == "h264":
        flags = _AVC_PROFILES.get(profile, "6400")
        return f"avc1.{flags}{(level or 40):02X}"
    if codec == "hevc":
        # Safari plays HEVC in MP4 only when tagged hvc1 (parameter sets in the sample entry).
        tag = "hev1" if probe.video_tag == "hev1" else "hvc1"
        return f"{tag}.{_HEVC_PROFILES.get(profile, '1.6')}.L{level or 120}.B0"
    if codec == "av1":
        depth = 10 if "10" in (probe.pix_fmt or "") else 8
        return f"av01.{_AV1_PROFILES.get(profile, 0)}.{min(level or 8, 31):02d}M.{depth:02d}"
    if codec == "vp9":
        depth = 10 if "10" in (probe.pix_fmt or "") else 8
        return f"vp09.00.10.{depth:02d}"
    if codec == "vp8":
        return "vp8"
    return None


def audio_codec_string(probe: ProbeResult) -> str | None:
    """``mp4a.40.2`` (AAC-LC), ``mp4a.40.5`` (HE-AAC), ``mp4a.40.34`` (MP3), ``opus``…"""
    codec = probe.audio_codec
    if codec == "aac":
        profile = probe.audio_profile or ""
        return (
            "mp4a.40.29"
            if "HE-AACv2" in profile
            else ("mp4a.40.5" if profile.startswith("HE") else "mp4a.40.2")
        )
    return {"mp3": "mp4a.40.34", "opus": "opus", "flac": "fLaC", "vorbis": "vorbis"}.get(
        codec or ""
    )


def codecs_parameter(probe: ProbeResult) -> str | None:
    """Both, comma-separated, as a ``codecs`` parameter wants them; None if either is
    unknown (a type without codecs lets the browser try rather than wrongly refuse)."""
    parts = []
    if probe.video_codec is not None:
        parts.append(video_codec_string(probe))
    if probe.audio_codec is not None:
        parts.append(audio_codec_string(probe))
    if not parts or None in parts:
        return None
    return ",".join(p for p in parts if p)
