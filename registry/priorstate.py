"""A fitted classical prior as plain data (hook API 1.5): what ``Prior.state`` returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # keep `import shopmtl` light
    import numpy as np

__all__ = ["JSON", "PriorState"]

#: A JSON value: what :attr:`PriorState.meta` may hold (str, int, float, bool, None, lists, dicts).
JSON = Any


@dataclass(frozen=True)
class PriorState:
    """A fitted prior as plain data: named numeric arrays and JSON settings (hook API 1.5).

    shopmtl saves it as ``model/priors/<task>.safetensors`` -- the arrays as tensors, ``meta``
    as JSON in the file's header -- and hands it back to :attr:`Prior.from_state` when a run is
    opened. Nothing in it is executed on load: no pickle, no class looked up by name.

    Attributes:
        arrays: name -> numeric or boolean ``numpy`` array (no objects, no strings: put words
            in ``meta``). Names are letters, digits, ``_`` and ``.``.
        meta: JSON-able settings: vocabularies, class labels, flags.

    A fitted model made of parts stores each under its own name with :meth:`join` and reads it
    back with :meth:`part`::

        PriorState.join(vectorizer=tfidf.state(), model=logreg.state())
        state.part("vectorizer")  # -> what tfidf.state() returned
    """

    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    meta: Mapping[str, JSON] = field(default_factory=dict)

    @classmethod
    def join(cls, **parts: PriorState) -> PriorState:
        """One state holding each part under its keyword (arrays as ``<part>.<name>``)."""
        arrays = {
            f"{name}.{key}": value
            for name, part in parts.items()
            for key, value in part.arrays.items()
        }
        return cls(arrays, {name: dict(part.meta) for name, part in parts.items()})

    def part(self, name: str) -> PriorState:
        """The part :meth:`join` stored under ``name``; a ``KeyError`` naming it if there is none."""
        if name not in self.meta:
            raise KeyError(
                f"the prior state has no part {name!r} (it has: {', '.join(self.meta) or 'none'})"
            )
        prefix = f"{name}."
        arrays = {
            key[len(prefix) :]: value
            for key, value in self.arrays.items()
            if key.startswith(prefix)
        }
        return PriorState(arrays, self.meta[name])
