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
