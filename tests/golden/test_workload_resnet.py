"""ResNet graphs against Catamount's TensorFlow ResNets and the published networks.

Sources: He et al. 2016 (architecture, Table 1); Catamount's
``catamount/tests/full/tf_image_resnet.py`` (public baidu-research/catamount;
224x224 images, subbatch 32): parameters 11,689,514 / 21,797,674 / 25,557,034 /
44,549,162 / 60,192,810 for depths 18 / 34 / 50 / 101 / 152 (the reference
implementations' counts, e.g. torchvision's 25,557,032 for ResNet-50, plus two
scalars), FLOPs 790,954,958,112 and bytes 32,896,462,028 for ResNet-50, FLOPs
2,222,688,328,992 and bytes 70,967,716,188 for ResNet-152; forward
multiply-adds with the stride on the 3x3 convolution (v1.5): ResNet-50 4.09 G
("about 4.1 G"), ResNet-152 11.5 G.
"""

import pytest

from distsim.errors import ConfigError
from distsim.graph import OpKind, Phase
from distsim.workload import build_workload

PARAMS = {18: 11_689_514, 34: 21_797_674, 50: 25_557_034, 101: 44_549_162, 152: 60_192_810}
GMACS = {18: 1.81, 34: 3.66, 50: 4.09, 101: 7.80, 152: 11.5}
CATAMOUNT = {50: dict(flops=790_954_958_112, nbytes=32_896_462_028),
             152: dict(flops=2_222_688_328_992, nbytes=70_967_716_188)}


@pytest.mark.parametrize("depth", sorted(PARAMS))
def test_params_match_catamount(depth):
    assert build_workload("resnet", depth=depth, batch=1).params == PARAMS[depth]


@pytest.mark.parametrize("depth", sorted(CATAMOUNT))
def test_flops_and_bytes_against_catamount(depth):
    g = build_workload("resnet", depth=depth, batch=32)
    assert g.flops == pytest.approx(CATAMOUNT[depth]["flops"], rel=0.05)
    # ours is 9-11% low: TensorFlow plumbing of the profiled graph (e.g. dynamic-shape
    # gradient reductions, weight decay) that we do not model; see docs/reproduction_domains.md
    assert g.nbytes == pytest.approx(CATAMOUNT[depth]["nbytes"], rel=0.15)


@pytest.mark.parametrize("depth", sorted(GMACS))
def test_forward_multiply_adds(depth):
    g = build_workload("resnet", depth=depth, batch=1)
    macs = sum(op.flops for op in g.ops if op.phase == Phase.FORWARD and op.kind in (OpKind.CONV, OpKind.MATMUL)) / 2
    assert macs / 1e9 == pytest.approx(GMACS[depth], rel=0.02)


def test_backward_conv_flops_twice_forward_except_stem_input():
    g = build_workload("resnet", depth=50, batch=2)
    fwd = sum(op.flops for op in g.ops if op.kind == OpKind.CONV and op.phase == Phase.FORWARD)
    bwd = sum(op.flops for op in g.ops if op.kind == OpKind.CONV and op.phase == Phase.BACKWARD)
    stem = next(op.flops for op in g.ops if op.name == "stem/conv")
    assert bwd == 2 * fwd - stem  # no input gradient for the images


def test_width_multiplier_grows_params_quadratically():
    p1 = build_workload("resnet", depth=50, width=1.0, batch=1).params
    p2 = build_workload("resnet", depth=50, width=2.0, batch=1).params
    assert 3.7 < p2 / p1 < 4.0  # convs x4; classifier and batch norm x2


def test_flops_linear_in_batch():
    g1, g2, g4 = (build_workload("resnet", depth=18, batch=b, image=64) for b in (1, 2, 4))
    assert g4.flops - g2.flops == 2 * (g2.flops - g1.flops)  # affine: weight updates do not scale
    assert g4.nbytes - g2.nbytes == 2 * (g2.nbytes - g1.nbytes)


def test_min_footprint_between_persistent_and_total():
    g = build_workload("resnet", depth=34, batch=2, image=64)
    assert g.persistent_bytes <= g.footprint_min_bytes() <= g.footprint_total_bytes


def test_layers():
    g = build_workload("resnet", depth=18, batch=1, image=64)
    assert g.layers()[:2] == ["stem", "stage1"] and "output" in g.layers()


@pytest.mark.parametrize("bad", [dict(depth=42), dict(width=0), dict(width=-1.0), dict(batch=0), dict(image=8),
                                 dict(colour=1)])
def test_bad_options_raise_config_error(bad):
    with pytest.raises(ConfigError) as err:
        build_workload("resnet", **bad)
    assert "\n" not in str(err.value)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=10, deadline=None)
@given(depth=st.sampled_from([18, 34, 50, 101, 152]), width=st.floats(0.1, 1.5), image=st.integers(32, 80),
       batch=st.integers(1, 3))
def test_property_footprints_and_params(depth, width, image, batch):
    g = build_workload("resnet", depth=depth, width=width, image=image, batch=batch)
    assert g.persistent_bytes <= g.footprint_min_bytes() <= g.footprint_total_bytes
    assert g.flops > 0 and g.nbytes > 0
    # parameters do not depend on the image or the batch
    assert g.params == build_workload("resnet", depth=depth, width=width, image=32, batch=1).params
