"""Character LM (RHN) graph against Catamount's published totals.

Source of the goldens: ``catamount/tests/full/tf_language_models.py`` in the
public baidu-research/catamount repository, charlm block: h = 2004, v = 98,
sequence length 150, subbatch 128; params 88,785,316 (22h^2 + 2hv + 20h + v + 2),
FLOPs 10,228,050,930,711, bytes 445,302,269,068, total footprint 156,135,667,260.
"""

import pytest
from hypothesis import given, settings, strategies as st

from distsim.errors import ConfigError
from distsim.graph import Phase
from distsim.workload import build_workload

CATAMOUNT = dict(params=88_785_316, flops=10_228_050_930_711, nbytes=445_302_269_068,
                 footprint=156_135_667_260)


@pytest.fixture(scope="module")
def base():
    return build_workload("charlm", hidden=2004, vocab=98, seq_len=150, batch=128)


def catamount_params(h, v):
    return 22 * h * h + 2 * h * v + 20 * h + v + 2


def test_params_exact(base):
    assert base.params == catamount_params(2004, 98) == CATAMOUNT["params"]


def test_flops_within_5pct_of_catamount(base):
    assert base.flops == pytest.approx(CATAMOUNT["flops"], rel=0.05)


def test_bytes_within_5pct_of_catamount(base):
    assert base.nbytes == pytest.approx(CATAMOUNT["nbytes"], rel=0.05)


def test_total_footprint_within_10pct_of_catamount(base):
    assert base.footprint_total_bytes == pytest.approx(CATAMOUNT["footprint"], rel=0.10)


def test_matrix_flops_closed_form(base):
    """Forward matmuls 2 * q * b * (22h^2 + hv); training = 3x (matrix backprop is 2x forward)."""
    h, v, q, b = 2004, 98, 150, 128
    matmul = sum(op.flops for op in base.ops if op.gemm is not None)
    assert matmul == 3 * 2 * q * b * (22 * h * h + h * v)


def test_gradient_accumulated_once_per_step(base):
    adds = [op for op in base.ops if op.name.startswith("rhn0/h_5/Matrix/grad_acc/") and op.inplace]
    assert len(adds) == 150


def test_layers_and_phases(base):
    assert {"embedding", "rhn0", "output"} <= set(base.layers())
    assert {op.phase for op in base.ops} == {Phase.FORWARD, Phase.BACKWARD, Phase.UPDATE}


@pytest.mark.parametrize("h", [16, 48])
def test_params_formula(h):
    assert build_workload("charlm", hidden=h, vocab=7, seq_len=3, batch=2).params == catamount_params(h, 7)


def test_flops_and_bytes_affine_in_batch():
    g1, g2, g4 = (build_workload("charlm", hidden=32, seq_len=6, batch=b) for b in (1, 2, 4))
    assert g4.flops - g2.flops == 2 * (g2.flops - g1.flops)
    assert g4.nbytes - g2.nbytes == 2 * (g2.nbytes - g1.nbytes)


@settings(max_examples=15, deadline=None)
@given(h=st.integers(2, 40), q=st.integers(1, 5), b=st.integers(1, 4), depth=st.integers(1, 4))
def test_min_footprint_between_persistent_and_total(h, q, b, depth):
    g = build_workload("charlm", hidden=h, seq_len=q, batch=b, depth=depth, vocab=11)
    assert g.persistent_bytes <= g.footprint_min_bytes() <= g.footprint_total_bytes
    assert g.params == 2 * (2 * h) * h + 2 * (depth - 1) * h * h + 2 * depth * h + 2 * h * 11 + 11 + 2


@pytest.mark.parametrize("bad", [dict(hidden=0), dict(seq_len=-1), dict(batch=1.5), dict(colour=3),
                                 dict(optimizer="lion"), dict(depth=0)])
def test_bad_options_raise_config_error(bad):
    with pytest.raises(ConfigError) as err:
        build_workload("charlm", **bad)
    assert "\n" not in str(err.value)
