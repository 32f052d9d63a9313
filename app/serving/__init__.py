"""Serving stored bytes over HTTP exactly as RFC 9110 says.

Owns the pure decisions (``byte_ranges``, ``preconditions``, ``http_semantics``: header text and
facts in, status, headers and a body plan out) and the sender that streams a plan from storage
(``streaming``). Imports ``catalog`` (the facts lookup), ``storage`` and ``config``; no pages,
no SQL of its own.
"""
