"""Name -> constructor tables.

Models, readers and metrics are chosen by a lowercase key from config files; an unknown key
raises an error listing the valid ones. This module imports nothing from synthmed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class Registry:
    """A named table of constructors filled with a decorator.

    Example:
        >>> MODELS = Registry("model")
        >>> @MODELS.register("dcgan")
        ... def build_dcgan(**kw): ...
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._table: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        key = name.lower()

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            if key in self._table and self._table[key] is not obj:
                raise KeyError(f"{self.kind} '{key}' is registered twice")
            self._table[key] = obj
            return obj

        return decorator

    def get(self, name: str) -> Callable[..., Any]:
        key = name.lower()
        if key not in self._table:
            valid = ", ".join(sorted(self._table)) or "(none registered)"
            raise KeyError(f"unknown {self.kind} '{name}'; valid names: {valid}")
        return self._table[key]

    def build(self, name: str, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._table)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._table

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
