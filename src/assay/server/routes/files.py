"""Files (artifacts) of training runs.

The ``sigopt`` client uploads in two steps, as it did against S3: ``POST
/v1/training_runs/{id}/files`` records the file and answers with an ``upload`` URL on this
server carrying a one-time token; the client then ``PUT``s the bytes there. The server checks
the length, the MD5 the client declared (and SHA-256 if given) before the file counts as uploaded.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from assay import run_schemas as rs
from assay.errors import AssayError
from assay.server.deps import Principal, reader, writer
from assay.server.runs_deps import runs
from assay.service_runs import RunService

router = APIRouter(prefix="/v1", tags=["files"])


@router.post("/training_runs/{run_id}/files")
def create_file(run_id: str, request: Request, body: rs.FileCreate, svc: RunService = Depends(runs),
                p: Principal = Depends(writer)) -> dict[str, Any]:
    f, token = svc.create_file(run_id, body, client_id=p.client_id, actor=p)
    out = f.to_json()
    headers = {"Content-Type": f.content_type}
    if f.content_md5:
        headers["Content-MD5"] = f.content_md5
    out["upload"] = {"object": "upload", "method": "PUT", "headers": headers,
                     "url": str(request.url_for("upload_file", file_id=str(f.id)).include_query_params(token=token))}
    return out


@router.put("/files/{file_id}/upload", name="upload_file")
async def upload_file(file_id: str, request: Request, token: str | None = None,
                      svc: RunService = Depends(runs)) -> dict[str, Any]:
    """Receive the bytes of a recorded file (authorised by the token in the URL, like a presigned URL)."""
    sink = await run_in_threadpool(svc.open_upload, file_id, token)
    try:
        async for chunk in request.stream():
            if chunk:
                sink.write(chunk)
    except AssayError:
        sink.discard()
        raise
    f = await run_in_threadpool(svc.finish_upload, sink)
    return f.to_json()


@router.get("/files/{file_id}")
def get_file(file_id: str, svc: RunService = Depends(runs), p: Principal = Depends(reader)) -> dict[str, Any]:
    return svc.get_file(file_id, client_id=p.client_id).to_json()


@router.get("/files/{file_id}/content")
def file_content(file_id: str, svc: RunService = Depends(runs), p: Principal = Depends(reader)) -> FileResponse:
    f, path = svc.file_content(file_id, client_id=p.client_id)
    return FileResponse(path, media_type=f.content_type, filename=f.filename or f"file-{f.id}",
                        headers={"Content-MD5": f.content_md5 or "", "X-Content-SHA256": f.sha256 or ""})
