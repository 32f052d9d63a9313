"""How long a tool may run: scaled to a duration the file's size makes credible."""

from app.processing.limits import ProcessingLimits

LIMITS = ProcessingLimits(
    probe_seconds=30, transcode_seconds_per_second=10, memory_bytes=2**31, max_pixels=10**8
)


def test_a_real_video_gets_time_for_its_whole_length() -> None:
    two_hours = 2 * 3600
    assert LIMITS.transcode_seconds(two_hours, size=2 * 10**9) == 10 * two_hours


def test_a_tiny_file_claiming_days_gets_the_minimum() -> None:
    eleven_days = 950_000.0
    assert LIMITS.transcode_seconds(eleven_days, size=25_000) == 10 * 30


def test_the_job_deadline_covers_its_steps() -> None:
    seconds = LIMITS.job_seconds(size=10**9, duration=600, transcode=True)
    assert seconds > LIMITS.transcode_seconds(600, 10**9) + LIMITS.probe_seconds
