"""Domain errors of orbis.

Library code raises these and never imports HTTP; ``tileserver.errors`` maps each class to a status
code (after TiTiler's ``errors.py``), and the CLI prints ``str(exc)`` as one line. Every message
names the bad value, so a user can fix the request without reading a traceback.
"""

from __future__ import annotations


class OrbisError(Exception):
    """Base class of every error orbis raises on purpose."""


class InvalidTile(OrbisError):
    """A tile address that does not exist (negative, non-integer, y out of range, bad format)."""


class ZoomOutOfRange(InvalidTile):
    """A zoom level outside what the world allows."""


class UnknownWorld(OrbisError):
    """No world config of that name."""


class UnknownLayer(OrbisError):
    """A geography layer that the world does not have; the message lists those it has."""


class WorldConfigError(OrbisError):
    """A world TOML that cannot be used; names the file, the key and the problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


class ModelLoadError(OrbisError):
    """A model path or checkpoint that cannot be loaded."""


class ImageInputError(OrbisError):
    """A user image (``orbis upscale``) that cannot be read or used."""


class UpstreamError(OrbisError):
    """An upstream tile server (an ``xyz`` base) that failed or timed out: a 502, never cached.

    ``status`` is the upstream's HTTP status, or None when it could not be reached.
    """

    def __init__(self, url: str, status: int | None, problem: str) -> None:
        self.url, self.status, self.problem = url, status, problem
        got = f"status {status}" if status is not None else "no answer"
        super().__init__(f"upstream {url}: {got}: {problem}")


class InvalidRegion(OrbisError):
    """A bounding box, zoom range or resolution that cannot be used (``region``, ``export``)."""


class ExportError(OrbisError):
    """An export that cannot be written: unknown output type, or too large without ``--force``."""


class BeyondTrainingWarning(UserWarning):
    """A tile finer than the model's trained range: allowed, but the detail is extrapolated."""


class Cancelled(Exception):  # noqa: N818 - a signal, not a user error: not an OrbisError
    """Generation stopped because no one waits for it any more (a client went away).

    Raised between windows, never inside one, so everything finished so far stays cached and
    deterministic; the next request for the same tile picks up where this one stopped.
    """
