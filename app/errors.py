"""Streamport's error conditions: an HTTP status and a detail each, raised by any layer.

``app.web.errors`` renders them as JSON or HTML.
"""


class StreamportError(Exception):
    """A condition a client can be told about: an HTTP status and a human-readable detail."""

    status_code = 500
    detail = "Something went wrong."
    headers: dict[str, str] | None = None

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


class NotSignedIn(StreamportError):
    """The request needs a signed-in user (pages send people to the login form instead)."""

    status_code = 401
    detail = "Sign in to do this."
    headers = {"WWW-Authenticate": 'Bearer realm="streamport"'}


class InvalidToken(NotSignedIn):
    detail = "The API token is invalid or has been revoked."
    headers = {"WWW-Authenticate": 'Bearer realm="streamport", error="invalid_token"'}


class Forbidden(StreamportError):
    status_code = 403
    detail = "You may not do this."


class CrossSiteRequest(Forbidden):
    detail = "This request did not come from Streamport's own pages and was refused."


class BadHost(StreamportError):
    status_code = 400
    detail = "This server does not answer to that host name."


class TooManyAttempts(StreamportError):
    status_code = 429

    def __init__(self, retry_after_seconds: int, detail: str | None = None) -> None:
        super().__init__(detail or "Too many failed sign-ins; please wait and try again.")
        self.headers = {"Retry-After": str(max(1, retry_after_seconds))}


class InvalidInput(StreamportError):
    """A form or JSON field that is well-formed but not acceptable (a taken user name)."""

    status_code = 422
    detail = "The input is not acceptable."


class ShareExpired(StreamportError):
    status_code = 410
    detail = "This share link has expired."
