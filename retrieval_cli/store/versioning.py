"""Which config fields version an artifact, said once per config and applied by the build.

A config dataclass declares it in three ways: fields that never change the result (how fast, how
many threads) are made with ``unversioned()`` (or ``recorded_at_default()`` where ids made before
that was known hash them); fields added after version ids existed are made with ``added()``, left
unsaid while at their default so those ids stand; fields that this config's own choices make
meaningless (the LLM's settings when no strategy uses an LLM) are named by ``irrelevant()``.
``config_record`` turns a config into the mapping the version id hashes and the manifest holds,
adding what the command resolved (model fingerprints, a resolved precision).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping


def unversioned(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field that is recorded nowhere in the version: it changes how, not what."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"versioned": False})


def recorded_at_default(default: Any) -> Any:
    """A field that changes how, not what, but that version ids made before that was known hash:
    recorded at its default whatever it is set to, so those ids stand and no other value makes a
    new one (mining's chunk size)."""
    return dataclasses.field(default=default, metadata={"versioned": "as default"})


def added(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A field added after version ids were made: recorded only when set away from its default,
    so every id made before it existed (and every config leaving it alone) stands."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"versioned": "when set"})


def _at_default(f: dataclasses.Field, value: Any) -> bool:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
    return value == default


class Versioned:
    """Mixin for config dataclasses: ``versioned()`` is the part of the config that names the result."""

    def irrelevant(self) -> set[str]:
        """Fields this config's choices make meaningless (left out of the version)."""
        return set()

    def versioned(self) -> dict[str, Any]:
        skip = self.irrelevant() | {
            f.name for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if not f.metadata.get("versioned", True)
            or (f.metadata.get("versioned") == "when set" and _at_default(f, getattr(self, f.name)))
        }
        record = {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}  # type: ignore[call-overload]
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if f.metadata.get("versioned") == "as default" and f.name in record:
                record[f.name] = f.default
        return record


def config_record(config: Versioned | Mapping[str, Any], resolved: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The config as the version hashes it: a ``Versioned`` config's versioned fields, or a plain
    mapping as given, updated with ``resolved`` (values the command worked out: fingerprints,
    resolved defaults)."""
    base = config.versioned() if isinstance(config, Versioned) else dict(config)
    return {**base, **dict(resolved or {})}
