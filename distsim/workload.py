"""The workload registry: ``build_workload("wordlm", hidden=2048)`` -> Graph.

Each module in ``workloads/`` registers a builder with ``@WORKLOADS.register``.
A builder takes keyword options (named dimensions such as ``hidden``,
``vocab``, ``seq_len``, ``batch``), validates them with
:func:`distsim.graph.check_dims` and returns a :class:`distsim.graph.Graph`.
A builder may expose ``OPTIONS`` (name -> (type, default)) for ``--help``;
without it, the keyword parameters of its signature are its options.

Your own model
--------------
Three ways to add a workload, each usable from Python and the command line:

- a Python file (``distsim step --workload-file my_model.py``,
  ``distsim plan --workload-file my_model.py``, ``workload: {file:
  my_model.py}`` in a what-if file; :func:`load_workload_file`).  The file
  either registers builders::

      from distsim.workload import WORKLOADS

      @WORKLOADS.register("mymodel")
      def build_mymodel(hidden=256, batch=32): ...   # returns a Graph

  or defines ``build(**options) -> Graph``, registered under the file's name
  (``my_model.py`` -> ``my_model``).  The module may define ``PRESETS``
  (preset name -> options) and call :func:`distsim.datasets.set_default_dataset`;
- an installed package, through the entry-point group ``distsim.workloads``
  (see :mod:`distsim.registry`);
- in Python, ``@WORKLOADS.register("mymodel")`` anywhere before use.

Errors in a user's file or builder (a syntax error, no builder, a builder
that raises or returns something else than a Graph) are one-line
:class:`~distsim.errors.ConfigError` naming the file.  See ``examples/my_mlp.py``.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import traceback
import types
from pathlib import Path

from .errors import ConfigError, DistsimError
from .graph import Graph
from .registry import Registry

WORKLOADS: Registry = Registry("workload", packages=["distsim.workloads"], entry_point_group="distsim.workloads")

_FILES: dict[Path, tuple[str, ...]] = {}  # resolved workload file -> the workloads it provided


def build_workload(name: str, **options) -> Graph:
    builder = WORKLOADS.get(name)
    origin = WORKLOADS.origins.get(name)
    if origin is None:  # shipped with distsim
        return builder(**options)
    try:
        graph = builder(**options)
    except DistsimError as exc:
        raise ConfigError(f"{origin}: workload {name!r}: {exc}") from None
    except Exception as exc:
        raise ConfigError(f"{origin}: workload {name!r} raised {_describe(exc, origin)}") from None
    if not isinstance(graph, Graph):
        raise ConfigError(f"{origin}: workload {name!r} returned {type(graph).__name__}, not a Graph "
                          f"(return GraphBuilder(...).build(dims))")
    return graph


def workload_options(name: str) -> dict:
    """Option name -> (type, default): the builder's ``OPTIONS``, else its keyword parameters with defaults."""
    builder = WORKLOADS.get(name)
    if hasattr(builder, "OPTIONS"):
        return dict(builder.OPTIONS)
    try:
        params = inspect.signature(builder).parameters.values()
    except (TypeError, ValueError):
        return {}
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return {}  # takes any option: nothing to check here
    return {p.name: (type(p.default), p.default) for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty}


def workload_presets(name: str) -> dict[str, dict]:
    """Named option sets of a workload (its module's ``PRESETS``; empty if it has none)."""
    module = sys.modules.get(WORKLOADS.get(name).__module__)
    return {k: dict(v) for k, v in getattr(module, "PRESETS", {}).items()}


def configure_workload(name: str, *, preset: str | None = None, options: dict | None = None) -> Graph:
    """Build ``name`` from a preset (optional) overridden by ``options``, rejecting unknown names.

    Examples
    --------
    >>> g = configure_workload("wordlm", preset="case-study", options={"hidden": 64, "vocab": 100})
    >>> g.dims["hidden"], g.dims["projection"]
    (64, 2048)
    """
    if name not in WORKLOADS:
        raise ConfigError(f"unknown workload {name!r}; accepted: {', '.join(WORKLOADS.names())}")
    dims: dict = {}
    if preset is not None:
        presets = workload_presets(name)
        if preset not in presets:
            raise ConfigError(f"unknown preset {preset!r} for {name}; accepted: {', '.join(presets) or 'none'}")
        dims.update(presets[preset])
    accepted = workload_options(name)
    for key in options or {}:
        if accepted and key not in accepted:
            raise ConfigError(f"unknown option {key!r} for {name}; accepted: {', '.join(accepted)}")
    dims.update(options or {})
    return build_workload(name, **dims)


def load_workload_file(path: str | Path) -> tuple[str, ...]:
    """Import a user's workload file; returns the names of the workloads it provides.

    The file registers builders with ``@WORKLOADS.register(name)`` or defines
    ``build(**options) -> Graph`` (registered under the file's stem).  Loading
    the same file again replaces what it registered before.

    Examples
    --------
    ::

        load_workload_file("examples/my_mlp.py")    # -> ('my_mlp',)
        build_workload("my_mlp", batch=8)           # -> Graph('my_mlp', ...)
    """
    path = Path(path)
    if path.suffix != ".py":
        raise ConfigError(f"workload file must be a Python file (.py), got {str(path)!r}")
    try:
        source = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read workload file {str(path)!r}: {exc.strerror}") from None
    WORKLOADS.names()  # the shipped and installed workloads first, so only the file's are new
    key = path.resolve()
    for name in _FILES.pop(key, ()):
        WORKLOADS.unregister(name)
    where = str(path)
    module_name = "distsim_workload_file_" + hashlib.sha1(str(key).encode()).hexdigest()[:12]
    module = types.ModuleType(module_name)
    module.__file__ = str(key)
    before = set(WORKLOADS.names())
    sys.modules[module_name] = module  # dataclasses and PRESETS look their module up
    sys.path.insert(0, str(key.parent))  # the file may import its neighbours
    try:
        try:
            exec(compile(source, where, "exec"), module.__dict__)
        finally:
            if str(key.parent) in sys.path:
                sys.path.remove(str(key.parent))
        added = tuple(sorted(set(WORKLOADS.names()) - before))
        if not added:
            build = module.__dict__.get("build")
            if not callable(build):
                raise ConfigError("defines no workload; register a builder with @WORKLOADS.register(\"name\") "
                                  "(from distsim.workload import WORKLOADS) or define build(**options) returning a Graph")
            WORKLOADS.register(path.stem)(build)
            added = (path.stem,)
    except BaseException as exc:  # leave nothing of a broken file behind
        for name in set(WORKLOADS.names()) - before:
            WORKLOADS.unregister(name)
        sys.modules.pop(module_name, None)
        if isinstance(exc, SyntaxError):
            raise ConfigError(f"{where}: syntax error on line {exc.lineno}: {exc.msg}") from None
        if isinstance(exc, DistsimError):
            raise ConfigError(f"{where}: {exc}") from None
        if isinstance(exc, Exception):
            raise ConfigError(f"{where}: importing it raised {_describe(exc, where)}") from None
        raise
    for name in added:
        WORKLOADS.origins[name] = where
    _FILES[key] = added
    return added


def workload_from_file(path: str | Path, name: str | None = None) -> str:
    """Load ``path`` and return the workload to use: ``name``, or the file's only workload."""
    added = load_workload_file(path)
    if name is None:
        if len(added) > 1:
            raise ConfigError(f"{path} provides workloads {', '.join(added)}; name one")
        return added[0]
    if name not in WORKLOADS:
        raise ConfigError(f"unknown workload {name!r}; {path} provides {', '.join(added)}")
    return name


def resolve_workload_arg(name: str | None, workload_file: str | None) -> str:
    """The workload a command names: ``name``, or (with ``workload_file``) the file's workload."""
    if workload_file is not None:
        return workload_from_file(workload_file, name)
    if name is None:
        raise ConfigError("give a WORKLOAD name or --workload-file FILE.py")
    return name


def _describe(exc: BaseException, filename: str) -> str:
    """``Type: message (line N)`` with the last line of ``filename`` in the traceback."""
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == Path(filename).resolve():
            line = frame.lineno
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if line is None else f"{text} (line {line})"
