"""NMT (bidirectional LSTM encoder, attention decoder) against Catamount's totals.

Source of the goldens: ``catamount/tests/full/tf_language_models.py`` in the
public baidu-research/catamount repository, nmt block: h = 1024, v = 36,548,
sequence length 19, subbatch 128; params 146,890,753 (33h^2 + 3hv + 12h + 1),
FLOPs 1,053,956,094,429, bytes 36,608,253,347, total footprint 14,372,109,366.
"""

import pytest

from distsim.errors import ConfigError
from distsim.workload import build_workload

CATAMOUNT = dict(params=146_890_753, flops=1_053_956_094_429, nbytes=36_608_253_347, footprint=14_372_109_366)


@pytest.fixture(scope="module")
def base():
    return build_workload("nmt", hidden=1024, vocab=36548, seq_len=19, batch=128)


def catamount_params(h, v):
    return 33 * h * h + 3 * h * v + 12 * h + 1


def test_params_exact(base):
    assert base.params == catamount_params(1024, 36548) == CATAMOUNT["params"]


def test_flops_within_5pct_of_catamount(base):
    assert base.flops == pytest.approx(CATAMOUNT["flops"], rel=0.05)


def test_bytes_within_5pct_of_catamount(base):
    assert base.nbytes == pytest.approx(CATAMOUNT["nbytes"], rel=0.05)


def test_total_footprint_within_10pct_of_catamount(base):
    assert base.footprint_total_bytes == pytest.approx(CATAMOUNT["footprint"], rel=0.10)


def test_weight_matrix_flops_closed_form(base):
    """Per token forward: encoder 2 x 2(2h)(4h), decoder 2(3h)(4h), attention 2(3h)h, output 2hv;
    memory layer 2(2h)h per source token; training = 3x."""
    h, v, q, b = 1024, 36548, 19, 128
    weight_mm = sum(op.flops for op in base.ops if op.gemm is not None and op.gemm.batch == 1)
    assert weight_mm == 3 * q * b * (2 * 2 * 2 * h * 4 * h + 2 * 3 * h * 4 * h + 2 * 3 * h * h + 2 * h * v + 2 * 2 * h * h)


def test_layers(base):
    assert {"embedding", "encoder0", "decoder", "attention", "output"} <= set(base.layers())


@pytest.mark.parametrize("h,v", [(8, 5), (24, 40)])
def test_params_formula(h, v):
    assert build_workload("nmt", hidden=h, vocab=v, seq_len=3, batch=2).params == catamount_params(h, v)


def test_flops_linear_in_batch():
    g1, g2, g4 = (build_workload("nmt", hidden=16, vocab=30, seq_len=4, batch=b) for b in (1, 2, 4))
    assert g4.flops - g2.flops == 2 * (g2.flops - g1.flops)  # affine: weight updates do not scale
    assert g4.nbytes - g2.nbytes == 2 * (g2.nbytes - g1.nbytes)


@pytest.mark.parametrize("q,b", [(1, 1), (3, 2), (6, 3)])
def test_min_footprint_between_persistent_and_total(q, b):
    g = build_workload("nmt", hidden=12, vocab=20, seq_len=q, batch=b)
    assert g.persistent_bytes <= g.footprint_min_bytes() <= g.footprint_total_bytes


@pytest.mark.parametrize("bad", [dict(hidden=0), dict(vocab=-3), dict(layers=2), dict(seq_len="19")])
def test_bad_options_raise_config_error(bad):
    with pytest.raises(ConfigError):
        build_workload("nmt", **bad)
