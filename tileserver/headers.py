"""Conditional requests: strong ETags and If-None-Match, after Starlette's ``staticfiles.py``."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import Response

#: headers a 304 keeps (RFC 9110 §15.4.5), as Starlette's NotModifiedResponse does
NOT_MODIFIED_KEEP = ("cache-control", "content-location", "date", "etag", "expires", "vary")


def etag_for(cache_key: str) -> str:
    """Return a strong ETag: tile bytes are a pure function of the key (content-hash prefixed)."""
    return f'"{cache_key.replace("/", "-")}"'


def is_not_modified(request_headers: Headers, etag: str) -> bool:
    """Return True when If-None-Match lists this ETag (weak prefixes ignored) or ``*``."""
    inm = request_headers.get("if-none-match")
    if not inm:
        return False
    tags = [t.strip() for t in inm.split(",")]
    return any(t == "*" or t.removeprefix("W/") == etag for t in tags)


def not_modified(headers: dict[str, str]) -> Response:
    """Return a 304 with only the headers a 304 may carry."""
    kept = {k: v for k, v in headers.items() if k.lower() in NOT_MODIFIED_KEEP}
    return Response(status_code=304, headers=kept)


def tile_headers(
    cache_key: str, version: str, mpp: float, v_param: str | None, max_age: int
) -> dict[str, str]:
    """Return the headers every tile answer carries (imagery and layers alike): strong ETag,
    Cache-Control (a year and ``immutable`` when ``?v=`` names the world's version), CORS, the
    ground resolution and the world's version."""
    immutable = v_param == version
    age = 31536000 if immutable else max_age
    return {
        "ETag": etag_for(cache_key),
        "Cache-Control": f"public, max-age={age}" + (", immutable" if immutable else ""),
        "Access-Control-Allow-Origin": "*",
        "X-Orbis-Resolution": f"{mpp:.6g}",
        "X-Orbis-World-Version": version,
    }
