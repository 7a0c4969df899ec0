"""A user's own workload: a multi-layer perceptron classifier, one training step with SGD.

Use it from the command line::

    python3 -m distsim step --workload-file examples/my_mlp.py --set hidden=4096
    python3 -m distsim plan --workload-file examples/my_mlp.py --preset wide --data-parallel 1,8,64

or from Python with ``distsim.workload.load_workload_file("examples/my_mlp.py")``.

The file defines ``build(**options) -> Graph``; distsim registers it under the
file's name, ``my_mlp``.  (A file may instead register one or more builders
with ``@WORKLOADS.register("name")``, ``from distsim.workload import WORKLOADS``.)
The options are ``build``'s keyword parameters; ``PRESETS`` names sets of them.
"""

from distsim.datasets import Dataset, set_default_dataset
from distsim.graph import GraphBuilder, OpKind, Phase, TensorKind

#: Named option sets: ``--preset wide``.
PRESETS = {"wide": dict(hidden=8192, layers=4, batch=256)}

# What an epoch is unless the user says otherwise (--samples N, --dataset NAME).
set_default_dataset("my_mlp", Dataset(name="mnist-train", samples=60_000,
                                      source="MNIST training images (LeCun et al. 1998)"))


def build(hidden=1024, layers=2, inputs=784, classes=10, batch=128):
    """One step: ``layers`` hidden layers (matmul, bias, ReLU), a softmax output, backprop and SGD."""
    b = GraphBuilder("my_mlp")
    widths = [inputs] + [hidden] * layers + [classes]
    names = [f"fc{i}" for i in range(layers)] + ["out"]

    # Tensors that exist before the step: the batch and the weights, each in the layer that reads it
    # (a layer is what a pipeline stage holds).
    b.layer = names[0]
    x = b.tensor("x", batch * inputs, TensorKind.INPUT)
    b.layer = names[-1]
    labels = b.tensor("labels", batch, TensorKind.INPUT)
    params = {}
    for name, d_in, d_out in zip(names, widths, widths[1:]):
        b.layer = name
        params[name] = (b.tensor(f"{name}/W", d_in * d_out, TensorKind.WEIGHT),
                        b.tensor(f"{name}/b", d_out, TensorKind.WEIGHT))

    # Forward: y = x @ W (2 x batch x d_in x d_out FLOPs), + bias, ReLU.
    b.phase = Phase.FORWARD
    acts = []
    h = x
    for name, d_in, d_out in zip(names, widths, widths[1:]):
        b.layer = name
        w, bias = params[name]
        z = b.matmul(f"{name}/matmul", h, w, f"{name}/z", m=batch, n=d_out, k=d_in)
        a = b.elementwise(f"{name}/bias_relu", [z, bias], f"{name}/a", batch * d_out,
                          flops_per_element=2) if name != "out" else z
        acts.append((h, z))
        h = a
    b.layer = "out"
    loss = b.op("loss", OpKind.SOFTMAX, [h, labels], [("loss", 1)], flops=5 * batch * classes)[0]

    # Backward: the loss gradient, then per layer dW = x^T @ dy, db = sum(dy), dx = dy @ W^T.
    b.phase = Phase.BACKWARD
    dy = b.elementwise("loss/grad", [h, labels, loss], "dlogits", batch * classes, flops_per_element=3)
    grads = {}
    for i in reversed(range(len(names))):
        name, d_in, d_out = names[i], widths[i], widths[i + 1]
        b.layer = name
        w, bias = params[name]
        h_in, z = acts[i]
        if name != "out":  # through the ReLU
            dy = b.elementwise(f"{name}/relu_grad", [dy, z], f"{name}/dz", batch * d_out)
        dw = b.matmul(f"{name}/dW", h_in, dy, f"{name}/dW", m=d_in, n=d_out, k=batch, out_kind=TensorKind.GRADIENT)
        db = b.op(f"{name}/db", OpKind.REDUCTION, [dy], [(f"{name}/db", d_out)], flops=batch * d_out,
                  out_kind=TensorKind.GRADIENT)[0]
        grads[name] = (dw, db)
        if i > 0:
            dy = b.matmul(f"{name}/dx", dy, w, f"{name}/dx", m=batch, n=d_in, k=d_out)

    # Update: SGD reads each weight and its gradient and changes the weight in place (no outputs).
    b.phase = Phase.UPDATE
    for name, d_in, d_out in zip(names, widths, widths[1:]):
        b.layer = name
        for weight, grad, elements in zip(params[name], grads[name], (d_in * d_out, d_out)):
            b.op(f"{weight}/update", OpKind.OPTIMIZER, [weight, grad], [], flops=2 * elements)

    return b.build(dims=dict(hidden=hidden, layers=layers, inputs=inputs, classes=classes, batch=batch))
