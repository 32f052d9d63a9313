"""Media processing after upload: the job queue in the catalog (``jobs``), the worker loops
(``worker``), one job's steps (``processor``), ffmpeg and ffprobe as subprocesses
(``media_tools``) with their bounds (``limits``) and allowed demuxers (``containers``), and
pure decisions and readings: what ffprobe says (``probe``), how a media gets to play
(``playback_plan``), RFC 6381 codec strings (``codec_strings``), the HLS ladder (``ladder``)
and its playlists (``hls``).

Imports ``catalog``, ``storage``, ``config`` and ``errors``; knows nothing of HTTP.
"""
