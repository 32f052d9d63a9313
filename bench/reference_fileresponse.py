"""Starlette's ``FileResponse``, as a yardstick for ``bench/downloads.py``.

``GET /files/{name}`` returns ``FileResponse(root / name)``: Starlette sends the file in 64 KiB
reads and answers ``Range`` requests itself (206, or multipart for several ranges). No catalog,
no extra headers. ``GET /healthz`` answers 200 for start-up polling.

Serve it with ``uvicorn bench.reference_fileresponse:create_app --factory`` and
``REFERENCE_FILES_DIR`` set to the directory holding the files.
"""

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route


def create_app() -> Starlette:
    """The reference application, serving ``$REFERENCE_FILES_DIR``."""
    root = Path(os.environ.get("REFERENCE_FILES_DIR", "files")).resolve()

    async def files(request: Request) -> Response:
        """The named file; ``{name}`` never holds a slash, and dot names are refused."""
        name: str = request.path_params["name"]
        if name.startswith("."):
            return PlainTextResponse("Not Found", status_code=404)
        return FileResponse(root / name)

    async def healthz(request: Request) -> Response:
        """Liveness."""
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/files/{name}", files, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
