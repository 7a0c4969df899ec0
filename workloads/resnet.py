"""Image classification: ResNet (He et al. 2016) at depths 18-152 with a width multiplier.

The image model of Hestness et al., PPoPP 2019 (section 2.2, Figure 1).  Basic
blocks (two 3x3 convolutions) for depths 18 and 34, bottleneck blocks (1x1,
3x3, 1x1 with 4x expansion) for 50, 101 and 152; stages of 64, 128, 256 and
512 base channels (times ``width``), the stride-2 downsampling on the 3x3
convolution of each stage's first block (the "v1.5" placement of the common
TensorFlow and PyTorch implementations, 4.1 G multiply-adds for ResNet-50 at
224x224), projection shortcuts (1x1 convolution + batch norm) where the shape
changes, a 7x7/2 stem with 3x3/2 max pooling, global average pooling and a
fully connected classifier with bias.

Parameters: convolution kernels (no bias), batch-norm scale and offset,
classifier weight and bias (ResNet-50: 25,557,032, the count of the reference
implementations), plus the global-step and learning-rate scalars that
Catamount's count of its TensorFlow ResNets includes (25,557,034;
``catamount/tests/full/tf_image_resnet.py``).  Batch-norm moving averages and
optimizer state are not parameters.  Convolution FLOPs are 2 x output pixels
x kernel area x in x out channels; bytes are input + kernel + output.  The
backward computes input and kernel gradients, each with the forward's FLOPs
(no input gradient for the image).  Batch norm is counted as 6 FLOPs an
element forward and 8 backward.

Example
-------
>>> from distsim.workload import build_workload
>>> build_workload("resnet", depth=50, batch=1).params
25557034
"""

from __future__ import annotations

from distsim.errors import ConfigError, require_positive
from distsim.graph import Gemm, OpKind, TensorKind, check_dims
from distsim.workload import WORKLOADS

from ._blocks import StepBuilder, check_choice, softmax_xent

# depth -> (bottleneck?, blocks per stage)
DEPTHS = {
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}

OPTIONS = {
    "depth": (int, 50),
    "width": (float, 1.0),
    "image": (int, 224),
    "classes": (int, 1000),
    "batch": (int, 32),
    "optimizer": (str, "momentum"),
    "precision": (str, "fp32"),  # distsim.precision: fp32, tf32, bf16, fp16, fp8
    "weight_decay": (bool, True),
}

BN_FWD_FLOPS, BN_BWD_FLOPS = 6, 8


class _Net:
    """Forward builder that records what the backward needs, in order."""

    def __init__(self, sb: StepBuilder, batch: int):
        self.sb = sb
        self.b = batch
        self.tape: list[tuple] = []

    def conv(self, name: str, x: str, hw: int, cin: int, cout: int, k: int, stride: int) -> tuple[str, int]:
        sb, b = self.sb, self.b
        sb.fwd(self.layer)
        w = sb.param(f"{name}/kernel", k * k * cin * cout)
        ho = -(-hw // stride)
        gemm = Gemm(b * ho * ho, cout, k * k * cin, element_bytes=sb.g.element_bytes)
        y = sb.g.op(name, OpKind.CONV, [x, w], [(name, b * ho * ho * cout)], flops=gemm.flops, gemm=gemm)[0]
        self.tape.append(("conv", name, y, x, self.layer, w, gemm, b * hw * hw * cin))
        return y, ho

    def bn(self, name: str, x: str, c: int, relu: bool) -> str:
        sb = self.sb
        gamma = sb.param(f"{name}/gamma", c)
        beta = sb.param(f"{name}/beta", c)
        n = sb.elements(x)
        y = sb.ew(name, [x, gamma, beta], n, BN_FWD_FLOPS)
        self.tape.append(("bn", name, y, x, self.layer, gamma, beta))
        if relu:
            y = self.relu(f"{name}/relu", y)
        return y

    def relu(self, name: str, x: str) -> str:
        y = self.sb.ew(name, [x], self.sb.elements(x))
        self.tape.append(("relu", name, y, x, self.layer))
        return y

    def add_relu(self, name: str, a: str, b: str) -> str:
        y = self.sb.ew(f"{name}/add", [a, b], self.sb.elements(a))
        self.tape.append(("add", name, y, a, self.layer, b))
        return self.relu(f"{name}/relu", y)


@WORKLOADS.register("resnet")
def build_resnet(**options):
    """One training step of a ResNet image classifier.

    Parameters
    ----------
    depth : int
        18, 34, 50 (default), 101 or 152.
    width : float
        Channel multiplier (1.0: the published networks); channels are rounded.
    image : int
        Square input side in pixels (224).
    classes : int
        Output classes (1000).
    batch : int
        Subbatch size (32).
    optimizer : str
        ``momentum`` (default, as ResNets are trained), ``sgd`` or ``adam``.
    weight_decay : bool
        True (default): L2 regularization of the convolution and classifier
        weights, as He et al. train (decay 1e-4; TensorFlow adds an L2 loss per
        weight and its gradient to the weight's); False: none.
    """
    d = check_dims(options, OPTIONS)
    check_choice("optimizer", d["optimizer"], ("sgd", "momentum", "adam"))
    if d["depth"] not in DEPTHS:
        raise ConfigError(f"depth must be one of {', '.join(map(str, DEPTHS))}, got {d['depth']!r}")
    width = require_positive("width", d["width"])
    d["weight_decay"] = _flag("weight_decay", d["weight_decay"])
    bottleneck, stages = DEPTHS[d["depth"]]
    b, img, classes = d["batch"], d["image"], d["classes"]
    if img < 32:
        raise ConfigError(f"image must be at least 32 pixels, got {img}")

    def ch(c: int) -> int:
        return max(1, round(c * width))

    sb = StepBuilder("resnet", d["optimizer"], d["precision"])
    net = _Net(sb, b)
    sb.fwd("stem")
    x = sb.input("input/images", b * img * img * 3)
    labels = sb.input("input/labels", b)

    # ---- forward ---------------------------------------------------------------
    net.layer = "stem"
    y, hw = net.conv("stem/conv", x, img, 3, ch(64), 7, 2)
    y = net.bn("stem/bn", y, ch(64), relu=True)
    hw = -(-hw // 2)
    pooled = sb.ew("stem/maxpool", [y], b * hw * hw * ch(64), 9)
    net.tape.append(("maxpool", "stem/maxpool", pooled, y, "stem"))
    y = pooled
    cin = ch(64)
    expansion = 4 if bottleneck else 1
    for s, nblocks in enumerate(stages):
        net.layer = f"stage{s + 1}"
        sb.fwd(net.layer)
        mid = ch(64 * 2**s)
        cout = mid * expansion
        for i in range(nblocks):
            p = f"stage{s + 1}/block{i}"
            stride = 2 if (i == 0 and s > 0) else 1
            inp = y
            if bottleneck:
                z, h1 = net.conv(f"{p}/conv1", inp, hw, cin, mid, 1, 1)
                z = net.bn(f"{p}/bn1", z, mid, relu=True)
                z, h2 = net.conv(f"{p}/conv2", z, h1, mid, mid, 3, stride)
                z = net.bn(f"{p}/bn2", z, mid, relu=True)
                z, h3 = net.conv(f"{p}/conv3", z, h2, mid, cout, 1, 1)
                z = net.bn(f"{p}/bn3", z, cout, relu=False)
            else:
                z, h2 = net.conv(f"{p}/conv1", inp, hw, cin, mid, 3, stride)
                z = net.bn(f"{p}/bn1", z, mid, relu=True)
                z, h3 = net.conv(f"{p}/conv2", z, h2, mid, cout, 3, 1)
                z = net.bn(f"{p}/bn2", z, cout, relu=False)
            if stride != 1 or cin != cout:
                sc, _ = net.conv(f"{p}/shortcut", inp, hw, cin, cout, 1, stride)
                sc = net.bn(f"{p}/shortcut_bn", sc, cout, relu=False)
            else:
                sc = inp
            y = net.add_relu(p, z, sc)
            cin, hw = cout, h3
    net.layer = "output"
    sb.fwd("output")
    feat = sb.reduce("output/avgpool", y, b * cin)
    w_fc = sb.param("output/fc_W", cin * classes)
    b_fc = sb.param("output/fc_b", classes)
    sb.param("global_step", 1, trainable=False)
    sb.param("learning_rate", 1, trainable=False)
    z = sb.matmul("output/fc", feat, w_fc, b, classes, cin)
    logits = sb.ew("output/fc_bias", [z, b_fc], b * classes)
    _, dlogits = softmax_xent(sb, "output/xent", logits, labels, b, classes)

    # ---- backward --------------------------------------------------------------
    sb.bwd("output")
    sb.bias_bwd("output/fc/grad", dlogits, b_fc)
    dfeat = sb.dense_bwd("output/fc/grad", dlogits, feat, w_fc, b, classes, cin)
    dy = sb.ew("output/avgpool/grad", [dfeat], sb.elements(y))
    grads: dict[str, list[str]] = {y: [dy]}  # tensor -> gradient contributions

    def grad_of(t: str) -> str:
        parts = grads.pop(t)
        if len(parts) == 1:
            return parts[0]
        return sb.ew(f"{t}/grad_sum", parts, sb.elements(t), len(parts) - 1)

    # Reverse tape order is a reverse topological order: when an entry is reached,
    # every consumer of its output has contributed its gradient.
    for kind, name, out, x_in, layer, *extra in reversed(net.tape):
        sb.bwd(layer)
        g_out = grad_of(out)
        n_in = sb.elements(x_in)
        if kind == "relu":
            grads.setdefault(x_in, []).append(sb.ew(f"{name}/grad", [g_out, out], n_in))
        elif kind == "maxpool":
            grads.setdefault(x_in, []).append(sb.ew(f"{name}/grad", [g_out, x_in, out], n_in))
        elif kind == "add":
            grads.setdefault(x_in, []).append(g_out)
            grads.setdefault(extra[0], []).append(g_out)
        elif kind == "bn":
            gamma, beta = extra
            dx = sb.ew(f"{name}/grad", [g_out, x_in, gamma], n_in, BN_BWD_FLOPS)
            for v, tag in ((gamma, "dgamma"), (beta, "dbeta")):
                sb.grad(v, sb.reduce(f"{name}/grad/{tag}", g_out, sb.params[v], out_kind=TensorKind.GRADIENT), accumulate=False)
            grads.setdefault(x_in, []).append(dx)
        elif kind == "conv":
            w, gemm, in_elements = extra
            dw = sb.g.op(f"{name}/grad/dw", OpKind.CONV, [x_in, g_out], [(f"{name}/grad/dw", sb.params[w])],
                         flops=gemm.flops, gemm=Gemm(gemm.k, gemm.n, gemm.m, element_bytes=gemm.element_bytes), out_kind=TensorKind.GRADIENT)[0]
            sb.grad(w, dw, accumulate=False)
            if x_in != x:  # no gradient for the images
                dx = sb.g.op(f"{name}/grad/dx", OpKind.CONV, [g_out, w], [(f"{name}/grad/dx", in_elements)],
                             flops=gemm.flops, gemm=Gemm(gemm.m, gemm.k, gemm.n, element_bytes=gemm.element_bytes))[0]
                grads.setdefault(x_in, []).append(dx)
    assert not grads, f"unconsumed gradients: {sorted(grads)[:3]}"
    if d["weight_decay"]:
        sb.weight_decay([w for w in sb.params if w.endswith("/kernel") or w == "output/fc_W"])
    return sb.finish({k: d[k] for k in OPTIONS if k != "optimizer"})


def _flag(name: str, value) -> bool:
    """A boolean option: True/False, 1/0, or "true"/"false" (as ``--set`` passes it)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{name} must be true or false, got {value!r}")


build_resnet.OPTIONS = OPTIONS
