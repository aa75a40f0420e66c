"""Exception → HTTP status, in one table (TiTiler's ``errors.py`` habit, without catch-alls).

Known domain errors become 4xx with ``{"detail": message}``; anything else is a real bug and stays
a logged 500.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from generator.errors import (
    ImageInputError,
    InvalidTile,
    ModelLoadError,
    UnknownLayer,
    UnknownWorld,
    UpstreamError,
    WorldConfigError,
    ZoomOutOfRange,
)

log = logging.getLogger("orbis.server")


class Overloaded(Exception):
    """The generation queue is full: 503 with Retry-After."""

    def __init__(
        self, retry_after: int = 5, message: str = "tile generation queue is full, retry later"
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message)


STATUS_CODES: dict[type[Exception], int] = {
    ZoomOutOfRange: 404,
    InvalidTile: 400,
    UnknownWorld: 404,
    UnknownLayer: 404,
    ImageInputError: 400,
    WorldConfigError: 500,
    ModelLoadError: 500,
    UpstreamError: 502,  # an xyz base's upstream failed: not our bug, and never cached
}


def _status_for(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return STATUS_CODES[cls]
    return 500


async def orbis_error(request: Request, exc: Exception) -> Response:
    """Render a domain error as JSON with its mapped status."""
    status = _status_for(exc)
    if status >= 500:
        log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def overloaded(request: Request, exc: Exception) -> Response:
    """503 + Retry-After."""
    assert isinstance(exc, Overloaded)
    return JSONResponse(
        {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)}
    )


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own HTTP errors (404 for unknown routes, 405) as JSON."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such endpoint: {request.url.path[:200]}"
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


def exception_handlers() -> dict:
    """Return the handler map for ``Starlette(exception_handlers=...)``."""
    from generator.errors import OrbisError

    return {OrbisError: orbis_error, Overloaded: overloaded, HTTPException: http_error}
