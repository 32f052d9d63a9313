"""Operations on a whole library, run from the command line: ``streamport verify`` (``verify``)
re-reads every stored object and compares it with the catalog. Its parts: ``findings`` (pure
decisions), ``readers`` (catalog rows and stored bytes, read only), ``library_check`` (the
pass over the library) and ``verify`` (the entry point and what it prints).

Imports ``catalog``, ``storage``, ``config`` and ``errors``; knows nothing of HTTP, uploads or
processing.
"""
