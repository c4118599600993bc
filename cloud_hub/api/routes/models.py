"""``/api/v1/models``: upload a signed bundle (HQ admins), list versions, download a bundle.

Upload: the body is the bundle ``.tar`` itself (``Content-Type: application/x-tar``), at most
``model_max_bytes``; it is refused with the verification's reason (400) unless its signature
checks against ``RETAIL_HUB_TRUSTED_KEYS_DIR`` and every file against the signed hashes.
Download: for HQ admins (API key) and for enrolled devices (their own secret), with HTTP Range
so an edge resumes an interrupted download.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from cloud_hub.api.auth import AUTH_RESPONSES, ErrorDetail, bearer, require
from cloud_hub.api.deps import EngineDep, SettingsDep
from cloud_hub.core.security import DEVICE_SECRET_PREFIX, Caller, Permission
from cloud_hub.services.api_keys import caller_for_key
from cloud_hub.services.enrollment import device_for_secret
from cloud_hub.services.models_registry import (
    ARCHIVE_MEDIA_TYPE,
    NAME_PATTERN,
    BundleRefused,
    ModelList,
    ModelOut,
    StagedUpload,
    TooLarge,
    VersionConflict,
    bundle_file,
    get_model,
    list_models,
    load_trusted,
    register_bundle,
)
from common.signing import TrustedKeys

log = logging.getLogger(__name__)
router = APIRouter(prefix="/models", tags=["models"])

ModelsAdmin = Annotated[Caller, Depends(require(Permission.MODELS_ADMIN))]
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="the model's name")]
VersionPath = Annotated[str, Path(pattern=NAME_PATTERN, description="the model's version")]


@router.post(
    "",
    response_model=ModelOut,
    status_code=201,
    responses={
        **AUTH_RESPONSES,
        200: {"model": ModelOut, "description": "the same bytes were uploaded before"},
        400: {"model": ErrorDetail, "description": "not a bundle the hub's keys verify"},
        409: {"model": ErrorDetail, "description": "this name and version exist, other bytes"},
        413: {"model": ErrorDetail, "description": "larger than model_max_bytes"},
    },
)
async def upload(
    request: Request,
    response: Response,
    caller: ModelsAdmin,
    engine: EngineDep,
    settings: SettingsDep,
) -> ModelOut:
    """Upload a signed model bundle ``.tar`` (HQ admins). Verified like an edge verifies it
    before anything is kept; a name and version are immutable."""
    trusted = load_trusted_or_400(settings.trusted_keys_dir)
    staged = StagedUpload(settings.models_dir, settings.model_max_bytes)
    try:
        try:
            async for chunk in request.stream():
                staged.write(chunk)
        except TooLarge as exc:
            raise HTTPException(413, str(exc)) from None
        sha256 = staged.close()

        def write() -> tuple[ModelOut, bool]:
            with engine.begin() as conn:
                return register_bundle(
                    conn, settings.models_dir, staged.path, sha256, staged.size, trusted,
                    uploaded_by=caller.name, now=time.time(),
                )  # fmt: skip

        try:
            saved, created = await run_in_threadpool(write)
        except BundleRefused as exc:
            log.info("model upload by %s refused: %s", caller.name, exc)
            raise HTTPException(400, str(exc)) from None
        except VersionConflict as exc:
            raise HTTPException(409, str(exc)) from None
    finally:
        staged.discard()
    if not created:
        response.status_code = 200
    return saved


def load_trusted_or_400(folder: FsPath | None) -> TrustedKeys:
    """The hub's trusted keys; 400 naming the setting when there are none."""
    try:
        return load_trusted(folder)
    except BundleRefused as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("", response_model=ModelList, responses=AUTH_RESPONSES)
async def models(caller: ModelsAdmin, engine: EngineDep, name: str | None = None) -> ModelList:
    """Every bundle in the registry (or every version of ``name``): manifest and metrics."""

    def read() -> ModelList:
        with engine.connect() as conn:
            return list_models(conn, name)

    return await run_in_threadpool(read)


@router.get(
    "/{name}/{version}",
    response_model=ModelOut,
    responses={**AUTH_RESPONSES, 404: {"model": ErrorDetail, "description": "no such model"}},
)
async def model(
    name: NamePath, version: VersionPath, caller: ModelsAdmin, engine: EngineDep
) -> ModelOut:
    """One bundle's manifest and metrics."""
    found = await run_in_threadpool(_get, engine, name, version)
    if found is None:
        raise HTTPException(404, f"no model {name} version {version}")
    return found


def _get(engine: Engine, name: str, version: str) -> ModelOut | None:
    with engine.connect() as conn:
        return get_model(conn, name, version)


def _who(engine: Engine, secret: str) -> str | None:
    """Who holds ``secret``: ``device:ID`` for an enrolled device, ``key:NAME`` for an API
    key allowed to administer models; None otherwise."""
    with engine.connect() as conn:
        if secret.startswith(DEVICE_SECRET_PREFIX):
            device = device_for_secret(conn, secret)
            return None if device is None else f"device:{device.device_id}"
        caller = caller_for_key(conn, secret)
        if caller is None or not caller.may(Permission.MODELS_ADMIN):
            return None
        return f"key:{caller.name}"


async def downloader(
    engine: EngineDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> str:
    """A device (its secret) or an HQ admin (API key); 401 otherwise."""
    if credentials is None:
        raise HTTPException(
            401, "a device secret or an API key is required", {"WWW-Authenticate": "Bearer"}
        )
    who = await run_in_threadpool(_who, engine, credentials.credentials)
    if who is None:
        raise HTTPException(
            401, "unknown, revoked or unauthorised credential", {"WWW-Authenticate": "Bearer"}
        )
    return who


@router.get(
    "/{name}/{version}/bundle",
    response_class=FileResponse,
    responses={
        200: {"content": {ARCHIVE_MEDIA_TYPE: {}}, "description": "the bundle .tar"},
        206: {"description": "the requested byte range (Range: bytes=N-)"},
        401: {"model": ErrorDetail, "description": "no valid device secret or admin key"},
        404: {"model": ErrorDetail, "description": "no such model"},
    },
)
async def download(
    name: NamePath,
    version: VersionPath,
    who: Annotated[str, Depends(downloader)],
    engine: EngineDep,
    settings: SettingsDep,
) -> FileResponse:
    """The bundle ``.tar`` (``ETag`` = its sha256); ``Range: bytes=N-`` resumes a download."""
    found = await run_in_threadpool(_get, engine, name, version)
    if found is None:
        raise HTTPException(404, f"no model {name} version {version}")
    path = bundle_file(settings.models_dir, found.sha256)
    if not path.is_file():
        log.error("model %s %s: bundle file %s is missing", name, version, path)
        raise HTTPException(404, f"model {name} version {version}: bundle file missing")
    log.info("model %s %s downloaded by %s", name, version, who)
    return FileResponse(
        path,
        media_type=ARCHIVE_MEDIA_TYPE,
        filename=f"{name}-{version}.tar",
        headers={"ETag": f'"{found.sha256}"', "X-Bundle-Sha256": found.sha256},
    )
