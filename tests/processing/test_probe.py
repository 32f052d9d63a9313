"""Reading what ffprobe says: tags, cover art, EXIF."""

import json

from app.processing.probe import parse_ffprobe, parse_picture_facts


def test_tags_come_from_the_file_or_its_audio_stream_in_any_case() -> None:
    output = {
        "format": {"format_name": "flac", "duration": "3.0", "tags": {"ALBUM": "Dusk"}},
        "streams": [
            {"codec_type": "audio", "codec_name": "flac",
             "tags": {"TITLE": "Night\x00Song\n", "ARTIST": "The Owls"}},
            {"codec_type": "video", "codec_name": "png", "disposition": {"attached_pic": 1}},
        ],
    }  # fmt: skip
    probe = parse_ffprobe(json.dumps(output))
    assert (probe.tag_title, probe.tag_artist, probe.tag_album) == (
        "Night Song",
        "The Owls",
        "Dusk",
    )
    assert probe.has_cover and probe.video_codec is None  # cover art is no video


def test_a_tag_is_kept_short() -> None:
    output = {"format": {"tags": {"title": "x" * 10_000}}, "streams": []}
    assert len(parse_ffprobe(json.dumps(output)).tag_title or "") == 255


def test_exif_gives_the_camera_once_and_the_time_taken() -> None:
    def facts(tags: dict[str, str]) -> tuple[str | None, str | None]:
        return tuple(parse_picture_facts(json.dumps({"frames": [{"tags": tags}]})))  # type: ignore[return-value]

    assert facts({"Make": "Canon", "Model": "Canon EOS 80D",
                  "DateTimeOriginal": "2019:07:14 15:02:11"}) == (
        "Canon EOS 80D", "2019-07-14 15:02:11"
    )  # fmt: skip
    assert facts({"Make": "Apple", "Model": "iPhone 15"}) == ("Apple iPhone 15", None)
    assert facts({"DateTime": "0000:00:00 00:00:00"}) == (None, None)
    assert tuple(parse_picture_facts(json.dumps({"frames": []}))) == (None, None)


def test_a_quarter_turned_phone_video_is_as_tall_as_it_is_shown() -> None:
    def size(video: dict[str, object]) -> tuple[int | None, int | None]:
        stream = {"codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080}
        probe = parse_ffprobe(json.dumps({"format": {}, "streams": [{**stream, **video}]}))
        return probe.width, probe.height

    assert size({"side_data_list": [{"rotation": -90}]}) == (1080, 1920)
    assert size({"tags": {"rotate": "270"}}) == (1080, 1920)
    assert size({"side_data_list": [{"rotation": 180}]}) == (1920, 1080)
    assert size({}) == (1920, 1080)


def test_a_camera_name_never_outgrows_its_column() -> None:
    tags = {"Make": "M" * 255, "Model": "X" * 30_000}
    camera, _ = parse_picture_facts(json.dumps({"frames": [{"tags": tags}]}))
    assert camera is not None and len(camera) == 255
