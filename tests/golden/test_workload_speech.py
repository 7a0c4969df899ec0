"""Speech attention model against Catamount's speech-attention graph and Table 2.

Sources: ``catamount/tests/full/tf_speech_attention.py`` (public
baidu-research/catamount): encoder hidden 1024, attention/decoder LSTMs 512,
attention dim 128, conv width 50 with 4 filters, 40 features, 31 characters,
96 encoder frames (24 decoder steps), subbatch 32: params 71,084,729, FLOPs
568,344,682,852, bytes 86,766,445,577, total footprint 30,361,128,578.
Hestness et al. PPoPP 2019 Table 2: 775 b FLOPs per parameter (about 300 encoder steps).
"""

import pytest

from distsim.errors import ConfigError
from distsim.workload import build_workload

CATAMOUNT = dict(params=71_084_729, flops=568_344_682_852, nbytes=86_766_445_577, footprint=30_361_128_578)


@pytest.fixture(scope="module")
def base():
    return build_workload("speech", hidden=1024, seq_len=96, batch=32)


def test_params_exact(base):
    assert base.params == CATAMOUNT["params"]


def test_flops_within_5pct_of_catamount(base):
    assert base.flops == pytest.approx(CATAMOUNT["flops"], rel=0.05)


def test_bytes_within_5pct_of_catamount(base):
    assert base.nbytes == pytest.approx(CATAMOUNT["nbytes"], rel=0.05)


def test_total_footprint_within_10pct_of_catamount(base):
    assert base.footprint_total_bytes == pytest.approx(CATAMOUNT["footprint"], rel=0.10)


def test_pyramid_steps(base):
    """Encoder layers run 96, 48, 24 steps; the decoder 24."""
    assert base.dims["decoder_steps"] == 24
    for layer, steps in (("encoder0", 96), ("encoder1", 48), ("encoder2", 24)):
        kernels = [op for op in base.ops if op.name.startswith(f"{layer}/fw/t") and op.name.endswith("/matmul")]
        assert len(kernels) == steps


def test_flops_per_param_near_table2():
    """With 300 frames the FLOPs per parameter and sample (the slope in the batch) approach
    Table 2's 775 b."""
    g1, g2 = (build_workload("speech", hidden=2048, seq_len=300, batch=b) for b in (1, 2))
    assert (g2.flops - g1.flops) / g1.params == pytest.approx(775, rel=0.05)


def test_flops_linear_in_batch():
    g1, g2, g3 = (build_workload("speech", hidden=16, seq_len=8, batch=b, attention=8, conv_width=3) for b in (1, 2, 3))
    assert g3.flops - g2.flops == g2.flops - g1.flops  # affine: weight updates do not scale


def test_min_footprint_between_persistent_and_total():
    g = build_workload("speech", hidden=16, seq_len=8, batch=2, attention=8, conv_width=3)
    assert g.persistent_bytes <= g.footprint_min_bytes() <= g.footprint_total_bytes


@pytest.mark.parametrize("bad", [dict(hidden=0), dict(seq_len=3), dict(layers=0), dict(features=-1), dict(depth=5)])
def test_bad_options_raise_config_error(bad):
    with pytest.raises(ConfigError):
        build_workload("speech", **bad)
