"""One registry pattern for every extension point.

Usage::

    WORKLOADS = Registry("workload")

    @WORKLOADS.register("wordlm")
    def build_wordlm(...): ...

    WORKLOADS.get("wordlm")      # -> the builder
    WORKLOADS.names()            # -> ["wordlm", ...]

``get`` of an unknown name raises ConfigError listing the accepted names.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, Iterable, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table with lazy import of the modules that fill it."""

    def __init__(self, kind: str, modules: Iterable[str] = (), packages: Iterable[str] = ()):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._modules = tuple(modules)
        self._packages = tuple(packages)  # every public submodule is imported
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return deco

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
