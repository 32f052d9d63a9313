"""Operations on a whole library, run from the command line: ``streamport verify`` (``verify``)
re-reads every stored object and compares it with the catalog.

Imports ``catalog``, ``storage``, ``config`` and ``errors``; knows nothing of HTTP, uploads or
processing.
"""
