"""The usual FastAPI upload, as a yardstick for ``bench/upload_speed.py``.

``async def upload(file: UploadFile)``: Starlette parses the whole multipart body first,
spooling the file into a ``SpooledTemporaryFile`` (``$TMPDIR`` once over 1 MiB), then the
handler copies ``file.file`` to the media directory with ``shutil.copyfileobj`` in a thread.
No hashing and no fsync: it does less than Streamport, which hashes and fsyncs every upload.
``GET /file`` sends the last upload back with Starlette's ``FileResponse``, and
``POST /discard`` only drains the request body: the most any app under this uvicorn can receive.

Serve it with ``uvicorn bench.reference_uploadfile:create_app --factory`` and
``REFERENCE_MEDIA_DIR`` set to where uploads go.
"""

import os
import shutil
from pathlib import Path

from fastapi import FastAPI, Request, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

COPY_CHUNK_BYTES = 1024 * 1024
TARGET_NAME = "upload.bin"


def create_app() -> FastAPI:
    """The reference application; every upload overwrites ``$REFERENCE_MEDIA_DIR/upload.bin``."""
    media_dir = Path(os.environ.get("REFERENCE_MEDIA_DIR", "reference-media"))
    media_dir.mkdir(parents=True, exist_ok=True)
    target = media_dir / TARGET_NAME
    app = FastAPI(title="UploadFile reference")

    @app.post("/upload")
    async def upload(file: UploadFile) -> dict[str, object]:
        """Copy the spooled upload to disk, the way most FastAPI apps do it."""

        def copy() -> int:
            with target.open("wb") as out:
                shutil.copyfileobj(file.file, out, COPY_CHUNK_BYTES)
                return out.tell()

        size = await run_in_threadpool(copy)
        return {"filename": file.filename, "size": size}

    @app.get("/file")
    async def download() -> FileResponse:
        """The last upload, through Starlette's ``FileResponse``."""
        return FileResponse(target, media_type="application/octet-stream", filename=TARGET_NAME)

    @app.post("/discard")
    async def discard(request: Request) -> dict[str, int]:
        """Read the raw body and drop it: no parsing, no disk, the receive path's ceiling."""
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    return app
