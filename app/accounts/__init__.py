"""Accounts and access: users, password hashing, browser sessions, API tokens, share links,
sign-in throttling, the audit log, and the one policy that says who may see or change what.

Imports ``catalog`` (its tables), ``config`` and ``errors``; knows nothing of HTTP or
templates: ``web`` turns cookies and headers into the credentials handled here.
"""
