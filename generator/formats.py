"""Output formats: suffix, media type and encoder in one enum so they never drift.

In the generator (not the server) because ``orbis seed``, ``orbis export`` and ``orbis render``
encode tiles too and must produce the very bytes the server sends; ``tileserver.formats``
re-exports it.
"""

from __future__ import annotations

import io
from enum import StrEnum

import numpy as np
from PIL import Image

from .errors import InvalidTile


class ImageFormat(StrEnum):
    """Tile encodings orbis serves."""

    png = "png"
    jpg = "jpg"
    webp = "webp"

    @property
    def media_type(self) -> str:
        """Return the HTTP Content-Type."""
        return {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}[self.value]

    @classmethod
    def parse(cls, suffix: str) -> ImageFormat:
        """Return the format for a file suffix.

        Raises:
            InvalidTile: unknown suffix (the message lists the known ones).
        """
        s = suffix.lower()
        if s == "jpeg":
            s = "jpg"
        try:
            return cls(s)
        except ValueError:
            known = ", ".join(f.value for f in cls)
            raise InvalidTile(f"unknown tile format {suffix!r} (use one of: {known})") from None

    def encode_image(self, arr: np.ndarray) -> bytes:
        """Encode an RGB uint8 array; deterministic for a given Pillow version."""
        buf = io.BytesIO()
        im = Image.fromarray(arr, "RGB")
        if self is ImageFormat.png:
            im.save(buf, "PNG", compress_level=6)
        elif self is ImageFormat.jpg:
            im.save(buf, "JPEG", quality=90)
        else:
            im.save(buf, "WEBP", quality=90, method=4)
        return buf.getvalue()


#: the format a world's tiles are served in by default (the viewer's and TileJSON's ``.png``),
#: and what ``orbis seed`` encodes when no ``--formats`` is given
DEFAULT_FORMAT = ImageFormat.png
