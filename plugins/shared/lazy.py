"""A mapping whose values are computed on first access: extras too costly to build up front."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, TypeVar

Value = TypeVar("Value")


class LazyMapping(Mapping[str, Value], Generic[Value]):
    """``{key: build(key)}`` for the given keys, each built on first access and then kept.

    ``recommend``'s ranking candidates (100 rows per val/test positive) are what its
    evaluation scores; ``shopmtl data`` and a run's set-up never read them, so they are
    drawn only when asked for -- on large data the largest table of all.
    """

    def __init__(self, keys: Iterable[str], build: Callable[[str], Value]) -> None:
        self._keys = tuple(keys)
        self._build = build
        self._built: dict[str, Value] = {}

    def __getitem__(self, key: str) -> Value:
        if key not in self._keys:
            raise KeyError(key)
        if key not in self._built:
            self._built[key] = self._build(key)
        return self._built[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        built = ", ".join(self._built) or "none"
        return f"LazyMapping(keys={list(self._keys)}, built: {built})"
