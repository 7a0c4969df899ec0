"""Training precisions: how many bytes each kind of tensor takes.

A workload's ``precision`` option names the precision its step runs in.  It
decides the element size of every tensor of the graph and, through
:meth:`distsim.device.Device.at_precision`, the device peak its FLOPs run at.

- ``fp32`` (and ``tf32``, fp32 storage with tensor-core matmuls): every tensor
  is 4 bytes; the weights are the optimizer's copy, optimizer moments fp32.
- mixed precision (``bf16``, ``fp16``, ``fp8``; Micikevicius et al., ICLR 2018):
  activations, the weights the step computes with and their gradients take the
  low-precision size; the optimizer keeps an fp32 *master* copy of every weight
  plus its fp32 moments.  With Adam that is the usual 16 bytes a parameter
  before sharding: 2 (weight) + 2 (gradient) + 4 (master) + 4 + 4 (moments)
  (Rajbhandari et al., ZeRO, SC 2020, section 3.1).

Simplifications: loss scaling (fp16) and fp8 scaling factors cost nothing;
with ``fp8`` every compute tensor is 1 byte (Transformer Engine keeps some in
bf16); gradients are not accumulated in fp32.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True, slots=True)
class Precision:
    """Element sizes in bytes of one training precision.

    ``element_bytes``: activations, compute weights, gradients; ``master_bytes``:
    the optimizer's master copy of each weight (0: the weights are the master
    copy); ``state_bytes``: each optimizer moment.
    """

    name: str
    element_bytes: int
    master_bytes: int
    state_bytes: int = 4

    @property
    def mixed(self) -> bool:
        """True when the optimizer keeps a separate master copy of the weights."""
        return self.master_bytes > 0

    def optimizer_bytes_per_param(self, moments: int) -> int:
        """Master copy plus ``moments`` optimizer moments, bytes per parameter."""
        return self.master_bytes + moments * self.state_bytes

    def update_bytes_per_element(self, moments: int) -> int:
        """Bytes an optimizer update moves per updated element.

        Reads the gradient, the (master) weight and the moments; writes the
        weight and the moments back; mixed precision also writes the
        low-precision compute copy of the weight.
        """
        master = self.master_bytes or self.element_bytes
        cast = self.element_bytes if self.mixed else 0
        return self.element_bytes + 2 * master + 2 * moments * self.state_bytes + cast


PRECISIONS: dict[str, Precision] = {
    "fp32": Precision("fp32", 4, 0),
    "tf32": Precision("tf32", 4, 0),
    "bf16": Precision("bf16", 2, 4),
    "fp16": Precision("fp16", 2, 4),
    "fp8": Precision("fp8", 1, 4),
}


def get_precision(name: str) -> Precision:
    """The :class:`Precision` called ``name``; ConfigError naming the accepted ones.

    Examples
    --------
    >>> bf16 = get_precision("bf16")
    >>> bf16.element_bytes, bf16.optimizer_bytes_per_param(moments=2)  # Adam: fp32 master + 2 moments
    (2, 12)
    """
    try:
        return PRECISIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {name!r}") from None
