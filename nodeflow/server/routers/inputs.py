"""Inputs: upload an image into the server's input folder, under a name the server chooses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile

from .. import models as m
from ..deps import Config
from ..handlers import error
from ..uploads import UploadRejected, store_upload

router = APIRouter(tags=["inputs"])


@router.post(
    "/uploads",
    status_code=201,
    response_model=m.Upload,
    responses={413: {"model": m.ErrorMessage}, 415: {"model": m.ErrorMessage}},
)
def upload(
    config: Config, file: Annotated[UploadFile, File(description="an image: PNG, JPEG, WebP, BMP, TIFF or GIF")]
) -> Any:
    """Store an input image under a name the server chooses; use that name as LoadImage's path."""
    data = file.file.read(config.max_upload_bytes + 1)
    if len(data) > config.max_upload_bytes:
        return error(413, "body_too_large", f"uploads are limited to {config.max_upload_bytes} bytes")
    try:
        saved = store_upload(data, file.filename, config.input_dir, config.max_upload_pixels)
    except UploadRejected as exc:
        return error(exc.status, exc.code, exc.message)
    return m.Upload(**saved.__dict__)
