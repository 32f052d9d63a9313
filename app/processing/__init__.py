"""Media processing after upload: the job queue in the catalog (``jobs``), the worker loops
(``worker``), one job's steps (``processor``), ffmpeg and ffprobe as subprocesses
(``media_tools``) and the pure reading of what they say (``probe``, ``mp4_atoms``).

Imports ``catalog``, ``storage``, ``config`` and ``errors``; knows nothing of HTTP.
"""
