"""Name -> callable registries that refuse duplicates and name the valid choices."""
from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """An ordered mapping of names to entries.

    ``register`` refuses a name already taken; looking up an unknown name raises
    :class:`UnknownNameError` listing every valid name.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: Dict[str, T] = {}

    def register(self, name: str, entry: T | None = None):
        """Register ``entry`` under ``name``; usable as a decorator when ``entry`` is omitted."""

        def add(item: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} registry: the name {name!r} is already registered")
            self._entries[name] = item
            return item

        return add if entry is None else add(entry)

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; expected one of: {', '.join(self._entries)}"
            ) from None

    def get(self, name: str, default=None):
        return self._entries.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self):
        return self._entries.items()
