"""One global, deterministic Gaussian noise field per (seed, zoom, channel count).

The field lives on the integer pixel grid of a zoom level and is cut into fixed 64×64 blocks; each
block is drawn from its own counter-based stream keyed by ``SeedSequence([seed, z, by, bx, c])``
(the Terrain Diffusion / infinite-tensor habit), so any crop costs O(crop), two overlapping crops
agree in the overlap, and the values never depend on who asked first or in which process. x is
taken modulo the grid width, so the field is continuous across the antimeridian. Rows beyond the
poles (negative, or past the bottom) exist too: windows with margins may read them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

BLOCK = 64
#: Offset added to block rows so SeedSequence (non-negative entropy only) can key rows above y=0.
_ROW_OFFSET = 1 << 40


@lru_cache(maxsize=512)
def _block(seed: int, z: int, by: int, bx: int, channels: int) -> np.ndarray:
    ss = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, z, by + _ROW_OFFSET, bx, channels])
    gen = np.random.Generator(np.random.Philox(ss))
    block = gen.standard_normal((channels, BLOCK, BLOCK), dtype=np.float32)
    block.setflags(write=False)
    return block


def clear_block_cache() -> None:
    """Drop cached blocks (after a whole-level crop that will not be read again)."""
    _block.cache_clear()


class NoiseField:
    """The noise field of one world seed; ``crop`` is the only operation."""

    def __init__(self, seed: int, tile_size: int = 256) -> None:
        self.seed = int(seed)
        self.tile_size = tile_size

    def width(self, z: int) -> int:
        """Return the grid width in pixels at zoom z (x wraps modulo this)."""
        return (1 << z) * self.tile_size

    def crop(self, z: int, y0: int, x0: int, h: int, w: int, channels: int = 3) -> np.ndarray:
        """Return the (channels, h, w) float32 crop whose top-left global pixel is (y0, x0)."""
        width = self.width(z)
        out = np.empty((channels, h, w), dtype=np.float32)
        by0, by1 = y0 // BLOCK, (y0 + h - 1) // BLOCK
        for by in range(by0, by1 + 1):
            ya, yb = max(y0, by * BLOCK), min(y0 + h, (by + 1) * BLOCK)
            x = x0
            while x < x0 + w:
                gx = x % width
                bx = gx // BLOCK
                # run to the end of this block, of the grid (wrap) or of the crop
                run = min((bx + 1) * BLOCK - gx, width - gx, x0 + w - x)
                blk = _block(self.seed, z, by, bx, channels)
                out[:, ya - y0 : yb - y0, x - x0 : x - x0 + run] = blk[
                    :, ya - by * BLOCK : yb - by * BLOCK, gx - bx * BLOCK : gx - bx * BLOCK + run
                ]
                x += run
        return out
