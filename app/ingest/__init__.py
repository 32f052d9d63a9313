"""Bytes coming in: multipart reception (``uploads``), bytes → storage → catalog all or
nothing (``ingestion``), file names and content types, ``streamport scan``, and deletion
(``removal``).

Imports ``catalog``, ``storage``, ``config`` and ``errors``; never pages, never ffmpeg.
"""
