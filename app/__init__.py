"""Streamport: a self-hosted video and large-file streaming portal."""

__version__ = "0.1.0"
