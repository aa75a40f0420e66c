"""Output formats: re-exported from :mod:`generator.formats` (the seeder and exporter encode the
server's bytes, and the generator never imports the server)."""

from __future__ import annotations

from generator.formats import DEFAULT_FORMAT, ImageFormat

__all__ = ["DEFAULT_FORMAT", "ImageFormat"]
