"""``cache_aware``: the paper's model, tiled matrix multiplies with Coleman & McKinley tile selection.

Hestness et al. (PPoPP 2019, §6.1) model "the extra memory accesses" of large
matrix multiplies "assuming a common, tiled matrix multiply implementation"
and cite Coleman & McKinley, *Tile size selection using cache organization and
data layout* (PLDI 1995; TSS).  This module is our implementation of that
description (no code was taken from elsewhere).

Tile size selection (TSS)
    A direct-mapped cache of ``C`` elements holds a tile of a row-major array
    whose rows are ``N`` elements apart (the leading dimension).  Row ``i`` of
    the tile starts at cache position ``i N mod C``; a tile of ``w`` rows of
    ``h`` contiguous elements has no *self-interference* when no two of its
    row segments overlap in the cache.  TSS's candidate segment lengths ``h``
    are the remainders of the Euclidean algorithm on ``C`` and ``N``
    (``N`` itself when ``N <= C``, then ``C mod N``, ``N mod (C mod N)``, ...):
    each is the largest length at which one more row fits.  For each
    candidate we count the rows that fit exactly (the first ``d`` with
    ``min(d N mod C, C - d N mod C) < h`` stops the tile at ``d`` rows) and
    take the candidate of largest area within the array (ties: the longer
    segment).  Cache lines, associativity and cross-interference with the
    streamed operands are not modelled: the tile may use the whole cache,
    so the model stays optimistic, as the paper says its model is.

The loop nest (resident operand A)
    ``C[m,n] = A[m,k] B[k,n]``, all row-major (TensorFlow's layout).  The TSS
    tile of A is ``Tm x Tk`` (``N = k``)::

        for each row panel i0 (Tm rows of A and C):
            for each k-chunk k0 (Tk columns of A):   # A tile loaded once, kept in cache
                for j in 0..n:                       # B[k0:k0+Tk, j] streams past it
                    C[i0:i0+Tm, j] += A_tile @ B[k0:k0+Tk, j]

    Off-chip traffic: A once; B once per row panel (``ceil(m/Tm)`` times);
    the C panel written once per k-chunk and read back for every chunk but
    the first (``2 ceil(k/Tk) - 1`` times).  With one row panel and one
    k-chunk this is the algorithmic traffic.  The first operand is the tiled
    array of Coleman & McKinley's matrix multiply (``Z = X Y`` with a tile of
    ``X``); for the case study's recurrent GEMMs ([128 x 39,936] x
    [39,936 x 79,872]) it is the activations' panel, so the weights are the
    input "re-streamed" (§6.2.3).  docs/reproduction.md records what the other
    choices (B or C resident, column-major) and a decimal "6 MB" predict.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from . import COST_MODELS
from .base import TiledGemmModel

#: Operand whose TSS tile stays in the cache, and the layout the leading dimension follows.
RESIDENT_OPERANDS = ("A", "B", "C")
LAYOUTS = ("row", "col")
_CHUNK_ROWS = 1 << 16


def _rows_without_self_interference(height: int, leading_dim: int, cache_elems: int, max_rows: int) -> int:
    """Consecutive rows, ``leading_dim`` apart, whose first ``height`` elements do not overlap in the cache."""
    if max_rows <= 1:
        return max(0, max_rows)
    cap = min(max_rows, cache_elems // height + 1)  # more rows than that cannot fit
    stride = leading_dim % cache_elems
    for lo in range(1, cap, _CHUNK_ROWS):  # row d clashes with row 0 (hence j with j + d) when close to it
        d = np.arange(lo, min(cap, lo + _CHUNK_ROWS), dtype=np.int64)
        pos = (d * stride) % cache_elems
        clash = np.flatnonzero(np.minimum(pos, cache_elems - pos) < height)
        if clash.size:
            return int(d[clash[0]])
    return cap


@lru_cache(maxsize=4096)
def tss_candidates(cache_elems: int, leading_dim: int, rows: int) -> tuple[tuple[int, int], ...]:
    """Tiles ``(tile_rows, tile_cols)`` of a row-major array free of self-interference (TSS).

    Parameters
    ----------
    cache_elems : int
        Cache capacity in elements (direct-mapped), at least 1.
    leading_dim : int
        Elements between the starts of consecutive rows (row-major: the number of columns).
    rows : int
        Rows of the array (tiles never have more).

    Returns
    -------
    tuple of (int, int)
        One candidate per segment length of the Euclidean sequence of
        ``cache_elems`` and ``leading_dim``, longest segment first.

    Examples
    --------
    >>> tss_candidates(1024, 200, 1000)   # 1024 = 5 x 200 + 24; 200 = 8 x 24 + 8; 24 = 3 x 8
    ((5, 200), (41, 24), (128, 8))
    """
    if cache_elems < 1 or leading_dim < 1 or rows < 1:
        raise ConfigError(f"tss_candidates needs positive sizes, got cache {cache_elems}, "
                          f"leading dimension {leading_dim}, rows {rows}")
    heights = [min(leading_dim, cache_elems)]
    a, b = cache_elems, leading_dim % cache_elems
    while b:
        if b < heights[-1]:
            heights.append(b)
        a, b = b, a % b
    return tuple((_rows_without_self_interference(h, leading_dim, cache_elems, rows), h) for h in heights)


def tss_tile(cache_elems: int, rows: int, cols: int, leading_dim: int | None = None) -> tuple[int, int]:
    """The TSS tile ``(tile_rows, tile_cols)`` of a row-major ``[rows, cols]`` array: the largest-area candidate.

    Ties go to the longer contiguous segment.  ``leading_dim`` defaults to ``cols``.

    >>> tss_tile(1572864, 128, 39936)   # 6 MiB of fp32; [128, 39936]: 39 whole rows
    (39, 39936)
    """
    cands = tss_candidates(max(1, int(cache_elems)), leading_dim or cols, rows)
    return max(cands, key=lambda c: (c[0] * min(c[1], cols), c[1]))


def tss_gemm_bytes(g, cache_bytes: float, resident: str = "A", layout: str = "row") -> float:
    """Off-chip bytes of ``C[m,n] = A[m,k] B[k,n]`` with a TSS tile of one operand kept in the cache.

    Parameters
    ----------
    g : Gemm
        Shape (``m, n, k``, ``batch``, ``element_bytes``).
    cache_bytes : float
        On-chip cache capacity (B); fewer bytes than one element act as one element (a register).
    resident : {"A", "B", "C"}
        The operand whose tile stays in the cache (the paper's model: ``"A"``).
    layout : {"row", "col"}
        Storage order that sets the operands' leading dimensions (TensorFlow: ``"row"``).

    Returns
    -------
    float
        Bytes; ``batch`` products cost ``batch`` times one.  With A (B)
        resident: A (B) once, the other input once per tile panel, C written
        per reduction chunk and read back for all but the first.  With C
        resident: C once, A and B once per panel of C.
    """
    if resident not in RESIDENT_OPERANDS:
        raise ConfigError(f"resident operand {resident!r}; accepted: {', '.join(RESIDENT_OPERANDS)}")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout {layout!r}; accepted: {', '.join(LAYOUTS)}")
    return _tss_gemm_bytes(g.m, g.n, g.k, g.batch, g.element_bytes, float(cache_bytes), resident, layout)


def _tile_of(cache_elems: int, outer: int, inner: int, layout: str) -> tuple[int, int]:
    """TSS tile of an ``[outer, inner]`` operand as (outer extent, inner extent), whatever the layout."""
    if layout == "row":
        return tss_tile(cache_elems, outer, inner)
    t_inner, t_outer = tss_tile(cache_elems, inner, outer)  # column-major: stored as [inner, outer]
    return t_outer, t_inner


@lru_cache(maxsize=4096)
def _tss_gemm_bytes(m: int, n: int, k: int, batch: int, s: int, cache_bytes: float, resident: str,
                    layout: str) -> float:
    cache_elems = max(1, int(cache_bytes // s))
    a, b, c = m * k, k * n, m * n
    if resident == "A":
        tm, tk = _tile_of(cache_elems, m, k, layout)
        moved = a + b * math.ceil(m / tm) + c * (2 * math.ceil(k / tk) - 1)
    elif resident == "B":
        tk, tn = _tile_of(cache_elems, k, n, layout)
        moved = b + a * math.ceil(n / tn) + c * (2 * math.ceil(k / tk) - 1)
    else:
        tm, tn = _tile_of(cache_elems, m, n, layout)
        moved = c + a * math.ceil(n / tn) + b * math.ceil(m / tm)
    return float(batch * s * moved)


class CacheAware(TiledGemmModel):
    """Per-op roofline plus TSS-tiled matmul traffic (see the module docstring).

    ``resident`` and ``layout`` select the alternatives docs/reproduction.md
    compares; the registered ``cache_aware`` model is ``CacheAware()``
    (first operand resident, row-major).
    """

    name = "cache_aware"
    description = "per-op + re-streaming of TSS-tiled matmuls (Coleman & McKinley 1995), the paper's model"
    rank = 3

    def __init__(self, resident: str = "A", layout: str = "row"):
        if resident not in RESIDENT_OPERANDS:
            raise ConfigError(f"resident operand {resident!r}; accepted: {', '.join(RESIDENT_OPERANDS)}")
        if layout not in LAYOUTS:
            raise ConfigError(f"layout {layout!r}; accepted: {', '.join(LAYOUTS)}")
        self.resident, self.layout = resident, layout

    def gemm_bytes(self, gemm, cache_bytes: float) -> float:
        return tss_gemm_bytes(gemm, cache_bytes, self.resident, self.layout)


COST_MODELS.register("cache_aware")(CacheAware())
