"""One registry pattern for every extension point.

Usage::

    WORKLOADS = Registry("workload")

    @WORKLOADS.register("wordlm")
    def build_wordlm(...): ...

    WORKLOADS.get("wordlm")      # -> the builder
    WORKLOADS.names()            # -> ["wordlm", ...]

``get`` of an unknown name raises ConfigError listing the accepted names.

Installed packages add entries through an entry-point group (e.g.
``distsim.workloads``, see :data:`distsim.workload.WORKLOADS`): in the package's
``pyproject.toml``::

    [project.entry-points."distsim.workloads"]
    mymodel = "mypackage.models:build_mymodel"   # an object: registered as "mymodel"
    # or  mymodel = "mypackage.models"           # a module: importing it registers its
    #                                            # entries, else its ``build`` is "mymodel"
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, Iterable, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table with lazy import of the modules that fill it."""

    def __init__(self, kind: str, modules: Iterable[str] = (), packages: Iterable[str] = (),
                 entry_point_group: str | None = None):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._modules = tuple(modules)
        self._packages = tuple(packages)  # every public submodule is imported
        self.entry_point_group = entry_point_group
        self.origins: dict[str, str] = {}  # name -> where an entry not shipped with distsim came from
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ConfigError(f"{self.kind} {name!r} is already registered; choose another name")
            self._items[name] = obj
            return obj

        return deco

    def unregister(self, name: str) -> None:
        """Remove ``name`` (e.g. before a user file that registered it is loaded again)."""
        self._items.pop(name, None)
        self.origins.pop(name, None)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for mod in self._modules:
                importlib.import_module(mod)
            for pkg in self._packages:
                package = importlib.import_module(pkg)
                for info in pkgutil.iter_modules(package.__path__):
                    if not info.name.startswith("_"):
                        importlib.import_module(f"{pkg}.{info.name}")
            if self.entry_point_group:
                self._load_entry_points()

    def _load_entry_points(self) -> None:
        """Load every entry point of :attr:`entry_point_group` (installed plugins)."""
        import inspect
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.entry_point_group):
            where = f"{self.kind} plugin {ep.name!r} (entry point {ep.value!r} in group {self.entry_point_group!r})"
            try:
                before = set(self._items)
                obj = ep.load()
            except ConfigError as exc:
                raise ConfigError(f"{where}: {exc}") from None
            except Exception as exc:  # a broken plugin: one line naming it, not a traceback
                raise ConfigError(f"{where} failed to load: {type(exc).__name__}: {exc}") from None
            added = set(self._items) - before
            for name in added:
                self.origins[name] = where
            if ep.name in self._items or (inspect.ismodule(obj) and added):
                continue
            if inspect.ismodule(obj):
                obj = getattr(obj, "build", None)
                if obj is None:
                    raise ConfigError(f"{where} registers no {self.kind} {ep.name!r} and has no 'build'")
            self.register(ep.name)(obj)
            self.origins[ep.name] = where

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; accepted: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items
