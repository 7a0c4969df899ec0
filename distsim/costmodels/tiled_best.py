"""``tiled_best``: square-tile blocking, the best of three resident operands per multiply.

The optimistic bound of a cache-blocked matrix multiply, what a tuned library
approaches: for each multiply the cheapest of three blockings is taken.  It
is not the paper's model (that is ``cache_aware``); it shows how much of the
paper's cache effect better tiling could recover.
"""

from __future__ import annotations

import math
from functools import lru_cache

from . import COST_MODELS
from .base import TiledGemmModel

#: Fraction of the cache a resident tile may use (1.0: all of it, the optimistic choice; not fitted).
CACHE_TILE_FRACTION = 1.0


def tiled_gemm_bytes(g, cache_bytes: float) -> float:
    """Off-chip bytes of ``C[m,n] = A[m,k] B[k,n]`` with the best square-tile blocking.

    One operand's tile stays in the cache while the other two stream past it.
    The three choices of resident operand are costed with square tiles of
    ``T x T`` elements, ``T^2 s <= fraction x cache`` (clipped to the matrix
    dimensions, the freed room going to the other tile dimension), and the
    cheapest is taken:

    - C resident (tile ``Tm x Tn``): A read ``ceil(n/Tn)`` times, B ``ceil(m/Tm)`` times, C written once;
    - B resident (``Tk x Tn``): B read once, A ``ceil(n/Tn)`` times, C written ``ceil(k/Tk)`` times
      and read back ``ceil(k/Tk) - 1`` times;
    - A resident (``Tm x Tk``): symmetric to B.

    Parameters
    ----------
    g : Gemm
        Shape (``m, n, k``, ``batch``, ``element_bytes``).
    cache_bytes : float
        On-chip cache capacity (B).

    Returns
    -------
    float
        Bytes moved to and from off-chip memory, never less than the
        algorithmic bytes (each operand once); ``batch`` products cost
        ``batch`` times one.
    """
    return _tiled_gemm_bytes(g.m, g.n, g.k, g.batch, g.element_bytes, float(cache_bytes))


@lru_cache(maxsize=4096)
def _tiled_gemm_bytes(m: int, n: int, k: int, batch: int, s: int, cache_bytes: float) -> float:
    a, b, c = m * k, k * n, m * n
    algorithmic = (a + b + c) * s
    tile_elems = CACHE_TILE_FRACTION * cache_bytes / s
    if tile_elems < 1:
        return batch * (2 * m * n * k + c) * s  # no cache: every operand access goes off chip

    def tile(d1: int, d2: int) -> tuple[int, int]:
        t = max(1, int(math.isqrt(int(tile_elems))))
        t1, t2 = min(d1, t), min(d2, t)
        if t1 < t:
            t2 = min(d2, max(1, int(tile_elems // t1)))
        elif t2 < t:
            t1 = min(d1, max(1, int(tile_elems // t2)))
        return t1, t2

    tm, tn = tile(m, n)
    c_resident = a * math.ceil(n / tn) + b * math.ceil(m / tm) + c
    tk, tn = tile(k, n)
    passes = math.ceil(k / tk)
    b_resident = b + a * math.ceil(n / tn) + c * (2 * passes - 1)
    tm, tk = tile(m, k)
    passes = math.ceil(k / tk)
    a_resident = a + b * math.ceil(m / tm) + c * (2 * passes - 1)
    return batch * max(algorithmic, s * min(c_resident, b_resident, a_resident))


class TiledBest(TiledGemmModel):
    name = "tiled_best"
    description = "per-op + re-streaming of matmuls, best square-tile blocking (optimistic bound)"
    rank = 2

    def gemm_bytes(self, gemm, cache_bytes: float) -> float:
        return tiled_gemm_bytes(gemm, cache_bytes)


COST_MODELS.register("tiled_best")(TiledBest())
