"""A parallel plan: how one workload is spread over accelerators ("how").

A :class:`Plan` composes three kinds of parallelism:

- **data parallelism** (``data_parallel`` workers, each running the whole
  graph on its sub-batch; synchronous SGD: gradients are all-reduced, sparse
  ones all-gathered, before the update);
- **layer parallelism** (``stages``: which model layers run on which
  accelerator of one data-parallel worker; activations and their gradients
  are sent between the stages' accelerators over links);
- **embedding sharding** (``shard_stages``: the table of ``shard_layer`` is
  split into row pieces placed on the listed stages' accelerators, with the
  lookups, updates and gradient traffic of each piece where it lives).

Transformer-scale parallelism (Megatron-LM, Narayanan et al. SC'21) adds

- **tensor parallelism** (``tensor_parallel`` ranks split each layer's
  matmuls column/row-wise, with all-reduces -- or, with
  ``sequence_parallel``, reduce-scatters and all-gathers -- in the forward
  and backward passes);
- **pipeline parallelism** (``pipeline_parallel`` stages, the graph's layers
  split evenly among them, over ``micro_batches`` micro-batches with
  ``pipeline_schedule`` ``gpipe``, ``1f1b`` or ``interleaved`` with
  ``layers_per_virtual_stage``);
- **ZeRO** (``zero`` 1-3: optimizer state, gradients, weights sharded over
  the data-parallel ranks) and **activation recomputation** (``recompute``).

Any of these makes the plan *layer-granular* (:attr:`Plan.layer_granular`):
it is lowered and simulated one task per layer, micro-batch and pass
(:func:`distsim.lower.lower`, :mod:`distsim.parallel`); with none of them a
plan is simulated op by op as before.

A plan is checked against a graph with :meth:`Plan.resolve`, which returns a
:class:`ResolvedPlan` (stage of every layer, shard fractions).  Bad references
raise :class:`~distsim.errors.ConfigError` naming the field and the value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .errors import ConfigError, require_positive, require_positive_int
from .graph import Graph

#: Layer-parallel schedules (see :mod:`distsim.parallel`).
SCHEDULES = ("wavefront", "layerwise")
#: How sparse (embedding-row) gradients travel between data-parallel workers.
SPARSE_GRADIENT_MODES = ("allgather", "allreduce")
#: Staging memory of a gradient collective: the whole tensor, or the ring's chunks.
COMM_BUFFERS = ("tensor", "chunked")
#: How dense gradients are grouped into collectives (see :mod:`distsim.lower`).
GRADIENT_GROUPINGS = ("per_tensor", "per_layer", "bucket")
#: PyTorch DDP's default bucket size (``bucket_cap_mb=25``, which DDP reads as MiB).
DEFAULT_BUCKET_MIB = 25.0
#: Pipeline schedules over micro-batches (layer-granular simulation, see :mod:`distsim.parallel`).
PIPELINE_SCHEDULES = ("gpipe", "1f1b", "interleaved")
#: Activation recomputation: none, the attention core only (Korthikanti et al. 2022), every layer.
RECOMPUTE = ("none", "selective", "full")
#: ZeRO stages (Rajbhandari et al. 2020): 0 none; 1 optimizer state, 2 + gradients, 3 + weights sharded.
ZERO_STAGES = (0, 1, 2, 3)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How a workload runs on accelerators.

    Parameters
    ----------
    data_parallel : int
        Data-parallel workers; the global batch is ``subbatch x data_parallel``.
    stages : tuple of tuple of str, optional
        Layers per accelerator of one worker, in pipeline order; every layer of
        the graph must appear exactly once.  Default: one stage with every layer.
    shard_layer : str
        The layer whose table (the weight with a sparse gradient) is sharded.
    shard_stages : tuple of int
        Stage indices that hold one row piece each of ``shard_layer``'s table;
        empty: no sharding (the table stays with its layer's stage).
    shard_fractions : tuple of float, optional
        Fraction of the rows per piece (sum 1).  Default: chosen to even out
        the per-accelerator memory (see :mod:`distsim.memory`).
    schedule : {"wavefront", "layerwise"}
        ``wavefront``: each stage runs an op as soon as its inputs arrive, so a
        recurrent model's time steps flow across layers as a diagonal
        wavefront; ``layerwise``: a stage starts a phase (forward, backward)
        only when the previous stage has finished it.
    overlap : bool
        Gradient communication on its own stream, overlapping the rest of the
        backward pass (True), or on the compute stream (False).
    allreduce : str
        Collective algorithm for gradients (a name in :mod:`distsim.collectives`);
        all-gathers of sparse rows use it where it has an all-gather
        (``ring``, ``halving_doubling``), else the ring.
    sparse_gradients : {"allgather", "allreduce"}
        All-gather the rows of sparse gradients (Horovod's treatment of
        TensorFlow's IndexedSlices) or all-reduce them as dense tensors.
    fuse_accumulation : bool
        Fold each per-time-step weight-gradient accumulation into its matmul
        (:func:`distsim.transforms.fuse_gradient_accumulation`): less memory
        and time than the framework graph as imported.
    comm_buffer : {"tensor", "chunked"}
        Memory a gradient all-reduce stages: a copy of the whole tensor (a
        fusion buffer, the paper's accounting) or only the two ring chunks in
        flight (``2 x nbytes / workers``).
    gradient_grouping : {"per_tensor", "per_layer", "bucket"}
        Dense gradients per collective: one each (Horovod with fusion off,
        the paper's accounting), one per layer (all of a layer's gradients
        once the last is ready), or fixed-size buckets filled in the order
        the gradients are produced (PyTorch DDP).  Sparse gradients that are
        all-gathered always travel alone.
    bucket_MiB : float
        Bucket size for ``gradient_grouping="bucket"`` (MiB; DDP's default 25).
    batch : int, optional
        The global batch, if the user wants it checked: it must equal
        ``subbatch x micro_batches x data_parallel``.
    tensor_parallel : int
        Ranks splitting each layer (Megatron column/row split); 1: none.
    sequence_parallel : bool
        With tensor parallelism: the layer's replicated ops (layernorms,
        residual adds) split along the sequence too, and each all-reduce
        becomes a reduce-scatter plus an all-gather.
    pipeline_parallel : int
        Pipeline stages; the graph's first layer joins the first stage, its
        last layer the last, the layers between are split evenly (they must
        divide).  Exclusive with ``stages`` of more than one stage.
    micro_batches : int
        Micro-batches per step of each data-parallel replica (the graph is one
        micro-batch).
    pipeline_schedule : {"gpipe", "1f1b", "interleaved"}, optional
        Order of each stage's forward and backward passes.  Default: ``1f1b``
        for a layer-granular plan.
    layers_per_virtual_stage : int, optional
        ``interleaved`` only: layers of one model chunk; each stage holds
        ``layers / (pipeline_parallel x layers_per_virtual_stage)`` chunks.
    zero : {0, 1, 2, 3}
        ZeRO stage / distributed optimizer over the data-parallel ranks.
    recompute : {"none", "selective", "full"}
        Activation recomputation: ``full`` keeps only each layer's input and
        re-runs its forward before its backward; ``selective`` re-runs the
        attention core (the ops from an activation-by-activation matmul to
        the next: scores, softmax, dropout, context).
    """

    data_parallel: int = 1
    stages: tuple[tuple[str, ...], ...] | None = None
    shard_layer: str = "embedding"
    shard_stages: tuple[int, ...] = ()
    shard_fractions: tuple[float, ...] | None = None
    schedule: str = "wavefront"
    overlap: bool = False
    allreduce: str = "ring"
    sparse_gradients: str = "allgather"
    fuse_accumulation: bool = False
    comm_buffer: str = "tensor"
    gradient_grouping: str = "per_tensor"
    bucket_MiB: float = DEFAULT_BUCKET_MIB
    batch: int | None = None
    tensor_parallel: int = 1
    sequence_parallel: bool = False
    pipeline_parallel: int = 1
    micro_batches: int = 1
    pipeline_schedule: str | None = None
    layers_per_virtual_stage: int | None = None
    zero: int = 0
    recompute: str = "none"

    def __post_init__(self):
        require_positive_int("data_parallel", self.data_parallel)
        self._check_layer_granular()
        if self.stages is not None:
            if isinstance(self.stages, (str, bytes)) or not len(self.stages):
                raise ConfigError(f"stages must be a non-empty list of layer lists, got {self.stages!r}")
            stages = []
            for i, stage in enumerate(self.stages):
                if isinstance(stage, str):
                    stage = (stage,)
                if not isinstance(stage, (list, tuple)) or not stage or not all(isinstance(x, str) for x in stage):
                    raise ConfigError(f"stages[{i}] must be a non-empty list of layer names, got {stage!r}")
                stages.append(tuple(stage))
            object.__setattr__(self, "stages", tuple(stages))
        if not isinstance(self.shard_layer, str):
            raise ConfigError(f"shard_layer must be a layer name, got {self.shard_layer!r}")
        shard_stages = tuple(self.shard_stages or ())
        for s in shard_stages:
            require_positive_int("shard_stages entry", s, allow_zero=True)
        if len(set(shard_stages)) != len(shard_stages):
            raise ConfigError(f"shard_stages lists a stage twice: {list(shard_stages)}")
        object.__setattr__(self, "shard_stages", shard_stages)
        if self.shard_fractions is not None:
            fr = tuple(require_positive("shard_fractions entry", f, allow_zero=True) for f in self.shard_fractions)
            if len(fr) != len(shard_stages):
                raise ConfigError(f"shard_fractions has {len(fr)} entries for {len(shard_stages)} shard_stages")
            if abs(sum(fr) - 1) > 1e-9:
                raise ConfigError(f"shard_fractions must sum to 1, got {sum(fr):.6g}")
            object.__setattr__(self, "shard_fractions", fr)
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.sparse_gradients not in SPARSE_GRADIENT_MODES:
            raise ConfigError(f"sparse_gradients must be one of {', '.join(SPARSE_GRADIENT_MODES)}, "
                              f"got {self.sparse_gradients!r}")
        for flag in ("overlap", "fuse_accumulation", "sequence_parallel"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{flag} must be true or false, got {getattr(self, flag)!r}")
        if self.comm_buffer not in COMM_BUFFERS:
            raise ConfigError(f"comm_buffer must be one of {', '.join(COMM_BUFFERS)}, got {self.comm_buffer!r}")
        if self.gradient_grouping not in GRADIENT_GROUPINGS:
            raise ConfigError(f"gradient_grouping must be one of {', '.join(GRADIENT_GROUPINGS)}, "
                              f"got {self.gradient_grouping!r}")
        require_positive("bucket_MiB", self.bucket_MiB)
        if self.batch is not None:
            require_positive_int("batch", self.batch)
            if self.batch % (self.data_parallel * self.micro_batches):
                mb = f" x micro_batches={self.micro_batches}" if self.micro_batches > 1 else ""
                raise ConfigError(f"data_parallel={self.data_parallel}{mb} does not divide batch={self.batch}")

    def _check_layer_granular(self) -> None:
        require_positive_int("tensor_parallel", self.tensor_parallel)
        require_positive_int("pipeline_parallel", self.pipeline_parallel)
        require_positive_int("micro_batches", self.micro_batches)
        if isinstance(self.zero, bool) or not isinstance(self.zero, (int, float)) or self.zero not in ZERO_STAGES:
            raise ConfigError(f"zero must be one of {', '.join(map(str, ZERO_STAGES))}, got {self.zero!r}")
        object.__setattr__(self, "zero", int(self.zero))
        if self.recompute not in RECOMPUTE:
            raise ConfigError(f"recompute must be one of {', '.join(RECOMPUTE)}, got {self.recompute!r}")
        if self.pipeline_schedule is not None and self.pipeline_schedule not in PIPELINE_SCHEDULES:
            raise ConfigError(f"pipeline_schedule must be one of {', '.join(PIPELINE_SCHEDULES)}, "
                              f"got {self.pipeline_schedule!r}")
        if self.sequence_parallel is True and self.tensor_parallel == 1:
            raise ConfigError("sequence_parallel needs tensor_parallel > 1, got tensor_parallel=1")
        if self.pipeline_parallel > 1 and self.stages is not None and len(self.stages) > 1:
            raise ConfigError(f"give pipeline_parallel or stages, not both "
                              f"(pipeline_parallel={self.pipeline_parallel}, {len(self.stages)} stages)")
        if self.layers_per_virtual_stage is not None:
            require_positive_int("layers_per_virtual_stage", self.layers_per_virtual_stage)
            if self.pipeline_schedule != "interleaved":
                raise ConfigError(f"layers_per_virtual_stage is for pipeline_schedule 'interleaved', "
                                  f"got pipeline_schedule={self.pipeline_schedule!r}")
        elif self.pipeline_schedule == "interleaved":
            raise ConfigError("pipeline_schedule 'interleaved' needs layers_per_virtual_stage")
        if self.pipeline_schedule == "interleaved" and self.micro_batches % self.pipeline_parallel:
            raise ConfigError(f"the interleaved schedule needs micro_batches a multiple of pipeline_parallel "
                              f"({self.pipeline_parallel}), got micro_batches={self.micro_batches}")
        if self.layer_granular and self.pipeline_schedule is None:
            object.__setattr__(self, "pipeline_schedule", "1f1b")
        if self.layer_granular:
            for key, default in (("shard_stages", ()), ("schedule", "wavefront"), ("comm_buffer", "tensor"),
                                 ("gradient_grouping", "per_tensor")):
                if getattr(self, key) != default:
                    raise ConfigError(f"{key}={getattr(self, key)!r} applies to plans simulated op by op; it cannot "
                                      f"be combined with tensor_parallel, pipeline_parallel, micro_batches, "
                                      f"pipeline_schedule, zero or recompute")

    @property
    def layer_granular(self) -> bool:
        """True when the plan uses any transformer-scale field: simulated one task per layer and pass."""
        return (self.tensor_parallel > 1 or self.pipeline_parallel > 1 or self.micro_batches > 1
                or self.pipeline_schedule is not None or self.zero > 0 or self.recompute != "none")

    @property
    def stage_count(self) -> int:
        if self.pipeline_parallel > 1:
            return self.pipeline_parallel
        return 1 if self.stages is None else len(self.stages)

    @property
    def accelerators(self) -> int:
        return self.data_parallel * self.stage_count * self.tensor_parallel

    @property
    def embedding_shards(self) -> int:
        """Pieces of the sharded table (1: not sharded)."""
        return max(1, len(self.shard_stages))

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        """A plan from plain data (YAML); unknown keys are rejected with the valid ones listed.

        ``embedding_shards: N`` is accepted as shorthand for
        ``shard_stages: [0, ..., N-1]``.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"plan must be a mapping, got {data!r}")
        data = dict(data)
        valid = [f.name for f in fields(cls)]
        if "embedding_shards" in data:
            n = require_positive_int("embedding_shards", data.pop("embedding_shards"))
            if "shard_stages" in data and len(data["shard_stages"] or ()) != n:
                raise ConfigError(f"embedding_shards={n} but shard_stages lists {len(data['shard_stages'])}")
            data.setdefault("shard_stages", tuple(range(n)) if n > 1 else ())
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ConfigError(f"unknown plan key {unknown[0]!r}; accepted: {', '.join(valid + ['embedding_shards'])}")
        for key in ("shard_stages", "shard_fractions"):
            if data.get(key) is not None:
                if not isinstance(data[key], (list, tuple)):
                    raise ConfigError(f"{key} must be a list, got {data[key]!r}")
                data[key] = tuple(data[key])
        if data.get("stages") is not None and not isinstance(data["stages"], (list, tuple)):
            raise ConfigError(f"stages must be a list of layer lists, got {data['stages']!r}")
        return cls(**data)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["stages"] = None if self.stages is None else [list(s) for s in self.stages]
        out["shard_stages"] = list(self.shard_stages)
        out["shard_fractions"] = None if self.shard_fractions is None else list(self.shard_fractions)
        return out

    def describe(self) -> str:
        """A short label, e.g. ``dp512 x [embedding | lstm0 | lstm1 | output+step] shard3``."""
        text = f"dp{self.data_parallel}"
        if self.stages is not None and len(self.stages) > 1:
            text += " x [" + " | ".join("+".join(s) for s in self.stages) + "]"
        if self.shard_stages:
            text += f" shard{len(self.shard_stages)}"
        if self.schedule != "wavefront" and self.stage_count > 1:
            text += f" {self.schedule}"
        if self.fuse_accumulation:
            text += " fused-acc"
        if self.comm_buffer != "tensor" and self.data_parallel > 1:
            text += f" {self.comm_buffer}-buffers"
        if self.allreduce != "ring" and self.data_parallel > 1:
            text += f" {self.allreduce}"
        if self.gradient_grouping != "per_tensor" and self.data_parallel > 1:
            text += " " + (f"bucket{self.bucket_MiB:g}MiB" if self.gradient_grouping == "bucket" else "per-layer")
        if self.overlap:
            text += " overlap"
        if self.layer_granular:
            text = (f"dp{self.data_parallel} x pp{self.stage_count} x tp{self.tensor_parallel}"
                    + (" sp" if self.sequence_parallel else "") + f" mb{self.micro_batches} {self.pipeline_schedule}"
                    + (f"/{self.layers_per_virtual_stage}" if self.layers_per_virtual_stage else "")
                    + (f" zero{self.zero}" if self.zero else "")
                    + (f" recompute-{self.recompute}" if self.recompute != "none" else "")
                    + (" overlap" if self.overlap else ""))
        return text

    def chunks(self, layers: list[str]) -> list[tuple[str, ...]]:
        """The model chunks of a layer-granular plan in pipeline order (virtual stage ``k`` runs on stage
        ``k mod pipeline_parallel``): the first layer joins the first chunk, the last layer the last, the
        layers between are split evenly."""
        p = self.stage_count
        if self.pipeline_parallel == 1 and self.stages is not None:
            return [tuple(s) for s in self.stages]
        if p == 1:
            return [tuple(layers)]
        body = layers[1:-1]
        per = self.layers_per_virtual_stage or (len(body) // p if len(body) % p == 0 else 0)
        if not per or len(body) % per or (len(body) // per) % p:
            what = (f"layers_per_virtual_stage={self.layers_per_virtual_stage} x pipeline_parallel={p}"
                    if self.layers_per_virtual_stage else f"pipeline_parallel={p}")
            raise ConfigError(f"{what} does not divide the {len(body)} layers between the first and the last "
                              f"({layers[0]} and {layers[-1]} join the first and last stage)")
        out = [tuple(body[i:i + per]) for i in range(0, len(body), per)]
        out[0] = (layers[0],) + out[0]
        out[-1] = out[-1] + (layers[-1],)
        return out

    def _pipeline_stages(self, layers: list[str]):
        chunks = self.chunks(layers)
        p = self.stage_count
        stages = tuple(tuple(x for k in range(s, len(chunks), p) for x in chunks[k]) for s in range(p))
        return stages, {layer: s for s, stage in enumerate(stages) for layer in stage}

    def resolve(self, graph: Graph) -> "ResolvedPlan":
        """Check the plan against ``graph`` and return the stage of each layer."""
        layers = graph.layers()
        stages = self.stages if self.stages is not None else (tuple(layers),)
        stage_of: dict[str, int] = {}
        for i, stage in enumerate(stages):
            for layer in stage:
                if layer not in layers:
                    raise ConfigError(f"stages[{i}] names layer {layer!r}, which {graph.name} does not have; "
                                      f"layers: {', '.join(layers)}")
                if layer in stage_of:
                    raise ConfigError(f"layer {layer!r} is placed on stages {stage_of[layer]} and {i}")
                stage_of[layer] = i
        missing = [layer for layer in layers if layer not in stage_of]
        if missing:
            raise ConfigError(f"layer {missing[0]!r} is on no stage; every layer must be placed "
                              f"(layers: {', '.join(layers)})")
        for s in self.shard_stages:
            if s >= len(stages):
                raise ConfigError(f"shard_stages names stage {s}, but the plan has stages 0..{len(stages) - 1}")
        table = None
        if self.shard_stages:
            if self.shard_layer not in layers:
                raise ConfigError(f"shard_layer {self.shard_layer!r} is not a layer of {graph.name}; "
                                  f"layers: {', '.join(layers)}")
            tables = [w for g, w in sparse_gradients(graph).items() if graph.tensors[w].layer == self.shard_layer]
            if not tables:
                raise ConfigError(f"shard_layer {self.shard_layer!r} has no table with a sparse gradient to shard")
            table = tables[0]
        if self.pipeline_parallel > 1:
            stages, stage_of = self._pipeline_stages(layers)
        subbatch = int(graph.dims.get("batch", graph.dims.get("samples", 1)))
        if self.batch is not None and self.batch != subbatch * self.micro_batches * self.data_parallel:
            mb = f" x micro_batches {self.micro_batches}" if self.micro_batches > 1 else ""
            raise ConfigError(f"batch={self.batch} is not subbatch {subbatch}{mb} x data_parallel {self.data_parallel}")
        return ResolvedPlan(plan=self, stages=tuple(stages), stage_of=stage_of, table=table,
                            fractions=self.shard_fractions)


@dataclass(frozen=True)
class ResolvedPlan:
    """A plan checked against a graph."""

    plan: Plan
    stages: tuple[tuple[str, ...], ...]
    stage_of: dict[str, int] = field(default_factory=dict)
    table: str | None = None  # the sharded weight tensor
    fractions: tuple[float, ...] | None = None  # row fraction per shard stage

    def with_fractions(self, fractions: tuple[float, ...]) -> "ResolvedPlan":
        """The same placement with other row fractions (unchecked: for what-if evaluation)."""
        from dataclasses import replace

        return replace(self, fractions=tuple(fractions))

    @property
    def pieces(self) -> list[tuple[int, float]]:
        """(stage, fraction) of each table piece."""
        return list(zip(self.plan.shard_stages, self.fractions or ()))


def gradient_of(graph: Graph) -> dict[str, str]:
    """Final gradient tensor -> the weight its update op changes.

    The gradients are what ``update``-phase ops read that some op produced and
    that is neither persistent (weight, optimizer state) nor a step input.
    """
    from .evalcache import cached

    return dict(cached(graph, "gradient_of", lambda: _find_gradients(graph)))  # computed once per graph


def _find_gradients(graph: Graph) -> dict[str, str]:
    from .graph import Phase, TensorKind

    out: dict[str, str] = {}
    for op in graph.ops:
        if op.phase != Phase.UPDATE:
            continue
        weights = [t for t in op.inputs if graph.tensors[t].kind == TensorKind.WEIGHT]
        for name in op.inputs:
            t = graph.tensors[name]
            if graph.producer(name) is not None and not t.kind.resident and weights:
                out.setdefault(name, weights[0])
    return out


def sparse_gradients(graph: Graph) -> dict[str, str]:
    """Gradients smaller than the weight they update (the rows of an embedding table) -> weight."""
    return {g: w for g, w in gradient_of(graph).items() if graph.tensors[g].nbytes < graph.tensors[w].nbytes}
