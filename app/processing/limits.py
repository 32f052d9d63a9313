"""How long and how much memory processing may take. Pure: settings and facts in, bounds out.

Every ffprobe/ffmpeg run gets a wall-clock limit and an address-space limit; a job as a whole
gets a deadline, past which its lease is no longer renewed and it fails.
"""

from dataclasses import dataclass

from app.config import Settings

# Reading a stored object into a scratch file for ffmpeg (S3): a slow store still does this.
_COPY_BYTES_PER_SECOND = 10 * 10**6
# Our own steps between the tools (catalog writes, storing derived files), with room to spare.
_JOB_SLACK_SECONDS = 120.0
# A transcode is given at least this many seconds of video's worth of time.
_MIN_TRANSCODE_BASIS_SECONDS = 30.0
# The duration a file claims is the uploader's word: 16 KB can claim eleven days. No real
# video averages less than this, so a file's size bounds the duration its limits go by.
_MIN_VIDEO_BYTES_PER_SECOND = 2000


@dataclass(frozen=True)
class ProcessingLimits:
    """The bounds of every tool run and of every job."""

    probe_seconds: float
    transcode_seconds_per_second: float
    memory_bytes: int
    max_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "ProcessingLimits":
        return cls(
            probe_seconds=settings.probe_timeout_seconds,
            transcode_seconds_per_second=settings.transcode_timeout_factor,
            memory_bytes=settings.processing_memory_bytes,
            max_pixels=settings.processing_max_pixels,
        )

    @property
    def frame_seconds(self) -> float:
        """Grabbing a poster: a seek and a few decoded frames."""
        return 2 * self.probe_seconds

    def transcode_seconds(self, duration: float | None, size: int) -> float:
        """A transcode's limit, scaled to how long the video lasts, as far as its size
        makes that credible."""
        credible = min(duration or 0.0, size / _MIN_VIDEO_BYTES_PER_SECOND)
        return self.transcode_seconds_per_second * max(credible, _MIN_TRANSCODE_BASIS_SECONDS)

    def remux_seconds(self, size: int) -> float:
        """A remux reads and writes the file about twice (faststart moves the index)."""
        return self.probe_seconds + 4 * size / _COPY_BYTES_PER_SECOND

    def job_seconds(self, size: int, duration: float | None, transcode: bool) -> float:
        """A whole job's deadline: a copy for the tools, a probe, two frames, maybe a
        transcode, and our own steps. Only a hang of our own should ever reach it."""
        seconds = size / _COPY_BYTES_PER_SECOND + self.probe_seconds + 2 * self.frame_seconds
        if transcode:
            seconds += self.transcode_seconds(duration, size)
        return seconds + _JOB_SLACK_SECONDS
