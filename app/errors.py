"""Streamport's error conditions: an HTTP status and a detail each, raised by any layer.

``app.web.errors`` renders them as JSON or HTML.
"""


class StreamportError(Exception):
    """A condition a client can be told about: an HTTP status and a human-readable detail."""

    status_code = 500
    detail = "Something went wrong."

    def __init__(self, detail: str | None = None) -> None:
        if detail is not None:
            self.detail = detail
        super().__init__(self.detail)


class MediaNotFound(StreamportError):
    status_code = 404
    detail = "No such media."


class BadUpload(StreamportError):
    status_code = 400
    detail = "The upload could not be understood."


class UnsupportedUpload(StreamportError):
    status_code = 415
    detail = "Uploads must be sent as multipart/form-data."


class UploadTooLarge(StreamportError):
    status_code = 413

    def __init__(self, max_upload_bytes: int, reason: str | None = None) -> None:
        if reason:
            super().__init__(f"The upload is refused: {reason}.")
        else:
            super().__init__(f"The upload is larger than the limit of {max_upload_bytes:,} bytes.")


class InsufficientStorage(StreamportError):
    status_code = 507
    detail = "The server has no room left to store this upload."


class ServerBusy(StreamportError):
    """The process has no descriptor left for this request (what happened is logged)."""

    status_code = 503
    detail = "The server is busy right now; please try again shortly."


class StorageUnavailable(StreamportError):
    """The object store failed or cannot be reached; what went wrong is logged, not shown."""

    status_code = 503
    detail = "Storage is unavailable right now; please try again later."


class UploadAborted(StreamportError):
    """The client went away mid-upload; nobody is left to read the answer."""

    status_code = 400
    detail = "The upload was interrupted before it was complete."
