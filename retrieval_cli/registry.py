"""Variants registered by name (mining strategies, bi-encoder losses): each module of a variant
calls ``register`` once when imported; readers ask ``get`` (an unknown name is an error naming
the close matches) or list ``names``. A variant declares ``name`` and ``uses``, the optional
config fields it reads, which must be among the registry's."""

from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

from retrieval_cli.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Variants of one kind by name, in registration order."""

    def __init__(self, kind: str, optional_fields: frozenset[str], unknown: Callable[[str, str], str], field: str,
                 check: Callable[[T], str | None] = lambda variant: None) -> None:
        """``unknown(name, known)`` words the error for a name nobody registered (``known``: the
        names, comma-separated), reported on config ``field``; ``check`` says what is wrong with a
        variant (None: nothing)."""
        self.kind, self.optional_fields, self.unknown, self.field, self.check = kind, optional_fields, unknown, field, check
        self.variants: dict[str, T] = {}

    def register(self, variant: T) -> T:
        name, uses = getattr(variant, "name"), getattr(variant, "uses")
        if uses - self.optional_fields:
            raise ValueError(f"{self.kind} {name} uses unknown optional fields {sorted(uses - self.optional_fields)}")
        if name in self.variants:
            raise ValueError(f"{self.kind} {name} is registered twice")
        problem = self.check(variant)
        if problem:
            raise ValueError(f"{self.kind} {name}: {problem}")
        self.variants[name] = variant
        return variant

    def names(self) -> tuple[str, ...]:
        return tuple(self.variants)

    def get(self, name: str) -> T:
        try:
            return self.variants[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.variants), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise InputError(self.unknown(name, ", ".join(self.names())) + hint, field=self.field) from None

    def __iter__(self) -> Iterator[T]:
        return iter(self.variants.values())
