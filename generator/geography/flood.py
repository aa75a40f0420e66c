"""Priority-flood depression filling with D8 directions, compiled: what the streams route on.

``pyflwdir.dem.fill_depressions`` (Wang & Liu 2006) is the reference: a min-heap of
``(elevation, boundary flag, row, col)`` tuples, popped in ascending order, each neighbour of a
popped cell raised to it where lower (a depression) and pointed at it. Its heap holds Python-style
tuples, which under numba costs most of the routing of a stream cell (≈ 0.12 s of a 768² raster's
0.16 s). Here the same algorithm keeps each entry as one ``uint64`` whose integer order is the
tuples' order — the float32 elevation mapped to an order-preserving 32-bit integer, then the flag,
row and column — so the pop sequence, and therefore every filled value and direction, is the
reference's bit for bit (tested against pyflwdir), at about half the cost.

Only the options the streams use are here: outlets given as a mask (``outlets="idxs_pit"``), 8
neighbours, every depression filled (``max_depth`` < 0), no nodata.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: pyflwdir's D8 codes by (row offset + 1, column offset + 1) of the neighbour a pixel drains
#: to (the streams' steepest descent and path tables read it too).
D8_CODES = np.array([[32, 64, 128], [16, 0, 1], [8, 4, 2]], np.uint8)
#: The same by the offset of the pixel that drains here (``pyflwdir.core_d8._us``): the flood
#: points each cell it reaches at the cell it was reached from.
_UPSTREAM = D8_CODES[::-1, ::-1].copy()


def fill_depressions(
    elev: np.ndarray, outlets: np.ndarray, inert: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (filled elevation float32, D8 code uint8) of ``elev`` with ``outlets`` (bool, same
    shape) as the pits every cell drains to — ``pyflwdir.dem.fill_depressions(elev,
    outlets="idxs_pit", idxs_pit=…)`` exactly.

    ``inert`` (optional, bool): outlets whose 8 neighbours are all outlets (the inside of a
    lake), left out of the flood — their filled value is their elevation and their code 0. An
    outlet is never raised (a lower outlet is always popped first), so this changes no filled
    value anywhere and no code outside ``inert`` and its outlet neighbours, whose codes only
    say which outlet reached them first; the streams read neither.
    """
    e = np.ascontiguousarray(elev, np.float32)
    if e.ndim != 2 or e.shape != outlets.shape:
        raise ValueError(f"elevation {e.shape} and outlets {outlets.shape} must be one 2-D shape")
    if e.shape[0] >= 1 << 15 or e.shape[1] >= 1 << 16:
        raise ValueError(f"raster {e.shape} too large for the packed heap keys")
    skip = np.zeros(e.shape, np.bool_) if inert is None else np.asarray(inert, np.bool_)
    if skip.shape != e.shape or (skip & ~outlets).any():
        raise ValueError("inert cells must be outlets of the same shape")
    return _fill(e, np.ascontiguousarray(outlets, np.bool_), np.ascontiguousarray(skip), _UPSTREAM)


@njit(cache=True)
def _key(z, flag, r, c, fbuf, ubuf):  # pragma: no cover (compiled)
    # float32 → order-preserving uint32 (−0.0 taken as +0.0, as tuple comparison does);
    # ubuf is a uint32 view of the one-element float32 buffer fbuf
    fbuf[0] = z + np.float32(0.0)
    b = np.int64(ubuf[0])
    if b & 0x80000000:
        b = ~b & 0xFFFFFFFF
    else:
        b = b | 0x80000000
    return np.uint64((b << 32) | (np.int64(flag) << 31) | (np.int64(r) << 16) | np.int64(c))


@njit(cache=True)
def _push(heap, n, key):  # pragma: no cover (compiled)
    i = n
    heap[i] = key
    while i > 0:
        p = (i - 1) >> 1
        if heap[p] <= key:
            break
        heap[i] = heap[p]
        i = p
    heap[i] = key
    return n + 1


@njit(cache=True)
def _pop(heap, n):  # pragma: no cover (compiled)
    top = heap[0]
    n -= 1
    last = heap[n]
    i = 0
    while True:
        a = 2 * i + 1
        if a >= n:
            break
        b = a + 1
        if b < n and heap[b] < heap[a]:
            a = b
        if heap[a] >= last:
            break
        heap[i] = heap[a]
        i = a
    heap[i] = last
    return top, n


@njit(cache=True, nogil=True)
def _fill(elevtn, queued, inert, codes):  # pragma: no cover (compiled)
    nrow, ncol = elevtn.shape
    delv = np.zeros_like(elevtn)
    zq = np.empty_like(elevtn)  # the elevation each cell was queued with
    done = inert.copy()
    d8 = np.zeros((nrow, ncol), np.uint8)
    queued = queued.copy()
    heap = np.empty(nrow * ncol, np.uint64)  # a cell is queued at most once
    fbuf = np.zeros(1, np.float32)
    ubuf = fbuf.view(np.uint32)
    n = 0
    for r in range(nrow):
        for c in range(ncol):
            if queued[r, c] and not inert[r, c]:
                zq[r, c] = elevtn[r, c]
                n = _push(heap, n, _key(elevtn[r, c], 1, r, c, fbuf, ubuf))
    while n > 0:
        key, n = _pop(heap, n)
        r0 = np.int64((key >> np.uint64(16)) & np.uint64(0x7FFF))
        c0 = np.int64(key & np.uint64(0xFFFF))
        z0 = zq[r0, c0]
        for dr in range(-1, 2):
            for dc in range(-1, 2):
                r = r0 + dr
                c = c0 + dc
                if r < 0 or r == nrow or c < 0 or c == ncol or done[r, c]:
                    continue
                z1 = elevtn[r, c]
                dz = z0 - z1
                if dz > 0:
                    delv[r, c] = dz
                    z1 += dz
                if not queued[r, c]:
                    zq[r, c] = z1
                    n = _push(heap, n, _key(z1, 0, r, c, fbuf, ubuf))
                    queued[r, c] = True
                done[r, c] = True
                d8[r, c] = codes[dr + 1, dc + 1]
    return elevtn + delv, d8
